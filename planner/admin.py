"""Django admin registrations."""

from . import admin_procedure  # noqa: F401

# Follow-up intervals and the export log (planner/admin_followup.py).
from . import admin_followup  # noqa: E402, F401

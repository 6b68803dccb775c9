"""Django admin registrations."""

from . import (
    admin_consent,  # noqa: F401  (consent wording versions, signed records)
    admin_followup,  # noqa: F401  (follow-up intervals and the export log)
    admin_procedure,  # noqa: F401  (protocol presets, processing defaults)
)

"""Django admin registrations."""

from . import admin_procedure  # noqa: F401

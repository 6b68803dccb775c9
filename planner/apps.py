from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PlannerConfig(AppConfig):
    name = "planner"
    verbose_name = "Nanofat planner"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (  # noqa: F401
            signals,  # login/logout audit receivers
            triggers,  # PostgreSQL guards, see planner/triggers.py
        )

        post_migrate.connect(_sync_roles, sender=self)
        # WeasyPrint is loaded when the app starts (gunicorn's preload_app: in the master), so no
        # request pays for the import; see planner/pdf.py.
        from . import pdf  # noqa: F401


def _sync_roles(sender, **kwargs) -> None:
    """After every migrate, each role group holds exactly the permissions in planner.roles."""
    from django.contrib.auth.models import Group, Permission

    from .roles import sync_roles

    sync_roles(Group, Permission, strict=True)

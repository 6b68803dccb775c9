"""Audit receivers for authentication events (the only signals here: Django emits them)."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from . import audit
from .choices import AuditAction


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs) -> None:
    audit.record(actor=user, action=AuditAction.LOGIN, request=request)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        audit.record(actor=user, action=AuditAction.LOGOUT, request=request)


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    audit.record(
        actor=None,
        action=AuditAction.LOGIN_FAILED,
        request=request,
        username=str(credentials.get("username", "")),
    )

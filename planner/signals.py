"""Receivers of Django's signals: the audit of authentication events, and the access version
that tells a session its copy of the user's permissions is out of date (planner/security.py)."""

from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models import F, Q, QuerySet
from django.db.models.signals import m2m_changed, pre_delete
from django.dispatch import receiver

from . import audit
from .choices import AuditAction
from .models import User
from .security import remember_permissions


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs) -> None:
    audit.record(actor=user, action=AuditAction.LOGIN, request=request)
    # Read once here, so the first page after signing in finds them in the session.
    remember_permissions(request.session, user, user.get_all_permissions())


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


# --- Permission changes move the access version of every user they reach ----------------------
# Each receiver runs inside the transaction of the change, so the two commit together. A
# ``clear()`` is caught before its rows go (pre_clear), while the users it reaches can be found.


def _move_access_version(users: QuerySet) -> None:
    users.update(access_version=F("access_version") + 1)


def _is_change(action: str, pk_set) -> bool:
    return action == "pre_clear" or (action in ("post_add", "post_remove") and bool(pk_set))


# The name by which a user reaches the other side of each of their own relations.
_USER_RELATIONS = {User.groups.through: "groups", User.user_permissions.through: "user_permissions"}


@receiver(m2m_changed, sender=User.groups.through)
@receiver(m2m_changed, sender=User.user_permissions.through)
def _user_relation_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """A user's roles or own permissions changed, from either side of the relation."""
    if not _is_change(action, pk_set):
        return
    if not reverse:  # user.groups... / user.user_permissions...
        users = User.objects.filter(pk=instance.pk)
    elif pk_set:  # group.user_set.add/remove... / permission.user_set.add/remove...
        users = User.objects.filter(pk__in=pk_set)
    else:  # ....user_set.clear(): everyone who has it until then
        users = User.objects.filter(**{_USER_RELATIONS[sender]: instance})
    _move_access_version(users)


@receiver(m2m_changed, sender=Group.permissions.through)
def _role_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    if not _is_change(action, pk_set):
        return
    if not reverse:  # group.permissions... (sync_roles after every migrate, too)
        _move_access_version(User.objects.filter(groups=instance))
    else:  # permission.group_set...
        reached = {"groups__in": pk_set} if pk_set else {"groups__permissions": instance}
        _move_access_version(User.objects.filter(**reached))


@receiver(pre_delete, sender=Group)
def _role_deleted(sender, instance, **kwargs) -> None:
    _move_access_version(User.objects.filter(groups=instance))


@receiver(pre_delete, sender=Permission)
def _permission_deleted(sender, instance, **kwargs) -> None:
    _move_access_version(
        User.objects.filter(Q(user_permissions=instance) | Q(groups__permissions=instance))
    )

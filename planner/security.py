"""Login throttling glue for django-axes (where the client address comes from, and which
authentication calls are throttled), and the permission backend with the session's copy of a
user's permissions."""

import time

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.contrib.sessions.backends.base import SessionBase
from django.db.models import Q
from django.http import HttpRequest
from django.shortcuts import render

from .audit import client_ip as _audit_client_ip


def client_ip(request: HttpRequest | None) -> str | None:
    """The address failures are counted against: REMOTE_ADDR, never X-Forwarded-For.

    A header the client writes itself would let an attacker pick a fresh address for every
    guess (or lock out someone else's). Behind a TLS proxy, the proxy's own address is what
    REMOTE_ADDR shows, so lockouts stay per username and proxy; that is the safe side.
    """
    return _audit_client_ip(request)


class LockoutBackend(AxesStandaloneBackend):
    """Refuses a locked-out (username, address) pair before any password is checked.

    Every web login (the login page, the admin's login) passes the request and is throttled.
    Calls without a request come from code, not from a browser (management commands, the test
    client's ``login()``): there is no address to count against, so they pass through to the
    password check like before, instead of failing with axes' "request required" error.
    """

    def authenticate(self, request: HttpRequest | None, *args, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


class PermissionBackend(ModelBackend):
    """Django's model backend, reading a user's own and their groups' permissions in one query
    instead of two: every signed-in request checks a permission (each keystroke's check too).
    Between reads, the session keeps a copy (``use_remembered_permissions``)."""

    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            permissions = Permission.objects.all()
            if not user_obj.is_superuser:
                permissions = permissions.filter(Q(user=user_obj) | Q(group__user=user_obj))
            pairs = permissions.values_list("content_type__app_label", "codename").order_by()
            user_obj._perm_cache = {f"{app_label}.{codename}" for app_label, codename in pairs}
        return user_obj._perm_cache


# --- The session's copy of the permissions ------------------------------------------------------
#
# The permission query is the heaviest of the three every signed-in request makes (session, user,
# permissions): four joins, planned anew each time. The session, which is read anyway, keeps the
# answer with what it depended on. It is used only while the user row, read on every request,
# still shows the same access_version and superuser flag (a change of role or of a role's
# permissions moves the version: planner/signals.py) and for PERMISSIONS_RECHECK_SECONDS at
# most, which bounds a change made behind the app's back (raw SQL, a data migration).

PERMISSIONS_SESSION_KEY = "_permissions"


def use_remembered_permissions(session: SessionBase, user) -> None:
    """Gives ``user`` the permissions its session keeps, if they are current: PermissionBackend
    then reads none from the database."""
    entry = session.get(PERMISSIONS_SESSION_KEY)
    if not isinstance(entry, dict):
        return
    saved_at, permissions = entry.get("at"), entry.get("permissions")
    current = (
        isinstance(saved_at, int)
        and isinstance(permissions, list)
        and entry.get("user") == user.pk
        and entry.get("version") == user.access_version
        and entry.get("superuser") is user.is_superuser
        and 0 <= time.time() - saved_at < settings.PERMISSIONS_RECHECK_SECONDS
    )
    if current:
        user._perm_cache = set(permissions)
        user._perm_remembered = True


def remember_read_permissions(session: SessionBase, user) -> None:
    """Keeps in the session the permissions this request read from the database, if it did."""
    if hasattr(user, "_perm_cache") and not getattr(user, "_perm_remembered", False):
        remember_permissions(session, user, user._perm_cache)


def remember_permissions(session: SessionBase, user, permissions: set[str]) -> None:
    """Keeps ``permissions`` in the session of the signed-in ``user`` (saved with the response)."""
    if session.get(SESSION_KEY) != user._meta.pk.value_to_string(user):
        return  # signed out during the request, or another user's session
    session[PERMISSIONS_SESSION_KEY] = {
        "user": user.pk,
        "version": user.access_version,
        "superuser": user.is_superuser,
        "at": int(time.time()),
        "permissions": sorted(permissions),
    }


def lockout_response(request: HttpRequest, original_response=None, credentials=None):
    """The page a locked-out login gets: 429, what happened and when to try again."""
    cool_off = settings.AXES_COOLOFF_TIME
    context = {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": max(1, int(cool_off.total_seconds() // 60)),
    }
    return render(request, "registration/locked_out.html", context, status=429)

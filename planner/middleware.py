"""Small cross-cutting behaviours the views should not repeat."""

import logging
import time

from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.functional import SimpleLazyObject
from django_htmx.http import HttpResponseClientRedirect

from .security import remember_read_permissions, use_remembered_permissions

logger = logging.getLogger(__name__)


class HtmxLoginRedirectMiddleware:
    """An expired session answers htmx with a full-page redirect to login, not a login form
    swapped into a table cell."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        login_path = resolve_url(settings.LOGIN_URL)
        if (
            getattr(request, "htmx", False)
            and response.status_code == 302
            and response.get("Location", "").startswith(login_path)
        ):
            return HttpResponseClientRedirect(response["Location"])
        return response


class SessionIdleTimeoutMiddleware:
    """A session ends after SESSION_COOKIE_AGE without a request: each request pushes its expiry
    ahead, but the session row is rewritten at most once every SESSION_TOUCH_SECONDS rather than
    on every request (one UPDATE less on each page, htmx swap and keystroke check). The expiry
    can thus come up to SESSION_TOUCH_SECONDS early, never late."""

    KEY = "_touched_at"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is not None and session.accessed and not session.is_empty():
            now = int(time.time())
            if now - session.get(self.KEY, 0) >= settings.SESSION_TOUCH_SECONDS:
                session[self.KEY] = now  # marks the session modified: SessionMiddleware saves it
        return response


class AuthenticationMiddleware(auth_middleware.AuthenticationMiddleware):
    """Django's, with the user's permissions taken from the session while they are current, and
    put there when a request had to read them (planner/security.py says when they are)."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: self._user(request))

    def _user(self, request: HttpRequest):
        user = auth_middleware.get_user(request)
        if user.is_authenticated:
            request.signed_in_user = user
            use_remembered_permissions(request.session, user)
        return user

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        user = getattr(request, "signed_in_user", None)
        if user is not None:
            remember_read_permissions(request.session, user)
        return response


class PrivateCacheMiddleware:
    """Pages for logged-in users hold patient data: no browser or proxy keeps a copy."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.user.is_authenticated:
            add_never_cache_headers(response)
            patch_cache_control(response, private=True)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # The database went away mid-request: a clean 503, and the transaction is rolled back.
        if isinstance(exception, OperationalError):
            logger.error("database unavailable: %s", type(exception).__name__)
            return render(request, "503.html", status=503)
        return None

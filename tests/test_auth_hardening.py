"""Authentication hardening: throttled logins keyed on username and address together, the client
address taken from REMOTE_ADDR only, session rotation and expiry, logout by POST only, and the
explicit list of pages that need no login."""

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.test import Client, RequestFactory, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from planner.choices import AuditAction
from planner.middleware import SessionIdleTimeoutMiddleware
from planner.models import AuditEntry
from planner.security import client_ip
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
OFFICE = "10.0.0.10"
ELSEWHERE = "10.0.0.99"


def _login(client: Client, username: str, password: str, *, ip: str = OFFICE, **headers):
    return client.post(
        LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip, **headers
    )


def _fail(client: Client, username: str, times: int, *, ip: str = OFFICE, **headers) -> None:
    for _ in range(times):
        response = _login(client, username, "wrong password", ip=ip, **headers)
        assert response.status_code in (200, 429)


# --- throttling ---------------------------------------------------------------------------------


def test_five_failures_lock_that_username_on_that_address(client, surgeon):
    _fail(client, surgeon.username, settings.AXES_FAILURE_LIMIT)
    response = _login(client, surgeon.username, PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lockout_page_says_what_happened_and_when_to_retry(client, surgeon):
    _fail(client, surgeon.username, settings.AXES_FAILURE_LIMIT)
    response = _login(client, surgeon.username, PASSWORD)
    body = response.content.decode()
    assert "Too many failed log-ins" in body
    assert "Try again in 15 minutes" in body
    assert "<title>Too many attempts" in body
    assert "Content-Security-Policy" in response.headers


def test_fewer_failures_than_the_limit_still_allow_the_right_password(client, surgeon):
    _fail(client, surgeon.username, settings.AXES_FAILURE_LIMIT - 1)
    assert _login(client, surgeon.username, PASSWORD).status_code == 302


def test_the_same_person_can_still_log_in_from_another_address(client, surgeon):
    """An attacker cannot lock someone out from everywhere."""
    _fail(client, surgeon.username, settings.AXES_FAILURE_LIMIT)
    response = _login(Client(), surgeon.username, PASSWORD, ip=ELSEWHERE)
    assert response.status_code == 302


def test_colleagues_behind_the_same_address_can_still_log_in(client, surgeon, colleague):
    """One attacker on the clinic's address cannot lock the whole clinic out."""
    _fail(client, surgeon.username, settings.AXES_FAILURE_LIMIT)
    response = _login(Client(), colleague.username, PASSWORD)
    assert response.status_code == 302


def test_a_forged_forwarded_for_header_does_not_buy_fresh_attempts(client, surgeon):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        _login(
            client,
            surgeon.username,
            "wrong",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{attempt}",
            HTTP_X_REAL_IP=f"198.51.100.{attempt}",
        )
    response = _login(client, surgeon.username, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.200")
    assert response.status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {OFFICE}


def test_a_forged_forwarded_for_header_cannot_lock_out_someone_else(client, surgeon):
    """Failures sent with a victim's address in X-Forwarded-For count against the sender."""
    _fail(client, surgeon.username, settings.AXES_FAILURE_LIMIT, HTTP_X_FORWARDED_FOR=ELSEWHERE)
    assert _login(Client(), surgeon.username, PASSWORD, ip=ELSEWHERE).status_code == 302


def test_the_client_address_is_remote_addr_only():
    request = RequestFactory().get(
        "/", REMOTE_ADDR="192.0.2.7", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.1"
    )
    assert client_ip(request) == "192.0.2.7"
    assert settings.AXES_IPWARE_META_PRECEDENCE_ORDER == ("REMOTE_ADDR",)


def test_the_lockout_ends_after_the_cool_off(client, surgeon):
    _fail(client, surgeon.username, settings.AXES_FAILURE_LIMIT)
    assert _login(client, surgeon.username, PASSWORD).status_code == 429
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(minutes=1)
    )
    assert _login(client, surgeon.username, PASSWORD).status_code == 302


@override_settings(AXES_FAILURE_LIMIT=2)
def test_the_failure_limit_is_a_setting(client, surgeon):
    _fail(client, surgeon.username, 2)
    assert _login(client, surgeon.username, PASSWORD).status_code == 429


def test_a_successful_login_resets_the_count(client, surgeon):
    _fail(client, surgeon.username, settings.AXES_FAILURE_LIMIT - 1)
    assert _login(client, surgeon.username, PASSWORD).status_code == 302
    client.post(reverse("logout"))
    _fail(client, surgeon.username, settings.AXES_FAILURE_LIMIT - 1)
    assert _login(client, surgeon.username, PASSWORD).status_code == 302


def test_the_admin_login_is_throttled_too(client, clinic_admin):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            reverse("admin:login"),
            {"username": clinic_admin.username, "password": "wrong"},
            REMOTE_ADDR=OFFICE,
        )
    response = client.post(
        reverse("admin:login"),
        {"username": clinic_admin.username, "password": PASSWORD},
        REMOTE_ADDR=OFFICE,
    )
    assert response.status_code == 429


def test_failed_logins_are_audited_with_the_real_address(client, surgeon):
    _login(client, surgeon.username, "wrong", HTTP_X_FORWARDED_FOR="203.0.113.1")
    entry = AuditEntry.objects.get(action=AuditAction.LOGIN_FAILED)
    assert (entry.actor_username, entry.ip_address, entry.actor) == (surgeon.username, OFFICE, None)


def _settings_in_subprocess(env: dict[str, str], expression: str) -> subprocess.CompletedProcess:
    code = f"import nanofat.settings as s; print({expression})"
    environment = {
        **os.environ,
        "SECRET_KEY": "x" * 50,
        "ALLOWED_HOSTS": "example.org",
        "DJANGO_SETTINGS_MODULE": "nanofat.settings",
        **env,
    }
    environment.pop("DEBUG", None)
    return subprocess.run(  # noqa: S603 - our own interpreter and a constant program
        [sys.executable, "-c", code],
        env=environment,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        check=False,
    )


def test_limit_and_cool_off_default_to_5_and_15_minutes():
    result = _settings_in_subprocess({}, "s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME")
    assert result.stdout.strip() == "5 0:15:00"


def test_limit_and_cool_off_come_from_the_environment():
    result = _settings_in_subprocess(
        {"LOGIN_FAILURE_LIMIT": "8", "LOGIN_COOLOFF_MINUTES": "30"},
        "s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME, s.AXES_LOCKOUT_PARAMETERS",
    )
    assert result.stdout.strip() == "8 0:30:00 [['username', 'ip_address']]"


@pytest.mark.parametrize("value", ["0", "-1", "five"])
def test_a_bad_limit_stops_the_start(value):
    result = _settings_in_subprocess({"LOGIN_FAILURE_LIMIT": value}, "1")
    assert result.returncode != 0
    assert "LOGIN_FAILURE_LIMIT" in result.stderr


# --- sessions -----------------------------------------------------------------------------------


def test_login_rotates_the_session_key(client, surgeon):
    session = client.session
    session["before-login"] = True
    session.save()
    before = session.session_key
    client.cookies[settings.SESSION_COOKIE_NAME] = before
    response = _login(client, surgeon.username, PASSWORD)
    assert response.status_code == 302
    after = response.cookies[settings.SESSION_COOKIE_NAME].value
    assert after
    assert after != before
    assert not Session.objects.filter(session_key=before).exists()


def test_the_session_cookie_ends_with_the_browser(client, surgeon):
    response = _login(client, surgeon.username, PASSWORD)
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert (cookie["expires"], cookie["max-age"]) == ("", "")
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"


def test_the_session_expires_after_30_idle_minutes(client, surgeon):
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True
    _login(client, surgeon.username, PASSWORD)
    assert client.get(reverse("patient_list")).status_code == 200
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    # A request pushes the expiry 30 minutes ahead (an inactivity timeout, not a lifetime).
    expiry = Session.objects.get(session_key=key).expire_date
    assert timedelta(minutes=29) < expiry - timezone.now() <= timedelta(minutes=30)
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(1))
    response = client.get(reverse("patient_list"))
    assert (response.status_code, response["Location"].split("?")[0]) == (302, LOGIN)


def _touched(key: str, seconds_ago: int, expires_in: timedelta) -> None:
    """Makes the session look last written ``seconds_ago``, expiring in ``expires_in``."""
    store = SessionStore(session_key=key)
    store[SessionIdleTimeoutMiddleware.KEY] = int(time.time()) - seconds_ago
    store.save()
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() + expires_in)


def test_a_request_writes_the_session_at_most_once_a_minute(client, surgeon):
    assert settings.SESSION_TOUCH_SECONDS == 60
    _login(client, surgeon.username, PASSWORD)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    _touched(key, seconds_ago=10, expires_in=timedelta(minutes=29, seconds=50))
    before = Session.objects.get(session_key=key).expire_date
    assert client.get(reverse("patient_list")).status_code == 200
    assert Session.objects.get(session_key=key).expire_date == before

    # Written a minute ago or more: the request pushes the expiry a full 30 minutes ahead.
    _touched(key, seconds_ago=60, expires_in=timedelta(minutes=29))
    assert client.get(reverse("patient_list")).status_code == 200
    expiry = Session.objects.get(session_key=key).expire_date
    assert timedelta(minutes=29, seconds=50) < expiry - timezone.now() <= timedelta(minutes=30)


def test_a_session_idle_for_30_minutes_is_over_even_if_written_recently(client, surgeon):
    _login(client, surgeon.username, PASSWORD)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    _touched(key, seconds_ago=5, expires_in=-timedelta(seconds=1))
    response = client.get(reverse("patient_list"))
    assert (response.status_code, response["Location"].split("?")[0]) == (302, LOGIN)


def test_an_expired_session_answers_htmx_with_a_full_page_redirect(client, surgeon, plan):
    _login(client, surgeon.username, PASSWORD)
    Session.objects.all().update(expire_date=timezone.now() - timedelta(1))
    response = client.post(
        reverse("injection_validate", args=[plan.pk]), {}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith(LOGIN)
    assert b"<form" not in response.content


# --- logout -------------------------------------------------------------------------------------


def test_logout_by_get_is_refused_and_keeps_the_session(surgeon_client, surgeon):
    response = surgeon_client.get(reverse("logout"))
    assert response.status_code == 405
    assert surgeon_client.get(reverse("patient_list")).status_code == 200


def test_logout_by_post_ends_the_session_and_is_audited(surgeon_client, surgeon):
    response = surgeon_client.post(reverse("logout"))
    assert (response.status_code, response["Location"]) == (302, reverse("login"))
    assert surgeon_client.get(reverse("patient_list")).status_code == 302
    assert AuditEntry.objects.filter(action=AuditAction.LOGOUT, actor=surgeon).exists()


def test_a_login_is_audited(client, surgeon):
    _login(client, surgeon.username, PASSWORD)
    entry = AuditEntry.objects.get(action=AuditAction.LOGIN)
    assert (entry.actor, entry.ip_address) == (surgeon, OFFICE)


# --- what needs no login ------------------------------------------------------------------------


def _exempt_views(patterns) -> set[str]:
    found = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                continue  # the admin checks is_staff itself (see test_role_matrix)
            found |= _exempt_views(pattern.url_patterns)
        elif isinstance(pattern, URLPattern) and not getattr(
            pattern.callback, "login_required", True
        ):
            found.add(pattern.name)
    return found


def test_only_login_and_the_health_check_need_no_login():
    assert "django.contrib.auth.middleware.LoginRequiredMiddleware" in settings.MIDDLEWARE
    assert _exempt_views(get_resolver().url_patterns) == {"login", "healthz"}


def test_the_password_validators_refuse_weak_passwords(surgeon):
    for weak in ("short", "password1234", "123456789012", surgeon.username + "2024"):
        with pytest.raises(ValidationError):
            validate_password(weak, user=surgeon)
    validate_password("plenty of unrelated words here", user=surgeon)

"""/healthz: what a load balancer or docker's healthcheck asks, without logging in."""

from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db


def test_it_answers_ok_while_the_database_answers(client: Client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "database": "ok"}


def test_it_needs_no_login_and_is_never_cached(client: Client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_it_answers_the_same_to_a_logged_in_user(surgeon_client: Client):
    assert surgeon_client.get("/healthz").json()["status"] == "ok"


def test_it_answers_503_without_a_traceback_when_the_database_is_gone(client: Client, caplog):
    # Stopping the real database inside the test run is not possible: the cursor is the one mock.
    refused = OperationalError("connection to server at 127.0.0.1 failed: Connection refused")
    with mock.patch("django.db.connection.cursor", side_effect=refused):
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable"}
    assert "Traceback" not in response.text
    assert "Connection refused" not in response.text
    assert all(record.exc_info is None for record in caplog.records)
    assert "OperationalError" in caplog.text


def test_it_refuses_anything_but_get(client: Client):
    assert client.post("/healthz").status_code == 405


@override_settings(SECURE_SSL_REDIRECT=True)
def test_it_answers_plain_http_health_checks_where_pages_redirect_to_https(client: Client):
    # Docker's healthcheck and load balancers call the container over plain HTTP.
    assert client.get("/healthz").status_code == 200
    page = client.get("/patients/")
    assert page.status_code == 301
    assert page["Location"].startswith("https://")

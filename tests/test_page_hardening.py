"""Browser-side hardening, checked on the HTML of every page of the role matrix.

Every page: a Content Security Policy without unsafe-inline / unsafe-eval, X-Frame-Options DENY,
Cache-Control no-store for signed-in users, and markup that needs nothing the policy forbids
(no inline <script>, no hx-on, no style= or on*= attributes, no javascript: URLs, nothing from
another host). htmx is served from the app's static files with the hardened configuration, and
patient data appears in no URL and in no error page's title.
"""

import json
import re
from html.parser import HTMLParser

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from tests.test_role_matrix import (
    MATRIX,
    ROLES,
    Row,
    _call,
    scenario,  # noqa: F401  (the fixture the pages are built from)
)

pytestmark = pytest.mark.django_db


class Markup(HTMLParser):
    """Collects what the policy cares about: scripts, attributes and URLs."""

    URL_ATTRIBUTES = ("href", "src", "action", "hx-get", "hx-post", "formaction", "data-url")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.inline_scripts: list[str] = []
        self.script_sources: list[str] = []
        self.forbidden_attributes: list[str] = []
        self.urls: list[str] = []
        self.title = ""
        self.meta: dict[str, str] = {}
        self._in_script = False
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name, value in attrs:
            if name == "style" or name.startswith(("hx-on", "on", "data-hx-on")):
                self.forbidden_attributes.append(f"<{tag} {name}={value!r}>")
            if name in self.URL_ATTRIBUTES and value:
                self.urls.append(value)
        if tag == "script":
            if attributes.get("src"):
                self.script_sources.append(attributes["src"])
            else:
                self._in_script = True
        if tag == "title":
            self._in_title = True
        if tag == "meta" and attributes.get("name"):
            self.meta[attributes["name"]] = attributes.get("content", "")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_scripts.append(data.strip()[:80])
        if self._in_title:
            self.title += data


def parse(response) -> Markup:
    markup = Markup()
    markup.feed(response.content.decode())
    return markup


def _html_pages() -> list[tuple[Row, str, bool]]:
    """(row, the first role allowed a 200, htmx) for every GET row that answers with a page."""
    pages = []
    for row in MATRIX:
        if row.method != "GET":
            continue
        for htmx in (False, True):
            for role in ROLES:
                expected = row.expected[role]
                if isinstance(expected, tuple):
                    expected = expected[1] if htmx else expected[0]
                if expected == 200:
                    pages.append((row, role, htmx))
                    break
    return pages


# JSON and PDF answers have no markup to scan.
HTML_PAGES = [
    page
    for page in _html_pages()
    if page[0].name != "healthz" and not page[0].name.endswith("_pdf")
]


def _page_id(page) -> str:
    row, role, htmx = page
    return f"{row.id}-{role}-{'htmx' if htmx else 'plain'}"


@pytest.fixture(params=HTML_PAGES, ids=[_page_id(page) for page in HTML_PAGES])
def page(request, scenario):  # noqa: F811
    row, role, htmx = request.param
    response = _call(row, scenario, role, htmx)
    assert response.status_code == 200
    return response, scenario, role


def test_the_policy_forbids_inline_code_and_eval(page):
    response, _, _ = page
    policy = response["Content-Security-Policy"]
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy


def test_the_page_cannot_be_framed(page):
    response, _, _ = page
    assert response["X-Frame-Options"] == "DENY"


def test_signed_in_pages_are_not_stored(page):
    response, _, role = page
    if role != "anonymous":
        assert "no-store" in response["Cache-Control"]
        assert "private" in response["Cache-Control"]


def test_the_markup_needs_nothing_the_policy_forbids(page):
    response, _, _ = page
    markup = parse(response)
    assert markup.inline_scripts == []
    assert markup.forbidden_attributes == []
    assert not [url for url in markup.urls if url.strip().lower().startswith("javascript:")]


def test_nothing_is_loaded_from_another_host(page):
    response, _, _ = page
    markup = parse(response)
    for source in markup.script_sources:
        # The app's static files, or a same-origin view (the admin's translations catalogue).
        assert source.startswith("/"), source
        assert not source.startswith("//"), source
    external = [
        url for url in markup.urls if re.match(r"^(https?:)?//", url) and "testserver" not in url
    ]
    assert external == []


def test_no_patient_data_in_any_url_of_the_page(page):
    response, objects, _ = page
    patient = objects["patient"]
    markup = parse(response)
    for url in [*markup.urls, response.get("Location", ""), response.get("HX-Redirect", "")]:
        assert patient.name.split()[0] not in url
        assert patient.chart_number not in url


# --- htmx ---------------------------------------------------------------------------------------


def test_htmx_is_served_from_the_apps_static_files(surgeon_client):
    markup = parse(surgeon_client.get(reverse("patient_list")))
    htmx = [src for src in markup.script_sources if "htmx" in src]
    assert len(htmx) == 1
    assert htmx[0].startswith("/static/")
    assert finders.find(htmx[0].removeprefix("/static/")) is not None


def test_htmx_is_configured_for_the_policy(surgeon_client):
    config = json.loads(parse(surgeon_client.get(reverse("patient_list"))).meta["htmx-config"])
    assert config["allowEval"] is False
    assert config["allowScriptTags"] is False
    assert config["selfRequestsOnly"] is True
    assert config["allowNestedOobSwaps"] is False
    assert config["historyCacheSize"] == 0
    handling = {rule["code"]: rule for rule in config["responseHandling"]}
    for code in ("409", "422"):
        assert handling[code]["swap"] is True
        assert handling[code].get("error") is False
    # The specific codes come before the catch-all for errors, so they win.
    codes = [rule["code"] for rule in config["responseHandling"]]
    assert codes.index("409") < codes.index("[45]..")
    assert codes.index("422") < codes.index("[45]..")


def test_every_htmx_request_carries_the_csrf_token(surgeon_client):
    response = surgeon_client.get(reverse("patient_list"))
    body = response.content.decode()
    match = re.search(r"<body hx-headers='(\{[^']*\})'", body)
    assert match
    assert json.loads(match.group(1))["x-csrftoken"]


def test_a_conflict_is_answered_with_409_and_the_current_plan(surgeon_client, plan):
    data = {"version": plan.version - 1 if plan.version > 1 else 99, "target": "ready"}
    response = surgeon_client.post(
        reverse("plan_transition", args=[plan.pk]), data, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 409
    assert 'id="builder"' in response.content.decode()


def test_a_form_error_is_answered_with_422_and_the_form(surgeon_client, plan):
    data = {"version": plan.version, "new-zone": "CHIN", "new-volume_ml": "lots"}
    response = surgeon_client.post(
        reverse("injection_create", args=[plan.pk]), data, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    assert "Enter the volume as a number of mL" in response.content.decode()


# --- error pages --------------------------------------------------------------------------------


def test_the_404_page_carries_no_patient_data(outsider_client, patient):
    response = outsider_client.get(reverse("patient_detail", args=[patient.pk]))
    assert response.status_code == 404
    title = parse(response).title
    assert patient.name not in title
    assert patient.chart_number not in title
    assert patient.name not in response.content.decode()


def test_the_403_page_is_plain(colleague_client, plan):
    response = colleague_client.get(reverse("injection_new", args=[plan.pk]))
    assert response.status_code == 403
    markup = parse(response)
    assert markup.title.startswith("Not allowed")
    assert plan.patient.name not in response.content.decode()


def test_the_database_error_page_is_plain(surgeon_client, monkeypatch, patient):
    from django.db import OperationalError

    from planner.views import patients

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(patients, "get_patient_for_user", down)
    response = surgeon_client.get(reverse("patient_detail", args=[patient.pk]))
    assert response.status_code == 503
    assert parse(response).title.startswith("Temporarily unavailable")
    assert patient.name not in response.content.decode()


def _lockout(client, objects):
    from django.conf import settings

    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        response = client.post(reverse("login"), {"username": "owner", "password": "wrong"})
    return response


ERROR_PAGES = {
    "login error": lambda c, o: c.post(reverse("login"), {"username": "x", "password": "y"}),
    "lockout": _lockout,
    "patient form 422": lambda c, o: o["surgeon_client"].post(reverse("patient_create"), {}),
    "injection 422 (htmx)": lambda c, o: o["surgeon_client"].post(
        reverse("injection_create", args=[o["plan"].pk]),
        {"version": o["plan"].version, "new-volume_ml": "x"},
        HTTP_HX_REQUEST="true",
    ),
    "details 422": lambda c, o: o["surgeon_client"].post(
        reverse("plan_details_update", args=[o["plan"].pk]),
        {"version": o["plan"].version, "plan-harvest_volume_ml": "NaN"},
    ),
}


@pytest.mark.parametrize("name", list(ERROR_PAGES))
def test_error_answers_follow_the_policy_too(name, client, surgeon_client, plan):
    response = ERROR_PAGES[name](client, {"surgeon_client": surgeon_client, "plan": plan})
    assert response.status_code in (200, 422, 429)
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    markup = parse(response)
    assert markup.inline_scripts == []
    assert markup.forbidden_attributes == []

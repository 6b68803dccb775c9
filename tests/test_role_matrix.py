"""Who gets what, for every URL: one table, checked for every role, with and without htmx.

Roles: anonymous, the surgeon, staff and clinic admin of clinic A, and ``outsider`` (a surgeon of
clinic B). Every object in the table belongs to clinic A, so the outsider must get a 404 for
anything addressed by id. ``HX-Request`` must never change who may see what: each row is run
twice and the denials must be the same (an anonymous htmx request gets ``HX-Redirect`` to the
login page instead of a 302). ``test_every_url_is_in_the_matrix`` fails when a URL is added
without a row here.

Allowed writes are sent with valid data, so "allowed" means the view did the work
(302 after a plain POST, 200 for htmx), not merely that it did not say 403.
"""

from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from planner import consent, engine
from planner.choices import PlanStatus
from planner.models import TreatmentPlan
from tests.factories import PlannedInjectionFactory, TreatmentPlanFactory
from tests.followup_support import FOLLOW_UP_URL_NAMES

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "surgeon", "staff", "admin", "outsider")
LOGIN = "login"  # 302 to /accounts/login/ (htmx: HX-Redirect to it)
ADMIN_LOGIN = "admin-login"  # 302 to the admin's login page
HOME = "home"  # 302 to the patient list


@dataclass(frozen=True)
class Row:
    name: str  # the URL name (admin URLs: "admin:...")
    method: str
    expected: dict[str, object]  # role -> code, LOGIN, ADMIN_LOGIN or (plain, htmx)
    args: tuple[str, ...] = ()  # object names resolved from the scenario
    data: str = ""  # name of a payload builder in PAYLOADS
    label: str = field(default="", compare=False)

    @property
    def id(self) -> str:
        return self.label or f"{self.method} {self.name}"


def _expect(anonymous, surgeon, staff, admin, outsider) -> dict[str, object]:
    return dict(zip(ROLES, (anonymous, surgeon, staff, admin, outsider), strict=True))


WRITE = (302, 200)  # a plain POST redirects; the htmx one answers with partials
MATRIX: list[Row] = [
    # --- project URLs ---
    Row("login", "GET", _expect(200, HOME, HOME, HOME, HOME)),
    Row("logout", "POST", _expect(LOGIN, LOGIN, LOGIN, LOGIN, LOGIN)),
    Row("logout", "GET", _expect(LOGIN, 405, 405, 405, 405), label="GET logout (POST only)"),
    Row("healthz", "GET", _expect(200, 200, 200, 200, 200)),
    Row("admin:index", "GET", _expect(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 200, ADMIN_LOGIN)),
    # --- patients ---
    Row("home", "GET", _expect(LOGIN, HOME, HOME, HOME, HOME)),
    Row("patient_list", "GET", _expect(LOGIN, 200, 200, 200, 200)),
    Row("patient_create", "GET", _expect(LOGIN, 200, 200, 403, 200)),
    Row("patient_create", "POST", _expect(LOGIN, 302, 302, 403, 302), data="new_patient"),
    Row("patient_detail", "GET", _expect(LOGIN, 200, 200, 200, 404), args=("patient",)),
    Row("patient_detail", "POST", _expect(LOGIN, 405, 405, 405, 405), args=("patient",)),
    Row("patient_edit", "GET", _expect(LOGIN, 200, 200, 403, 404), args=("patient",)),
    Row(
        "patient_edit",
        "POST",
        _expect(LOGIN, 302, 302, 403, 404),
        args=("patient",),
        data="patient_edit",
    ),
    # --- creating plans ---
    Row("plan_create", "POST", _expect(LOGIN, 302, 403, 403, 404), args=("patient",)),
    Row("plan_create", "GET", _expect(LOGIN, 405, 405, 405, 405), args=("patient",)),
    Row("plan_from_preset", "POST", _expect(LOGIN, 302, 403, 403, 404), args=("patient",)),
    Row("plan_from_preset", "GET", _expect(LOGIN, 405, 405, 405, 405), args=("patient",)),
    Row("plan_repeat", "POST", _expect(LOGIN, 302, 403, 403, 404), args=("plan",)),
    Row("plan_repeat", "GET", _expect(LOGIN, 405, 405, 405, 405), args=("plan",)),
    # --- the builder ---
    Row("plan_builder", "GET", _expect(LOGIN, 200, 200, 200, 404), args=("plan",)),
    Row("plan_builder", "POST", _expect(LOGIN, 405, 405, 405, 405), args=("plan",)),
    Row(
        "plan_details_update",
        "POST",
        _expect(LOGIN, WRITE, 403, 403, 404),
        args=("plan",),
        data="details",
    ),
    Row("plan_details_update", "GET", _expect(LOGIN, 405, 405, 405, 405), args=("plan",)),
    Row(
        "plan_transition",
        "POST",
        _expect(LOGIN, WRITE, 403, 403, 404),
        args=("plan",),
        data="transition",
    ),
    Row("plan_transition", "GET", _expect(LOGIN, 405, 405, 405, 405), args=("plan",)),
    Row(
        "warning_acknowledge",
        "POST",
        _expect(LOGIN, WRITE, 403, 403, 404),
        args=("plan",),
        data="acknowledge",
    ),
    Row("warning_acknowledge", "GET", _expect(LOGIN, 405, 405, 405, 405), args=("plan",)),
    Row("injection_new", "GET", _expect(LOGIN, 200, 403, 403, 404), args=("plan",)),
    Row(
        "injection_create",
        "POST",
        _expect(LOGIN, WRITE, 403, 403, 404),
        args=("plan",),
        data="new_injection",
    ),
    Row("injection_create", "GET", _expect(LOGIN, 405, 405, 405, 405), args=("plan",)),
    Row(
        "injection_validate",
        "POST",
        _expect(LOGIN, 200, 403, 403, 404),
        args=("plan",),
        data="new_injection",
    ),
    Row("injection_validate", "GET", _expect(LOGIN, 405, 405, 405, 405), args=("plan",)),
    Row(
        "injection_row",
        "GET",
        _expect(LOGIN, (302, 200), (302, 200), (302, 200), 404),
        args=("plan", "injection"),
    ),
    Row("injection_edit", "GET", _expect(LOGIN, 200, 403, 403, 404), args=("plan", "injection")),
    Row(
        "injection_edit",
        "POST",
        _expect(LOGIN, WRITE, 403, 403, 404),
        args=("plan", "injection"),
        data="edit_injection",
    ),
    Row(
        "injection_delete",
        "POST",
        _expect(LOGIN, WRITE, 403, 403, 404),
        args=("plan", "injection"),
        data="version",
    ),
    Row(
        "injection_delete",
        "GET",
        _expect(LOGIN, 405, 405, 405, 405),
        args=("plan", "injection"),
    ),
    # --- procedure day (a consented plan) ---
    Row("procedure_day", "GET", _expect(LOGIN, 200, 200, 200, 404), args=("consented",)),
    Row(
        "procedure_day",
        "POST",
        _expect(LOGIN, 302, 403, 403, 404),
        args=("performed",),
        data="addendum",
        label="POST procedure_day (addendum to a performed plan)",
    ),
    Row("operative_record_pdf", "GET", _expect(LOGIN, 200, 200, 200, 404), args=("performed",)),
    Row("operative_record_pdf", "POST", _expect(LOGIN, 405, 405, 405, 405), args=("performed",)),
    # --- the consent sheet (a plan ready for consent) ---
    Row("consent_pdf", "GET", _expect(LOGIN, 200, 200, 200, 404), args=("ready",)),
    Row("consent_pdf", "POST", _expect(LOGIN, 405, 405, 405, 405), args=("ready",)),
    Row("consent_sheet", "GET", _expect(LOGIN, 200, 200, 200, 404), args=("ready",)),
    Row(
        "consent_sheet",
        "POST",
        _expect(LOGIN, 403, 302, 403, 404),
        args=("ready",),
        data="consent",
        label="POST consent_sheet (record the signature)",
    ),
    # --- Django admin (its own login; only is_staff users get in) ---
    *(
        Row(
            f"admin:planner_{model}_changelist",
            "GET",
            _expect(LOGIN, *[ADMIN_LOGIN] * 2, 200, ADMIN_LOGIN),
        )
        for model in ("ruleset", "referencevalue", "treatmentzone", "user", "auditentry", "clinic")
    ),
    Row("admin:planner_ruleset_add", "GET", _expect(LOGIN, *[ADMIN_LOGIN] * 2, 200, ADMIN_LOGIN)),
    Row(
        "admin:planner_user_change",
        "GET",
        _expect(LOGIN, *[ADMIN_LOGIN] * 2, 200, ADMIN_LOGIN),
        args=("staff_user",),
    ),
]

# Project URL names the matrix must cover (admin URLs are covered by test_admin_*.py).
# The follow-up, photo and export URLs have their own matrix: tests/test_followup_roles.py.
IGNORED_NAMES: set[str] = set(FOLLOW_UP_URL_NAMES)


# --- the scenario: clinic-A objects every row can address --------------------------------------


@pytest.fixture
def scenario(plan, patient, surgeon, colleague, clinic_admin, outsider):
    consented = TreatmentPlanFactory(patient=patient, surgeon=surgeon, rule_set=plan.rule_set)
    PlannedInjectionFactory(plan=consented, zone_code="CHIN")
    TreatmentPlan.objects.filter(pk=consented.pk).update(status=PlanStatus.CONSENTED)
    performed = TreatmentPlanFactory(patient=patient, surgeon=surgeon, rule_set=plan.rule_set)
    PlannedInjectionFactory(plan=performed, zone_code="CHIN")
    TreatmentPlan.objects.filter(pk=performed.pk).update(status=PlanStatus.PERFORMED)
    ready = TreatmentPlanFactory(patient=patient, surgeon=surgeon, rule_set=plan.rule_set)
    PlannedInjectionFactory(plan=ready, zone_code="CHIN")
    TreatmentPlan.objects.filter(pk=ready.pk).update(status=PlanStatus.READY)
    # A warning to acknowledge: a fanning injection (TECHNIQUE_NOT_RETROGRADE).
    PlannedInjectionFactory(plan=plan, zone_code="FOREHEAD", technique="fanning", position=2)
    users = {
        "anonymous": None,
        "surgeon": surgeon,
        "staff": colleague,
        "admin": clinic_admin,
        "outsider": outsider,
    }
    return {
        "users": users,
        "patient": patient,
        "plan": plan,
        "injection": plan.injections.order_by("position").first(),
        "consented": consented,
        "performed": performed,
        "ready": ready,
        "staff_user": colleague,
    }


def _version(scenario) -> int:
    return TreatmentPlan.objects.get(pk=scenario["plan"].pk).version


def _injection_fields(prefix: str, **fields) -> dict:
    values = {
        "zone": "CHEEK_R",
        "volume_ml": "0.3",
        "instrument": "needle",
        "gauge": "27",
        "depth": "dermis",
        "technique": "retrograde",
        "notes": "",
    } | fields
    return {f"{prefix}-{key}": value for key, value in values.items()}


def _acknowledge(scenario) -> dict:
    plan = TreatmentPlan.objects.get(pk=scenario["plan"].pk)
    review = engine.review_plan(plan)
    (warning,) = [f for f in review.warnings if f.rule == "TECHNIQUE_NOT_RETROGRADE"]
    return {"version": plan.version, "finding_key": review.key(warning), "reason": "Scar tissue."}


PAYLOADS = {
    "new_patient": lambda s: {
        "chart_number": "A-7777",
        "name": "Matrix Patient",
        "date_of_birth": "1980-02-03",
        "sex": "female",
    },
    "patient_edit": lambda s: {
        "chart_number": s["patient"].chart_number,
        "name": "Renamed Patient",
        "date_of_birth": "1975-06-15",
        "sex": "female",
    },
    "details": lambda s: {
        "version": _version(s),
        "plan-planned_for": (date.today() + timedelta(days=10)).isoformat(),
        "plan-goal": "rejuvenation",
        "plan-documented_indications": ["fine_lines"],
        "plan-other_indications": "",
        "plan-combination": "none",
        "plan-donor_site": "abdomen",
        "plan-harvest_volume_ml": "20",
        "plan-notes": "",
    },
    "transition": lambda s: {"version": _version(s), "target": "cancelled"},
    "acknowledge": _acknowledge,
    "new_injection": lambda s: {"version": _version(s), **_injection_fields("new")},
    "edit_injection": lambda s: {
        "version": _version(s),
        **_injection_fields(f"inj{s['injection'].pk}", zone="CHEEK_L", volume_ml="0.25"),
    },
    "version": lambda s: {"version": _version(s)},
    "consent": lambda s: {
        "version": TreatmentPlan.objects.get(pk=s["ready"].pk).version,
        "patient_signed": "on",
        "document_id": consent.current_document_id(TreatmentPlan.objects.get(pk=s["ready"].pk)),
        "signed_on": date.today().isoformat(),
        "witness_name": "Wendy Witness",
    },
    "addendum": lambda s: {"action": "addendum", "add-text": "Patient called: no bruising."},
}


def _client(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _call(row: Row, scenario, role: str, htmx: bool):
    url = reverse(row.name, args=[scenario[name].pk for name in row.args])
    data = PAYLOADS[row.data](scenario) if row.data else {}
    extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    client = _client(scenario["users"][role])
    if row.method == "POST":
        return client.post(url, data, **extra)
    return client.get(url, data, **extra)


def _assert_answer(response, expected, htmx: bool) -> None:
    if isinstance(expected, tuple):
        expected = expected[1] if htmx else expected[0]
    code, location = response.status_code, response.get("Location", "")
    if expected == LOGIN:
        if htmx:
            assert (code, response["HX-Redirect"].split("?")[0]) == (200, reverse("login"))
        else:
            assert (code, location.split("?")[0]) == (302, reverse("login"))
    elif expected == ADMIN_LOGIN:
        assert (code, location.split("?")[0]) == (302, reverse("admin:login"))
    elif expected == HOME:
        assert (code, location) == (302, reverse("patient_list"))
    else:
        assert code == expected, response.content.decode()[:500]


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", MATRIX, ids=lambda row: row.id)
def test_the_role_matrix(scenario, row, role, htmx):
    response = _call(row, scenario, role, htmx)
    _assert_answer(response, row.expected[role], htmx)


def _names(patterns, prefix: str = "") -> set[str]:
    found = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                continue  # the admin's own URLs: see the admin rows and tests/test_admin_*.py
            found |= _names(pattern.url_patterns, prefix)
        elif isinstance(pattern, URLPattern) and pattern.name:
            found.add(prefix + pattern.name)
    return found


def test_every_url_is_in_the_matrix():
    project = _names(get_resolver().url_patterns)
    covered = {row.name for row in MATRIX}
    assert project - covered - IGNORED_NAMES == set()


def test_every_role_has_an_answer_in_every_row():
    for row in MATRIX:
        assert set(row.expected) == set(ROLES), row.id


def test_htmx_never_changes_a_denial():
    """The table's own consistency: a 403/404/405 is the same with and without htmx."""
    for row in MATRIX:
        for role, expected in row.expected.items():
            if isinstance(expected, tuple):
                assert not {403, 404, 405} & set(expected), (row.id, role)

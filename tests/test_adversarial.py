"""Adversarial input and conditions: other clinics' ids, forged requests, markup and odd text,
odd numbers, oversized requests, races, a database that goes away or a row that stays locked,
SQL in parameters, spoofing characters, production settings and what ends up in the logs.

Every answer must be a clear refusal or a form error: never a 500, never another clinic's data,
never a half-written change.
"""

import logging
import os
import re
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from planner import audit, engine, services
from planner.choices import AuditAction, PlanStatus
from planner.models import AuditEntry, Patient, PlannedInjection, TreatmentPlan
from tests.factories import PASSWORD, PlannedInjectionFactory, TreatmentPlanFactory, UserFactory
from tests.test_role_matrix import (
    MATRIX,
    PAYLOADS,
    scenario,  # noqa: F401  (the fixture)
)

pytestmark = pytest.mark.django_db

POSTGRES = connection.vendor == "postgresql"
HTMX = {"HTTP_HX_REQUEST": "true"}


def _version(plan) -> int:
    return TreatmentPlan.objects.get(pk=plan.pk).version


def _injection_data(plan, prefix: str = "new", **fields) -> dict:
    values = {
        "zone": "CHIN",
        "volume_ml": "0.3",
        "instrument": "needle",
        "gauge": "27",
        "depth": "dermis",
        "technique": "retrograde",
        "notes": "",
    } | fields
    return {"version": _version(plan), **{f"{prefix}-{k}": v for k, v in values.items()}}


def _details_data(plan, **fields) -> dict:
    values = {
        "planned_for": (date.today() + timedelta(days=5)).isoformat(),
        "goal": "rejuvenation",
        "documented_indications": ["fine_lines"],
        "other_indications": "",
        "combination": "none",
        "donor_site": "abdomen",
        "harvest_volume_ml": "20",
        "notes": "",
    } | fields
    return {"version": _version(plan), **{f"plan-{k}": v for k, v in values.items()}}


def _patient_data(**fields) -> dict:
    return {
        "chart_number": "A-9000",
        "name": "Adversary Test",
        "date_of_birth": "1980-01-01",
        "sex": "female",
        "allergies": "",
        "notes": "",
    } | fields


def _state(plan) -> tuple:
    """Everything a write could change about a plan."""
    fresh = TreatmentPlan.objects.get(pk=plan.pk)
    injections = list(
        fresh.injections.order_by("pk").values_list("pk", "volume_ml", "gauge", "notes")
    )
    return fresh.version, fresh.status, fresh.notes, fresh.harvest_volume_ml, injections


# --- IDOR: another clinic's ids on every object URL -------------------------------------------


def _object_patterns(patterns, prefix: str = "") -> list[URLPattern]:
    found = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace != "admin":
                found += _object_patterns(pattern.url_patterns)
        elif pattern.pattern.converters:
            found.append(pattern)
    return found


OBJECT_PATTERNS = sorted(p.name for p in _object_patterns(get_resolver().url_patterns))


@pytest.fixture
def clinic_b_users(other_clinic):
    """Clinic B has users of every role and no patient: every id they send is clinic A's."""
    return {
        role: UserFactory(
            username=f"b-{role}", clinic=other_clinic, role=role, is_staff=role == "admin"
        )
        for role in ("surgeon", "staff", "admin")
    }


def _fill(pattern: URLPattern, value: int) -> str:
    return reverse(pattern.name, kwargs={name: value for name in pattern.pattern.converters})


@pytest.mark.parametrize("name", OBJECT_PATTERNS)
def test_another_clinics_ids_reach_nothing(name, scenario, clinic_b_users):  # noqa: F811
    """Every clinic-A object id, in every id slot of the URL, for every clinic-B role."""
    (pattern,) = [p for p in _object_patterns(get_resolver().url_patterns) if p.name == name]
    ids = {
        obj.pk
        for obj in (
            scenario["patient"],
            scenario["plan"],
            scenario["injection"],
            scenario["consented"],
            scenario["performed"],
            scenario["ready"],
        )
    }
    before = AuditEntry.objects.exclude(action=AuditAction.LOGIN).count()
    for user in clinic_b_users.values():
        client = Client()
        client.force_login(user)
        for value in ids:
            url = _fill(pattern, value)
            for method in ("get", "post"):
                response = getattr(client, method)(url, {"version": 1})
                assert response.status_code in (403, 404, 405), (user, method, url)
                assert scenario["patient"].name.encode() not in response.content
    # Nothing was read (no VIEW entry) or written for clinic A.
    assert AuditEntry.objects.exclude(action=AuditAction.LOGIN).count() == before


def test_an_injection_of_another_plan_is_not_reachable_through_ones_own_plan(
    surgeon_client, surgeon, patient, plan
):
    own = TreatmentPlanFactory(patient=patient, surgeon=surgeon)
    foreign_injection = plan.injections.first()
    for name in ("injection_row", "injection_edit"):
        url = reverse(name, args=[own.pk, foreign_injection.pk])
        assert surgeon_client.get(url, **HTMX).status_code == 404
    response = surgeon_client.post(
        reverse("injection_delete", args=[own.pk, foreign_injection.pk]), {"version": own.version}
    )
    assert response.status_code == 404
    assert PlannedInjection.objects.filter(pk=foreign_injection.pk).exists()


def test_an_unknown_id_and_another_clinics_id_look_the_same(outsider_client, patient):
    known = outsider_client.get(reverse("patient_detail", args=[patient.pk]))
    unknown = outsider_client.get(reverse("patient_detail", args=[patient.pk + 10_000]))

    def page(response) -> str:  # the CSRF token and CSP nonce differ per response, nothing else
        body = re.sub(r'"x-csrftoken": "[^"]*"', "", response.content.decode())
        body = re.sub(r' nonce="[^"]*"', "", body)
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", body)

    assert (known.status_code, page(known)) == (unknown.status_code, page(unknown))


# --- CSRF -------------------------------------------------------------------------------------


POST_ROWS = [row for row in MATRIX if row.method == "POST" and not row.name.startswith("admin")]


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize("row", POST_ROWS, ids=lambda row: row.id)
def test_a_post_without_the_csrf_token_is_refused(scenario, row, htmx, surgeon, colleague):  # noqa: F811
    user = colleague if row.name == "consent_sheet" else surgeon
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    url = reverse(row.name, args=[scenario[name].pk for name in row.args])
    data = PAYLOADS[row.data](scenario) if row.data else {}
    before = (
        [_state(scenario[name]) for name in ("plan", "consented", "performed", "ready")],
        Patient.objects.count(),
        AuditEntry.objects.exclude(action=AuditAction.LOGIN).count(),
    )
    response = client.post(url, data, **(HTMX if htmx else {}))
    assert response.status_code == 403
    after = (
        [_state(scenario[name]) for name in ("plan", "consented", "performed", "ready")],
        Patient.objects.count(),
        AuditEntry.objects.exclude(action=AuditAction.LOGIN).count(),
    )
    assert after == before


def test_a_login_without_the_csrf_token_is_refused(surgeon):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": surgeon.username, "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_a_wrong_csrf_header_is_refused(surgeon, plan):
    client = Client(enforce_csrf_checks=True)
    client.force_login(surgeon)
    client.get(reverse("plan_builder", args=[plan.pk]))  # sets the CSRF cookie
    response = client.post(
        reverse("plan_transition", args=[plan.pk]),
        {"version": plan.version, "target": "cancelled"},
        HTTP_X_CSRFTOKEN="forged-token-value-that-does-not-match-the-cookie0",
        **HTMX,
    )
    assert response.status_code == 403
    assert TreatmentPlan.objects.get(pk=plan.pk).status == PlanStatus.DRAFT


# --- XSS: markup in every free-text field -----------------------------------------------------

PAYLOAD = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)><svg onload=alert(3)>"
RAW_MARKERS = ("<script>alert", "<img src=x", "<svg onload", "onerror=alert(2)>")


def _assert_inert(body: str) -> None:
    for marker in RAW_MARKERS:
        assert marker not in body, marker
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


@pytest.fixture
def hostile(surgeon_client, colleague_client, clinic, surgeon):
    """A patient and a plan whose every free-text field holds markup, entered through the app."""
    response = colleague_client.post(
        reverse("patient_create"),
        _patient_data(
            chart_number="X-1",
            name=f"Eve {PAYLOAD}"[:200],
            allergies=PAYLOAD,
            notes=f"{PAYLOAD}\n\nsecond paragraph",
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    patient = Patient.objects.get(chart_number="X-1")
    surgeon_client.post(reverse("plan_create", args=[patient.pk]))
    plan = TreatmentPlan.objects.get(patient=patient)
    response = surgeon_client.post(
        reverse("plan_details_update", args=[plan.pk]),
        _details_data(plan, notes=PAYLOAD, other_indications=PAYLOAD.replace(",", " ")),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    response = surgeon_client.post(
        reverse("injection_create", args=[plan.pk]),
        _injection_data(plan, notes=PAYLOAD, technique="fanning"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    fresh = TreatmentPlan.objects.get(pk=plan.pk)
    review = engine.review_plan(fresh)
    for warning in review.warnings:
        response = surgeon_client.post(
            reverse("warning_acknowledge", args=[plan.pk]),
            {"version": _version(plan), "finding_key": review.key(warning), "reason": PAYLOAD},
        )
        assert response.status_code == 302, response.content.decode()[:2000]
    return patient, TreatmentPlan.objects.get(pk=plan.pk)


def test_the_payload_was_stored_as_typed(hostile):
    patient, plan = hostile
    assert patient.allergies == PAYLOAD
    assert plan.notes == PAYLOAD
    assert plan.injections.get().notes == PAYLOAD
    assert plan.acknowledgements.filter(reason=PAYLOAD).exists()


def test_markup_is_inert_in_the_patient_pages(surgeon_client, hostile):
    patient, _ = hostile
    for url in (
        reverse("patient_list"),
        reverse("patient_detail", args=[patient.pk]),
        reverse("patient_edit", args=[patient.pk]),
    ):
        _assert_inert(surgeon_client.get(url).content.decode())
    results = surgeon_client.post(
        reverse("patient_list"), {"q": "Eve"}, HTTP_HX_TARGET="patient-results", **HTMX
    )
    _assert_inert(results.content.decode())


def test_markup_is_inert_in_the_builder_and_its_partials(surgeon_client, colleague_client, hostile):
    _, plan = hostile
    injection = plan.injections.get()
    pages = [
        surgeon_client.get(reverse("plan_builder", args=[plan.pk])),
        colleague_client.get(reverse("plan_builder", args=[plan.pk])),
        surgeon_client.get(reverse("injection_edit", args=[plan.pk, injection.pk])),
        surgeon_client.get(reverse("injection_edit", args=[plan.pk, injection.pk]), **HTMX),
        surgeon_client.get(reverse("injection_row", args=[plan.pk, injection.pk]), **HTMX),
        surgeon_client.post(
            reverse("plan_details_update", args=[plan.pk]),
            _details_data(plan, notes=PAYLOAD, other_indications=PAYLOAD.replace(",", " ")),
            **HTMX,
        ),
        surgeon_client.post(
            reverse("injection_create", args=[plan.pk]),
            _injection_data(plan, notes=PAYLOAD, volume_ml="not a number"),
            **HTMX,
        ),
        surgeon_client.post(
            reverse("injection_validate", args=[plan.pk]), _injection_data(plan, zone=PAYLOAD)
        ),
    ]
    for response in pages:
        assert response.status_code in (200, 422)
        body = response.content.decode()
        for marker in RAW_MARKERS:
            assert marker not in body, (response.request["PATH_INFO"], marker)


def test_markup_is_inert_in_the_consent_preview(colleague_client, hostile):
    _, plan = hostile
    TreatmentPlan.objects.filter(pk=plan.pk).update(status=PlanStatus.READY)
    body = colleague_client.get(reverse("consent_sheet", args=[plan.pk])).content.decode()
    _assert_inert(body)


def test_markup_is_inert_in_admin(admin_role_client, hostile):
    patient, _ = hostile
    body = admin_role_client.get(
        reverse("admin:planner_auditentry_changelist"), {"patient": patient.pk}
    ).content.decode()
    for marker in RAW_MARKERS:
        assert marker not in body


# --- long and unicode text --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("مريم الحسيني", "مريم الحسيني"),  # Arabic, right to left
        ("שרה כהן", "שרה כהן"),  # Hebrew
        ("Zoë 😀 Smith", "Zoë 😀 Smith"),  # emoji
        ("Zoe\u0308 Combining", "Zoë Combining"),  # combining diaeresis, NFC-normalised
        ("\uff26\uff55\uff4c\uff4c width", "\uff26\uff55\uff4c\uff4c width"),  # fullwidth
        ("Al\u200bice\u200d Hidden", "Alice Hidden"),  # zero-width characters removed
        ("\ufeffBom Name", "Bom Name"),
    ],
)
def test_unicode_names_are_kept_or_normalised(colleague_client, name, stored):
    response = colleague_client.post(reverse("patient_create"), _patient_data(name=name))
    assert response.status_code == 302, response.content.decode()[:2000]
    patient = Patient.objects.get(chart_number="A-9000")
    assert patient.name == stored
    page = colleague_client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert stored in page


@pytest.mark.parametrize(
    "name",
    [
        "gpj.\u202eexe Evil",  # right-to-left override
        "Alice\u202dBob",  # left-to-right override
        "Alice\u2066isolate\u2069",
        "Null\x00Byte",
        "Bell\x07",
        "Two\nLines",
    ],
    ids=["RLO", "LRO", "isolate", "nul", "bell", "newline"],
)
def test_spoofing_and_control_characters_are_refused(colleague_client, name):
    response = colleague_client.post(reverse("patient_create"), _patient_data(name=name))
    assert response.status_code == 422
    assert not Patient.objects.filter(chart_number="A-9000").exists()
    body = response.content.decode()
    assert any(
        message in body
        for message in ("text-direction control", "control characters", "Null characters")
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("notes", "rtl \u202e override"), ("allergies", "x\u202ey"), ("chart_number", "A\u202e1")],
)
def test_spoofing_characters_are_refused_in_other_fields(colleague_client, field, value):
    response = colleague_client.post(reverse("patient_create"), _patient_data(**{field: value}))
    assert response.status_code == 422


def test_spoofing_characters_are_refused_in_plan_text(surgeon_client, plan):
    before = _state(plan)
    for data in (
        _details_data(plan, notes="left \u202e right"),
        _details_data(plan, other_indications="acne\u202e"),
        _injection_data(plan, notes="n\u2067ote"),
    ):
        endpoint = "injection_create" if "new-zone" in data else "plan_details_update"
        response = surgeon_client.post(reverse(endpoint, args=[plan.pk]), data)
        assert response.status_code == 422
    assert _state(plan) == before


def test_too_long_text_is_a_form_error(colleague_client, surgeon_client, plan):
    response = colleague_client.post(reverse("patient_create"), _patient_data(name="N" * 201))
    assert response.status_code == 422
    assert "at most 200 characters" in response.content.decode()
    response = surgeon_client.post(
        reverse("injection_create", args=[plan.pk]), _injection_data(plan, notes="x" * 301)
    )
    assert response.status_code == 422


def test_very_long_notes_are_kept_whole(colleague_client):
    notes = ("A long history. " * 20_000)[:300_000].strip()  # 300 KB, below the request limit
    response = colleague_client.post(reverse("patient_create"), _patient_data(notes=notes))
    assert response.status_code == 302
    assert Patient.objects.get(chart_number="A-9000").notes == notes


# --- odd numbers ------------------------------------------------------------------------------

ODD_NUMBERS = ["1e309", "-1e309", "NaN", "nan", "Infinity", "-0", "0.0000001", "1e-309", "0x10",
               "1,5", "+", "", "  ", "9" * 400]  # fmt: skip


@pytest.mark.parametrize("value", ODD_NUMBERS)
@pytest.mark.parametrize("field", ["volume_ml", "gauge"])
def test_odd_numbers_in_an_injection_are_form_errors(surgeon_client, plan, field, value):
    before = _state(plan)
    for htmx in (False, True):
        response = surgeon_client.post(
            reverse("injection_create", args=[plan.pk]),
            _injection_data(plan, **{field: value}),
            **(HTMX if htmx else {}),
        )
        assert response.status_code == 422, (value, response.content.decode()[:300])
    assert _state(plan) == before


@pytest.mark.parametrize("value", [v for v in ODD_NUMBERS if v.strip()])
def test_odd_numbers_as_harvest_volume_are_form_errors(surgeon_client, plan, value):
    before = _state(plan)
    response = surgeon_client.post(
        reverse("plan_details_update", args=[plan.pk]), _details_data(plan, harvest_volume_ml=value)
    )
    assert response.status_code == 422, value
    assert _state(plan) == before


@pytest.mark.parametrize("value", ["1e309", "NaN", "-0", "0.0000001", "1.5", "abc"])
def test_odd_numbers_in_live_validation_are_field_errors(surgeon_client, plan, value):
    response = surgeon_client.post(
        reverse("injection_validate", args=[plan.pk]), _injection_data(plan, volume_ml=value)
    )
    assert response.status_code == 200
    assert 'class="' in response.content.decode()


@pytest.mark.parametrize("value", ["1e309", "NaN", "-1", "abc", "99999999999999999999"])
def test_an_odd_plan_version_is_refused_cleanly(surgeon_client, plan, value):
    before = _state(plan)
    data = {**_injection_data(plan), "version": value}
    response = surgeon_client.post(reverse("injection_create", args=[plan.pk]), data)
    assert response.status_code in (400, 409)
    assert _state(plan) == before


# --- oversized and malformed requests ---------------------------------------------------------


def test_a_3_mb_form_post_is_refused(colleague_client):
    response = colleague_client.post(
        reverse("patient_create"), _patient_data(notes="x" * (3 * 1024 * 1024))
    )
    assert response.status_code in (400, 413)
    assert not Patient.objects.filter(chart_number="A-9000").exists()


def test_a_3_mb_urlencoded_post_is_refused(colleague_client):
    body = "chart_number=A-9000&name=Big&date_of_birth=1980-01-01&notes=" + "x" * (3 << 20)
    response = colleague_client.post(
        reverse("patient_create"), body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code in (400, 413)
    assert not Patient.objects.filter(chart_number="A-9000").exists()


def test_a_3_mb_htmx_post_is_refused(surgeon_client, plan):
    before = _state(plan)
    response = surgeon_client.post(
        reverse("injection_create", args=[plan.pk]),
        _injection_data(plan, notes="y" * (3 << 20)),
        **HTMX,
    )
    assert response.status_code in (400, 413)
    assert _state(plan) == before


def test_more_than_1000_fields_are_refused(surgeon_client, plan):
    before = _state(plan)
    data = {**_injection_data(plan), **{f"extra{i}": "1" for i in range(1100)}}
    response = surgeon_client.post(reverse("injection_create", args=[plan.pk]), data)
    assert response.status_code == 400
    assert _state(plan) == before


@pytest.mark.parametrize("field", ["name", "notes", "allergies", "chart_number"])
def test_a_nul_byte_is_a_form_error(colleague_client, field):
    response = colleague_client.post(
        reverse("patient_create"), _patient_data(**{field: "Eve\x00Nul"})
    )
    assert response.status_code == 422
    assert not Patient.objects.filter(name__startswith="Eve").exists()


def test_a_nul_byte_in_plan_fields_is_a_form_error(surgeon_client, plan):
    before = _state(plan)
    for data, endpoint in (
        (_details_data(plan, notes="a\x00b"), "plan_details_update"),
        (_injection_data(plan, notes="a\x00b"), "injection_create"),
        (_injection_data(plan, volume_ml="0.3\x00"), "injection_create"),
        ({"version": _version(plan), "finding_key": "x\x00", "reason": "r"}, "warning_acknowledge"),
    ):
        response = surgeon_client.post(reverse(endpoint, args=[plan.pk]), data)
        assert response.status_code in (400, 409, 422), endpoint
    assert _state(plan) == before


def test_a_nul_byte_in_the_search_is_harmless(surgeon_client, patient):
    response = surgeon_client.post(reverse("patient_list"), {"q": "Ali\x00ce"})
    assert response.status_code == 422
    assert "Null characters are not allowed" in response.content.decode()


def test_a_malformed_multipart_body_is_refused(colleague_client):
    response = colleague_client.generic(
        "POST",
        reverse("patient_create"),
        b"--broken\r\nContent-Disposition: form-data; name=\r\n\r\n",
        content_type="multipart/form-data; boundary=broken",
    )
    assert response.status_code in (400, 422)


# --- SQL in parameters ------------------------------------------------------------------------

SQL = [
    "' OR '1'='1",
    "'; DROP TABLE planner_patient; --",
    "1 UNION SELECT password FROM planner_user",
    "%",
    "_",
    "\\",
    "name; DELETE FROM planner_auditentry",
]


@pytest.mark.parametrize("value", SQL)
def test_sql_in_the_search_finds_nothing_extra(surgeon_client, outsider_client, patient, value):
    response = surgeon_client.post(reverse("patient_list"), {"q": value})
    assert response.status_code == 200
    assert patient.name not in response.content.decode()
    response = outsider_client.post(reverse("patient_list"), {"q": value})
    assert patient.name not in response.content.decode()
    assert Patient.objects.filter(pk=patient.pk).exists()


@pytest.mark.parametrize("value", [*SQL, "-1", "999999999999", "1e3", "last"])
def test_sql_in_page_and_sort_parameters_is_ignored(surgeon_client, patient, value):
    response = surgeon_client.get(
        reverse("patient_list"), {"page": value, "sort": value, "o": value, "order": value}
    )
    assert response.status_code == 200
    assert patient.name in response.content.decode()


@pytest.mark.parametrize("value", SQL)
def test_sql_in_admin_search_and_ordering_is_harmless(admin_role_client, patient, value):
    for name in ("auditentry", "referencevalue", "treatmentzone", "user", "ruleset"):
        url = reverse(f"admin:planner_{name}_changelist")
        for params in ({"q": value}, {"o": value}, {"patient": value}, {"actor": value}):
            response = admin_role_client.get(url, params)
            assert response.status_code in (200, 302), (name, params)
    assert Patient.objects.filter(pk=patient.pk).exists()


def test_sql_in_a_zone_parameter_is_ignored(surgeon_client, plan):
    response = surgeon_client.get(
        reverse("injection_new", args=[plan.pk]), {"zone": "CHIN' OR '1'='1"}
    )
    assert response.status_code == 200


# --- races ------------------------------------------------------------------------------------


def test_two_writers_with_the_same_version_one_wins(surgeon_client, surgeon, plan):
    """In sequence (SQLite and PostgreSQL alike): the second is told, nothing of it is saved."""
    injection = plan.injections.get(zone__code="CHEEK_L")
    version = plan.version
    url = reverse("injection_edit", args=[plan.pk, injection.pk])
    prefix = f"inj{injection.pk}"
    first_data = _injection_data(plan, prefix, zone="CHEEK_L", volume_ml="0.25")
    second_data = _injection_data(plan, prefix, zone="CHEEK_L", volume_ml="0.45")
    first = surgeon_client.post(url, {**first_data, "version": version})
    second = surgeon_client.post(url, {**second_data, "version": version})
    assert (first.status_code, second.status_code) == (302, 409)
    assert "changed in another window" in second.content.decode()
    assert PlannedInjection.objects.get(pk=injection.pk).volume_ml == Decimal("0.25")


@pytest.mark.skipif(not POSTGRES, reason="real concurrency needs PostgreSQL (CI runs it)")
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_writers_exactly_one_wins(transactional_db, reference_data):
    from tests.factories import ClinicFactory, PatientFactory

    clinic = ClinicFactory(name="Race Clinic")
    surgeon = UserFactory(username="racer", clinic=clinic, role="surgeon")
    plan = TreatmentPlanFactory(patient=PatientFactory(clinic=clinic), surgeon=surgeon)
    PlannedInjectionFactory(plan=plan, zone_code="CHIN")
    injection = plan.injections.get()
    prefix = f"inj{injection.pk}"
    barrier = threading.Barrier(4)
    results: list[tuple[str, int]] = []

    def writer(volume: str) -> None:
        from django.db import connections

        client = Client()
        client.force_login(surgeon)
        data = _injection_data(plan, prefix, zone="CHIN", volume_ml=volume)
        barrier.wait()
        response = client.post(reverse("injection_edit", args=[plan.pk, injection.pk]), data)
        results.append((volume, response.status_code))
        connections.close_all()

    threads = [threading.Thread(target=writer, args=(v,)) for v in ("0.21", "0.22", "0.23", "0.24")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    codes = sorted(code for _, code in results)
    assert codes == [302, 409, 409, 409]
    (winner,) = [volume for volume, code in results if code == 302]
    fresh = TreatmentPlan.objects.get(pk=plan.pk)
    assert fresh.version == 2
    assert fresh.injections.get().volume_ml == Decimal(winner)
    assert AuditEntry.objects.filter(action=AuditAction.CHANGE).count() == 1


# --- the database going away; a held lock -----------------------------------------------------


def test_the_database_going_away_mid_write_answers_503_and_saves_nothing(
    surgeon_client, plan, monkeypatch
):
    """The injection row is written, then the connection fails before the audit entry: the
    transaction rolls back as a whole and the user gets the plain 503 page."""
    before = _state(plan)
    real_record = audit.record
    calls = []

    def failing(**kwargs):
        calls.append(kwargs["action"])
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(audit, "record", failing)
    for htmx in (False, True):
        response = surgeon_client.post(
            reverse("injection_create", args=[plan.pk]),
            _injection_data(plan, zone="NECK"),
            **(HTMX if htmx else {}),
        )
        assert response.status_code == 503
        assert "Temporarily unavailable" in response.content.decode()
        assert "Traceback" not in response.content.decode()
    monkeypatch.setattr(audit, "record", real_record)
    assert calls
    assert _state(plan) == before
    assert not PlannedInjection.objects.filter(plan=plan, zone__code="NECK").exists()


def test_the_database_going_away_while_reading_answers_503(surgeon_client, plan, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(services.engine, "current_rule_set", down)
    response = surgeon_client.post(reverse("plan_create", args=[plan.patient.pk]))
    assert response.status_code == 503
    assert TreatmentPlan.objects.filter(patient=plan.patient).count() == 1


@pytest.mark.skipif(not POSTGRES, reason="lock_timeout is a PostgreSQL setting (CI runs it)")
@pytest.mark.django_db(transaction=True)
def test_a_held_row_lock_answers_with_a_timeout_instead_of_hanging(
    transactional_db, reference_data
):
    import psycopg

    from tests.factories import ClinicFactory, PatientFactory

    clinic = ClinicFactory(name="Lock Clinic")
    surgeon = UserFactory(username="locked-out", clinic=clinic, role="surgeon")
    plan = TreatmentPlanFactory(patient=PatientFactory(clinic=clinic), surgeon=surgeon)
    PlannedInjectionFactory(plan=plan, zone_code="CHIN")
    db = connection.settings_dict
    holder = psycopg.connect(
        dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"] or 5432,
        password=db["PASSWORD"] or None, autocommit=False,
    )  # fmt: skip
    try:
        holder.execute("SELECT id FROM planner_treatmentplan WHERE id = %s FOR UPDATE", [plan.pk])
        client = Client()
        client.force_login(surgeon)
        started = time.monotonic()
        response = client.post(
            reverse("injection_create", args=[plan.pk]), _injection_data(plan, zone="NECK")
        )
        elapsed = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    configured = int(os.environ.get("DB_LOCK_TIMEOUT_MS", "5000")) / 1000
    assert response.status_code == 503
    assert elapsed < configured + 5
    assert not PlannedInjection.objects.filter(plan=plan, zone__code="NECK").exists()


def test_lock_and_statement_timeouts_are_configured_for_postgres():
    """The settings pass both timeouts to every PostgreSQL connection (nanofat/settings.py)."""
    from pathlib import Path

    text = (Path(settings.BASE_DIR) / "nanofat" / "settings.py").read_text(encoding="utf-8")
    assert "-c statement_timeout=" in text
    assert "-c lock_timeout=" in text
    if POSTGRES:
        with connection.cursor() as cursor:
            cursor.execute("SHOW lock_timeout")
            assert cursor.fetchone()[0] not in ("0", "0ms")
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] not in ("0", "0ms")


# --- production settings ----------------------------------------------------------------------


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DEBUG", "SECURE_", "SESSION_"))
    }
    environment.update(env)
    return subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", *args],
        env=environment,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


PRODUCTION = {
    "SECRET_KEY": "production-like-secret-" + "k3y" * 20,
    "ALLOWED_HOSTS": "planner.example.org",
    "DJANGO_SETTINGS_MODULE": "nanofat.settings",
}


def test_production_settings_pass_check_deploy():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_runs_with_debug_off_and_secure_cookies():
    code = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
        "s.SECURE_SSL_REDIRECT, s.X_FRAME_OPTIONS)"
    )
    result = _manage("shell", "--no-imports", "-c", code, env=PRODUCTION)
    assert result.stdout.strip().splitlines()[-1] == "False True True 31536000 True DENY"


def test_production_refuses_to_start_without_a_secret_key():
    result = _manage("check", env={**PRODUCTION, "SECRET_KEY": ""})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_the_tests_themselves_run_with_debug_off():
    assert settings.DEBUG is False


# --- logs -------------------------------------------------------------------------------------


class _Everything(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append(text)


@pytest.fixture
def every_log_line():
    """Every record of every logger at DEBUG, with tracebacks, while the test runs."""
    handler = _Everything()
    root = logging.getLogger()
    old_level = root.level
    quiet = {}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in ("django.request", "django.security", "axes", "planner", "django.server"):
        quiet[name] = logging.getLogger(name).level
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


def test_no_patient_name_reaches_the_logs(
    every_log_line, surgeon_client, colleague_client, outsider_client, client, plan, monkeypatch
):
    name = "Quentin Loggable-Secret"
    response = colleague_client.post(
        reverse("patient_create"),
        _patient_data(chart_number="L-1", name=name, notes=f"{name} notes", allergies=name),
    )
    assert response.status_code == 302
    patient = Patient.objects.get(chart_number="L-1")
    # A representative day: pages, partials, refusals, errors and the database going away.
    surgeon_client.post(reverse("patient_list"), {"q": "Quentin"})
    surgeon_client.get(reverse("patient_detail", args=[patient.pk]))
    surgeon_client.post(reverse("plan_create", args=[patient.pk]))
    new_plan = TreatmentPlan.objects.get(patient=patient)
    surgeon_client.get(reverse("plan_builder", args=[new_plan.pk]))
    surgeon_client.post(
        reverse("injection_create", args=[new_plan.pk]),
        _injection_data(new_plan, notes=name, volume_ml="NaN"),
        **HTMX,
    )
    surgeon_client.post(
        reverse("plan_details_update", args=[new_plan.pk]), _details_data(new_plan, notes=name)
    )
    colleague_client.post(reverse("patient_create"), _patient_data(chart_number="L-1", name=name))
    colleague_client.post(reverse("patient_create"), _patient_data(name=f"{name}\u202e"))
    colleague_client.post(reverse("patient_create"), _patient_data(notes="x" * (3 << 20)))
    outsider_client.get(reverse("patient_detail", args=[patient.pk]))
    outsider_client.post(reverse("plan_create", args=[patient.pk]))
    colleague_client.post(reverse("injection_create", args=[new_plan.pk]), {})
    client.post(reverse("login"), {"username": name, "password": "wrong"})
    client.get(reverse("plan_builder", args=[new_plan.pk]))
    colleague_client.get(reverse("consent_sheet", args=[new_plan.pk]))

    def down(*args, **kwargs):
        # A driver message may quote data; the 503 handler logs the error's type only.
        raise OperationalError(f"server closed the connection while saving {name}")

    monkeypatch.setattr(audit, "record", down)
    surgeon_client.get(reverse("patient_detail", args=[patient.pk]))
    log = "\n".join(every_log_line)
    assert log, "the handler saw nothing: the test would prove nothing"
    assert "Quentin" not in log
    assert "Loggable" not in log

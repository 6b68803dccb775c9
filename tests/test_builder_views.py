"""The plan builder's views: pages and htmx partials, access, versions, bad values, workflow.

The standing users come from conftest: ``surgeon`` (owner, clinic A), ``colleague`` (staff of
clinic A), ``clinic_admin`` (admin of clinic A) and ``outsider`` (a surgeon of clinic B). The
``plan`` fixture is a clinic-A draft with CHEEK_L 0.3 mL and UPPER_LIP 0.2 mL and no finding.
"""

import html
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from planner import engine
from planner.choices import AuditAction, PlanStatus
from planner.models import (
    AuditEntry,
    PlannedInjection,
    TreatmentPlan,
    TreatmentZone,
    WarningAcknowledgement,
)
from tests.factories import PlannedInjectionFactory, TreatmentPlanFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
STALE = "changed in another window"
NO_VERSION = "did not send the plan version"
LOCKED = "can no longer be edited"


# --- helpers --------------------------------------------------------------------------------


def url(name: str, *args) -> str:
    return reverse(name, args=args)


def text(response) -> str:
    """The response body as a person reads it (entities such as &#x27; decoded)."""
    return html.unescape(response.content.decode())


def fresh(plan: TreatmentPlan) -> TreatmentPlan:
    return TreatmentPlan.objects.get(pk=plan.pk)


def injection_data(version: int, prefix: str = "new", **fields) -> dict:
    """A valid add/edit form: 0.3 mL in CHEEK_R, 27 G needle, dermis, retrograde."""
    values = {
        "zone": "CHEEK_R",
        "volume_ml": "0.3",
        "instrument": "needle",
        "gauge": "27",
        "depth": "dermis",
        "technique": "retrograde",
        "notes": "",
    } | fields
    return {"version": str(version), **{f"{prefix}-{k}": v for k, v in values.items()}}


def details_data(version: int, **fields) -> dict:
    values = {
        "planned_for": "2030-05-04",
        "goal": "rejuvenation",
        "documented_indications": ["fine_lines"],
        "other_indications": "",
        "combination": "prf",
        "donor_site": "abdomen",
        "harvest_volume_ml": "20",
        "notes": "Left side first.",
    } | fields
    return {"version": str(version), **{f"plan-{k}": v for k, v in values.items()}}


def hx_trigger(response) -> dict:
    return json.loads(response["HX-Trigger"])


def oob_ids(response) -> set[str]:
    """The ids of the regions an htmx response swaps out of band: its own, or the one it
    replaces (``outerHTML:#id``, as the face map's zones do)."""
    import re

    body = response.content.decode()
    own = re.findall(r'id="([^"]+)"[^>]*hx-swap-oob="true"', body)
    return set(own) | set(re.findall(r'hx-swap-oob="outerHTML:#([^"]+)"', body))


def snapshot(plan: TreatmentPlan) -> tuple:
    """Everything a refused write must leave as it was."""
    plan = fresh(plan)
    injections = list(
        plan.injections.order_by("pk").values_list(
            "pk", "zone__code", "volume_ml", "instrument", "gauge", "depth", "technique", "notes"
        )
    )
    acknowledgements = list(plan.acknowledgements.values_list("finding_key", "reason"))
    details = (plan.planned_for, plan.goal, plan.indications, plan.combination, plan.notes)
    return plan.version, plan.status, details, injections, acknowledgements


def add(plan: TreatmentPlan, zone: str, volume: str, **fields) -> PlannedInjection:
    return PlannedInjectionFactory(
        plan=plan, zone_code=zone, volume_ml=Decimal(volume), position=100, **fields
    )


@pytest.fixture
def other_plan(patient, surgeon):
    """A second plan of the same clinic (and patient), for cross-plan injection ids."""
    plan = TreatmentPlanFactory(patient=patient, surgeon=surgeon)
    PlannedInjectionFactory(plan=plan, zone_code="FOREHEAD")
    return plan


@pytest.fixture
def fanning_plan(plan):
    """The plan with one warning: a fanning injection (TECHNIQUE_NOT_RETROGRADE)."""
    add(plan, "CHEEK_R", "0.3", technique="fanning")
    return plan


# Every endpoint as (method, url name, arguments built from the plan): the writes, then the reads.
def _injection(plan):
    return plan.injections.order_by("pk").first().pk


WRITES = {
    "plan_create": ("post", lambda p: (p.patient_id,)),
    "plan_repeat": ("post", lambda p: (p.pk,)),
    "plan_details_update": ("post", lambda p: (p.pk,)),
    "injection_new": ("get", lambda p: (p.pk,)),
    "injection_create": ("post", lambda p: (p.pk,)),
    "injection_edit GET": ("get", lambda p: (p.pk, _injection(p))),
    "injection_edit": ("post", lambda p: (p.pk, _injection(p))),
    "injection_delete": ("post", lambda p: (p.pk, _injection(p))),
    "injection_validate": ("post", lambda p: (p.pk,)),
    "warning_acknowledge": ("post", lambda p: (p.pk,)),
    "plan_transition": ("post", lambda p: (p.pk,)),
}
READS = {
    "plan_builder": ("get", lambda p: (p.pk,)),
    "injection_row": ("get", lambda p: (p.pk, _injection(p))),
}


def call(client: Client, endpoint: str, plan: TreatmentPlan, data=None, **extra):
    method, args = {**WRITES, **READS}[endpoint]
    target = url(endpoint.split()[0], *args(plan))
    if method == "get":
        return client.get(target, **extra)
    return client.post(target, data or {}, **extra)


def valid_data_for(endpoint: str, plan: TreatmentPlan) -> dict:
    """A request body that would succeed for the owner, so a refusal is about the user."""
    version = fresh(plan).version
    injection_id = _injection(plan)
    return {
        "plan_details_update": details_data(version),
        "injection_create": injection_data(version),
        "injection_edit": injection_data(version, f"inj{injection_id}", zone="CHEEK_L"),
        "injection_delete": {"version": version},
        "injection_validate": injection_data(version),
        "warning_acknowledge": {"version": version, "finding_key": "x", "reason": "Because."},
        "plan_transition": {"version": version, "target": "ready"},
    }.get(endpoint, {})


# --- access: login, roles, clinics ----------------------------------------------------------


@pytest.mark.parametrize("endpoint", [*WRITES, *READS])
def test_it_sends_anonymous_visitors_to_the_login_page(client, plan, endpoint):
    before = snapshot(plan)
    response = call(client, endpoint, plan, valid_data_for(endpoint, plan))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert snapshot(plan) == before


def test_it_sends_an_anonymous_htmx_request_to_login_as_a_full_page(client, plan):
    response = call(
        client, "injection_create", plan, valid_data_for("injection_create", plan), **HTMX
    )
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith(reverse("login"))
    assert plan.injections.count() == 2


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize("user", ["colleague", "clinic_admin"])
@pytest.mark.parametrize("endpoint", list(WRITES))
def test_it_refuses_writes_to_staff_and_admins(request, plan, endpoint, user, htmx):
    """Only surgeons plan; an HX-Request header does not change that."""
    client = Client()
    client.force_login(request.getfixturevalue(user))
    before = snapshot(plan)
    plans_before = TreatmentPlan.objects.count()
    response = call(
        client, endpoint, plan, valid_data_for(endpoint, plan), **(HTMX if htmx else {})
    )
    assert response.status_code == 403
    assert snapshot(plan) == before
    assert TreatmentPlan.objects.count() == plans_before


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize("endpoint", [*WRITES, *READS])
def test_it_hides_other_clinics_plans(outsider_client, plan, endpoint, htmx):
    before = snapshot(plan)
    plans_before = TreatmentPlan.objects.count()
    response = call(
        outsider_client, endpoint, plan, valid_data_for(endpoint, plan), **(HTMX if htmx else {})
    )
    assert response.status_code == 404
    assert snapshot(plan) == before
    assert TreatmentPlan.objects.count() == plans_before
    # Not even a "viewed" entry: the outsider learnt nothing about the plan.
    assert not AuditEntry.objects.filter(actor__username="outsider", patient=plan.patient).exists()


def test_staff_see_the_plan_read_only(colleague_client, plan):
    response = colleague_client.get(url("plan_builder", plan.pk))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="builder"' in body
    assert 'id="injection-form"' not in body
    assert url("injection_create", plan.pk) not in body
    assert url("plan_details_update", plan.pk) not in body
    assert url("plan_transition", plan.pk) not in body
    # The face map still shows every zone, as read-only shapes.
    assert '<g id="zone-UPPER_LIP"' in body


def test_the_read_only_details_name_the_indications(colleague_client, plan):
    TreatmentPlan.objects.filter(pk=plan.pk).update(indications=["skin_quality", "Rosacea"])
    page = text(colleague_client.get(url("plan_builder", plan.pk)))
    assert "<dt>Indications</dt><dd>Skin quality / facial rejuvenation; Rosacea</dd>" in page
    assert "skin_quality<" not in page


def test_staff_may_cancel_an_edit_row_read(colleague_client, plan):
    """injection_row is a read: staff get the row (without edit links)."""
    injection = plan.injections.first()
    response = colleague_client.get(url("injection_row", plan.pk, injection.pk), **HTMX)
    assert response.status_code == 200
    assert f'id="injection-{injection.pk}"' in response.content.decode()
    assert url("injection_edit", plan.pk, injection.pk) not in response.content.decode()


# --- the page -------------------------------------------------------------------------------


def test_the_builder_page_shows_map_rows_forms_and_findings(surgeon_client, plan):
    response = surgeon_client.get(url("plan_builder", plan.pk))
    assert response.status_code == 200
    body = response.content.decode()
    for region in ("builder", "face-map", "injection-rows", "injection-form", "zone-totals"):
        assert f'id="{region}"' in body, region
    for region in ("findings", "workflow", "plan-details"):
        assert f'id="{region}"' in body, region
    for zone in TreatmentZone.objects.filter(active=True):
        assert f'<a id="zone-{zone.code}"' in body, zone.code
    for injection in plan.injections.all():
        assert f'id="injection-{injection.pk}"' in body
    assert 'aria-live="polite"' in body
    assert f'name="version" value="{plan.version}"' in body
    assert "No findings" in body


def test_it_records_that_the_plan_was_viewed(surgeon_client, surgeon, plan):
    surgeon_client.get(url("plan_builder", plan.pk))
    entry = AuditEntry.objects.get(action=AuditAction.VIEW, object_id=str(plan.pk))
    assert entry.actor == surgeon
    assert entry.object_type == "treatmentplan"
    assert entry.patient == plan.patient


@pytest.mark.parametrize("count", [5, 40])
def test_the_builder_page_query_count_does_not_grow_with_injections(
    surgeon_client, patient, surgeon, count, django_assert_max_num_queries
):
    plan = TreatmentPlanFactory(patient=patient, surgeon=surgeon)
    zones = ["CHEEK_L", "CHEEK_R", "FOREHEAD", "UPPER_LIP", "CHIN", "NECK"]
    for index in range(count):
        add(plan, zones[index % len(zones)], "0.05", technique="fanning" if index % 3 else "bolus")
    surgeon_client.get(url("plan_builder", plan.pk))  # warm the session and the rule snapshot
    # One bound for both sizes: a query per injection would break it at 40.
    with django_assert_max_num_queries(15):
        response = surgeon_client.get(url("plan_builder", plan.pk))
    assert response.status_code == 200
    assert response.content.decode().count('class="sev-warning"') >= count


def test_the_builder_page_runs_the_same_queries_for_5_and_40_injections(
    surgeon_client, patient, surgeon
):
    counts = []
    for size in (5, 40):
        plan = TreatmentPlanFactory(patient=patient, surgeon=surgeon)
        for index in range(size):
            add(plan, ["CHEEK_L", "UPPER_LIP", "CHIN"][index % 3], "0.1")
        surgeon_client.get(url("plan_builder", plan.pk))
        with CaptureQueriesContext(connection) as queries:
            assert surgeon_client.get(url("plan_builder", plan.pk)).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


# --- creating plans -------------------------------------------------------------------------


def test_it_creates_a_draft_plan_for_the_patient(surgeon_client, surgeon, patient):
    response = surgeon_client.post(url("plan_create", patient.pk))
    plan = TreatmentPlan.objects.get(patient=patient)
    assert response.status_code == 302
    assert response["Location"] == url("plan_builder", plan.pk)
    assert (plan.status, plan.surgeon, plan.version) == (PlanStatus.DRAFT, surgeon, 1)
    assert plan.rule_set is not None
    assert AuditEntry.objects.filter(
        action=AuditAction.CREATE, object_type="treatmentplan", object_id=str(plan.pk)
    ).exists()


def test_it_refuses_a_plan_for_another_clinics_patient(outsider_client, patient):
    assert outsider_client.post(url("plan_create", patient.pk)).status_code == 404
    assert not TreatmentPlan.objects.exists()


def test_it_only_creates_plans_by_post(surgeon_client, patient):
    assert surgeon_client.get(url("plan_create", patient.pk)).status_code == 405
    assert not TreatmentPlan.objects.exists()


def test_repeat_creates_a_new_draft_copy(surgeon_client, surgeon, plan):
    plan.goal, plan.combination, plan.notes = "scar", "prp", "As before."
    plan.save()
    TreatmentPlan.objects.filter(pk=plan.pk).update(status=PlanStatus.CONSENTED)
    response = surgeon_client.post(url("plan_repeat", plan.pk))
    copy = TreatmentPlan.objects.exclude(pk=plan.pk).get()
    assert response.status_code == 302
    assert response["Location"] == url("plan_builder", copy.pk)
    assert (copy.status, copy.version, copy.repeated_from) == (PlanStatus.DRAFT, 1, fresh(plan))
    assert (copy.goal, copy.combination, copy.notes) == ("scar", "prp", "As before.")

    def rows(p):
        return list(p.injections.values_list("zone__code", "volume_ml", "gauge", "depth"))

    assert rows(copy) == rows(plan)
    assert fresh(plan).status == PlanStatus.CONSENTED  # the source is untouched
    message = text(surgeon_client.get(response["Location"]))
    day = plan.planned_for
    assert f"created from the plan of {day.day} {day:%b %Y}." in message  # "3 Dec", not "03 Dec"
    assert AuditEntry.objects.filter(
        action=AuditAction.CREATE, object_id=str(copy.pk), changes={"repeated_from": plan.pk}
    ).exists()


# --- plan details ---------------------------------------------------------------------------


def test_it_saves_the_plan_details(surgeon_client, plan):
    data = details_data(plan.version, other_indications="melasma")
    response = surgeon_client.post(url("plan_details_update", plan.pk), data)
    assert response.status_code == 302
    plan = fresh(plan)
    assert plan.version == 2
    assert (plan.combination, plan.notes) == ("prf", "Left side first.")
    assert plan.indications == ["fine_lines", "melasma"]
    assert str(plan.planned_for) == "2030-05-04"
    entry = AuditEntry.objects.get(action=AuditAction.CHANGE, object_type="treatmentplan")
    assert "combination" in entry.changes["fields"]


def test_typed_indications_count_once_and_documented_ones_become_their_checkbox(
    surgeon_client, plan
):
    typed = "Fine lines, rosacea, Rosacea , SKIN QUALITY, melasma, Melasma"
    data = details_data(plan.version, documented_indications=[], other_indications=typed)
    response = surgeon_client.post(url("plan_details_update", plan.pk), data)
    assert response.status_code == 302
    assert fresh(plan).indications == ["fine_lines", "skin_quality", "rosacea", "melasma"]


def test_an_injections_notes_show_in_its_row(surgeon_client, plan):
    add(plan, "FOREHEAD", "0.3", notes="Microdroplets <1 cm apart")
    body = surgeon_client.get(url("plan_builder", plan.pk)).content.decode()
    assert '<span class="row-note">Microdroplets &lt;1 cm apart</span>' in body


def test_saving_details_with_htmx_returns_the_form_and_the_regions_it_changes(surgeon_client, plan):
    data = details_data(plan.version, other_indications="melasma")
    response = surgeon_client.post(url("plan_details_update", plan.pk), data, **HTMX)
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<section id="plan-details"')
    assert oob_ids(response) == {"findings", "workflow", "face-map", "plan-heading"}
    assert hx_trigger(response) == {"plan-version": {"version": 2}}
    # The page's heading names the new session date.
    assert '<h1 id="plan-heading" hx-swap-oob="true">Nanofat plan, 4 May 2030' in (
        response.content.decode()
    )
    # The new undocumented indication shows up in the findings at once.
    assert "INDICATION_NOT_DOCUMENTED" in text(response)
    assert "Session details saved" in text(response)


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("harvest_volume_ml", "-5", "The harvest volume must be more than 0 mL."),
        ("harvest_volume_ml", "abc", "Enter the harvest volume in mL, e.g. 20."),
        ("planned_for", "not a date", "Enter a valid date."),
        ("goal", "miracle", "Select a valid choice."),
        ("planned_for", "1970-01-01", "before the patient's date of birth (15 June 1975)"),
        ("planned_for", "2099-01-01", "Check the session date: it is more than 5 years ahead."),
    ],
)
def test_it_rejects_bad_plan_details(surgeon_client, plan, field, value, message, htmx):
    before = snapshot(plan)
    data = details_data(plan.version, **{field: value})
    response = surgeon_client.post(
        url("plan_details_update", plan.pk), data, **(HTMX if htmx else {})
    )
    assert response.status_code == 422
    assert message in text(response)
    assert "nothing was saved" in text(response)
    assert snapshot(plan) == before


# --- adding injections ----------------------------------------------------------------------


def test_a_face_map_click_opens_the_add_form_for_that_zone(surgeon_client, plan):
    response = surgeon_client.get(url("injection_new", plan.pk) + "?zone=UPPER_LIP", **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="injection-form"')
    assert '<option value="UPPER_LIP" selected>' in body
    assert 'id="feedback-new-volume_ml"' in body
    # The volume is what the surgeon types next.
    volume_input = body.split('name="new-volume_ml"')[1].split(">")[0]
    assert "data-focus-after-swap" in volume_input


def test_the_add_form_link_works_without_javascript(surgeon_client, plan):
    response = surgeon_client.get(url("injection_new", plan.pk) + "?zone=CHIN")
    assert response.status_code == 200
    body = response.content.decode()
    assert '<div id="builder"' in body
    assert '<option value="CHIN" selected>' in body


def test_an_unknown_zone_in_the_face_map_link_preselects_nothing(surgeon_client, plan):
    response = surgeon_client.get(url("injection_new", plan.pk) + "?zone=NOSE_TIP", **HTMX)
    assert response.status_code == 200
    zone_select = response.content.decode().split('name="new-zone"')[1].split("</select>")[0]
    assert '<option value="" selected>' in zone_select


def test_it_adds_an_injection(surgeon_client, surgeon, plan):
    data = injection_data(plan.version, zone="CHIN", volume_ml="0.35", notes="Dimple")
    response = surgeon_client.post(url("injection_create", plan.pk), data)
    assert response.status_code == 302
    assert response["Location"] == url("plan_builder", plan.pk)
    injection = plan.injections.get(zone__code="CHIN")
    assert injection.volume_ml == Decimal("0.35")
    assert (injection.gauge, injection.notes) == (27, "Dimple")
    assert injection.position == 2  # after the two already planned
    assert fresh(plan).version == 2
    entry = AuditEntry.objects.get(action=AuditAction.CREATE, object_type="plannedinjection")
    assert (entry.actor, entry.object_id) == (surgeon, str(injection.pk))
    assert entry.patient == plan.patient
    follow = surgeon_client.get(response["Location"])
    assert "Injection in Chin saved." in text(follow)


def test_adding_with_htmx_appends_the_row_and_updates_the_other_regions(surgeon_client, plan):
    data = injection_data(plan.version, zone="UPPER_LIP", volume_ml="0.4")
    response = surgeon_client.post(url("injection_create", plan.pk), data, **HTMX)
    assert response.status_code == 200
    injection = plan.injections.get(zone__code="UPPER_LIP", volume_ml=Decimal("0.4"))
    body = response.content.decode()
    # The new row travels in a <template>, appended to the table body out of band.
    assert body.startswith('<template><tbody hx-swap-oob="beforeend:#injection-rows">')
    assert f'<tr id="injection-{injection.pk}"' in body
    # The other UPPER_LIP row is re-rendered too: its zone now totals 0.6 mL, above the maximum.
    sibling = plan.injections.get(zone__code="UPPER_LIP", volume_ml=Decimal("0.2"))
    # Of the face map, only the zone the injection went to.
    regions = {"injection-form", "zone-UPPER_LIP", "zone-totals", "findings", "workflow"}
    assert oob_ids(response) == regions | {f"injection-{sibling.pk}"}
    assert "ZONE_VOLUME_ABOVE_MAX" in body.split(f'<tr id="injection-{sibling.pk}"')[1]
    assert f"injection-{plan.injections.get(zone__code='CHEEK_L').pk}" not in body
    assert response["HX-Reswap"] == "none"
    assert hx_trigger(response) == {"plan-version": {"version": 2}}
    # 0.2 + 0.4 mL in the upper lip is above the documented maximum: the findings say so.
    assert "ZONE_VOLUME_ABOVE_MAX" in text(response)
    assert "clinical summary, ref 5" in text(response)
    # The add form comes back empty and ready for the next zone.
    form = body.split('id="injection-form"')[1]
    assert 'name="new-volume_ml"' in form
    assert 'value="0.4"' not in form


BAD_INJECTION_VALUES = [
    ("volume_ml", "", "Enter the volume in mL."),
    ("volume_ml", "-0.3", "The volume must be more than 0 mL."),
    ("volume_ml", "abc", "Enter the volume as a number of mL, e.g. 0.3."),
    ("volume_ml", "1e9", "Enter a volume below 1,000 mL."),
    ("volume_ml", "25", "25 mL is not a plausible facial injection (at most 20 mL)."),
    ("volume_ml", "NaN", "Enter the volume as a number of mL, e.g. 0.3."),
    ("volume_ml", "Infinity", "Enter the volume as a number of mL, e.g. 0.3."),
    ("volume_ml", "-0", "The volume must be more than 0 mL."),
    ("volume_ml", "0", "The volume must be more than 0 mL."),
    ("volume_ml", "0.0000001", "Use at most two decimal places (0.01 mL)."),
    ("volume_ml", "0.125", "Use at most two decimal places (0.01 mL)."),
    ("gauge", "27.5", "Enter the gauge as a whole number, e.g. 27."),
    ("gauge", "9", "9 G is not a needle or cannula gauge; enter 10-34."),
    ("gauge", "-27", "Enter a gauge from 10 to 34, e.g. 27."),
    ("gauge", "", "Enter the gauge, e.g. 27."),
    ("zone", "NOT_A_ZONE", "Choose a treatment zone from the list."),
    ("zone", "", "This field is required."),
    ("instrument", "scalpel", "Select a valid choice. scalpel is not one of the available"),
    ("depth", "bone", "Select a valid choice. bone is not one of the available"),
    ("technique", "spray", "Select a valid choice. spray is not one of the available"),
]
BAD_IDS = [f"{field}={value or 'empty'}" for field, value, _ in BAD_INJECTION_VALUES]


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize(("field", "value", "message"), BAD_INJECTION_VALUES, ids=BAD_IDS)
def test_it_rejects_a_bad_new_injection_and_saves_nothing(
    surgeon_client, plan, field, value, message, htmx
):
    before = snapshot(plan)
    data = injection_data(plan.version, **{field: value})
    response = surgeon_client.post(url("injection_create", plan.pk), data, **(HTMX if htmx else {}))
    assert response.status_code == 422
    body = text(response)
    # The message sits in the field's feedback element, which the input names in aria-describedby.
    feedback = body.split(f'id="feedback-new-{field}"')[1].split("</div>")[0]
    assert message in feedback
    assert f'aria-describedby="feedback-new-{field}"' in body
    assert snapshot(plan) == before
    assert not AuditEntry.objects.filter(object_type="plannedinjection").exists()
    if htmx:
        assert response["HX-Retarget"] == "#injection-form"
        assert response["HX-Reswap"] == "outerHTML"
        assert body.lstrip().startswith('<section id="injection-form"')
    else:
        assert '<div id="builder"' in body


def test_a_rejected_injection_keeps_what_was_typed(surgeon_client, plan):
    data = injection_data(plan.version, volume_ml="abc", notes="keep me")
    response = surgeon_client.post(url("injection_create", plan.pk), data, **HTMX)
    assert response.status_code == 422
    assert 'value="abc"' in response.content.decode()
    assert 'value="keep me"' in response.content.decode()


def test_an_inactive_zone_cannot_be_planned(surgeon_client, plan):
    TreatmentZone.objects.filter(code="NECK").update(active=False)
    data = injection_data(plan.version, zone="NECK")
    response = surgeon_client.post(url("injection_create", plan.pk), data)
    assert response.status_code == 422
    assert "Choose a treatment zone from the list." in text(response)
    assert plan.injections.count() == 2


def test_trailing_zeros_carry_no_precision(surgeon_client, plan):
    """0.300 mL is 0.3 mL, as the check_plan contract reads it too."""
    data = injection_data(plan.version, zone="CHIN", volume_ml="0.300")
    response = surgeon_client.post(url("injection_create", plan.pk), data)
    assert response.status_code == 302
    assert plan.injections.get(zone__code="CHIN").volume_ml == Decimal("0.3")


# --- editing and deleting injections --------------------------------------------------------


def test_the_edit_row_opens_in_place(surgeon_client, plan):
    injection = plan.injections.get(zone__code="CHEEK_L")
    response = surgeon_client.get(url("injection_edit", plan.pk, injection.pk), **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith(f'<tr id="injection-{injection.pk}" class="editing">')
    assert f'name="inj{injection.pk}-volume_ml"' in body
    assert 'value="0.30"' in body
    assert '<option value="CHEEK_L" selected>' in body
    assert f'name="injection_id" value="{injection.pk}"' in body
    assert f'name="version" value="{plan.version}"' in body


def test_the_edit_page_works_without_javascript(surgeon_client, plan):
    injection = plan.injections.get(zone__code="CHEEK_L")
    response = surgeon_client.get(url("injection_edit", plan.pk, injection.pk))
    assert response.status_code == 200
    assert "<h1>Edit the" in text(response)
    assert f'action="{url("injection_edit", plan.pk, injection.pk)}"' in response.content.decode()


def test_cancelling_an_edit_returns_the_read_only_row(surgeon_client, plan):
    injection = plan.injections.get(zone__code="CHEEK_L")
    response = surgeon_client.get(url("injection_row", plan.pk, injection.pk), **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith(f'<tr id="injection-{injection.pk}"')
    assert "editing" not in body.split(">")[0]
    plain = surgeon_client.get(url("injection_row", plan.pk, injection.pk))
    assert plain.status_code == 302
    assert plain["Location"] == url("plan_builder", plan.pk)


def test_it_edits_an_injection(surgeon_client, surgeon, plan):
    injection = plan.injections.get(zone__code="CHEEK_L")
    data = injection_data(plan.version, f"inj{injection.pk}", zone="CHEEK_L", volume_ml="0.45")
    response = surgeon_client.post(url("injection_edit", plan.pk, injection.pk), data)
    assert response.status_code == 302
    injection.refresh_from_db()
    assert injection.volume_ml == Decimal("0.45")
    assert fresh(plan).version == 2
    entry = AuditEntry.objects.get(action=AuditAction.CHANGE, object_type="plannedinjection")
    assert entry.actor == surgeon
    assert entry.object_id == str(injection.pk)
    assert "volume_ml" in entry.changes["fields"]


def test_editing_with_htmx_replaces_the_row_and_the_regions_it_changes(surgeon_client, plan):
    injection = plan.injections.get(zone__code="UPPER_LIP")
    data = injection_data(plan.version, f"inj{injection.pk}", zone="UPPER_LIP", volume_ml="0.6")
    response = surgeon_client.post(url("injection_edit", plan.pk, injection.pk), data, **HTMX)
    assert response.status_code == 200
    assert oob_ids(response) == {
        f"injection-{injection.pk}",
        "zone-UPPER_LIP",  # of the face map, only the edited zone
        "zone-totals",
        "findings",
        "workflow",
    }
    assert response["HX-Reswap"] == "none"
    assert hx_trigger(response) == {"plan-version": {"version": 2}}
    assert "ZONE_VOLUME_ABOVE_MAX" in text(response)
    # The add form is left as the surgeon had typed it.
    assert 'id="injection-form"' not in response.content.decode()


def region(body: str, tag: str, region_id: str) -> str:
    """One region of a page or an htmx answer, as the page would hold it."""
    import re

    found = re.search(rf'<{tag} id="{region_id}".*?</{tag}>', body, flags=re.S).group(0)
    return found.replace(' hx-swap-oob="true"', "")


@pytest.mark.parametrize(
    ("zone", "volume"), [("CHEEK_L", "0.45"), ("UPPER_LIP", "0.45"), ("NECK", "0.6")]
)
def test_an_edit_answers_with_the_regions_the_page_then_shows(surgeon_client, plan, zone, volume):
    """The answer reviews the injections read before the save with the change applied; it shows
    the same totals, findings and face-map zones as the builder page drawn afterwards."""
    injection = plan.injections.get(zone__code="CHEEK_L")
    data = injection_data(plan.version, f"inj{injection.pk}", zone=zone, volume_ml=volume)
    answer = surgeon_client.post(url("injection_edit", plan.pk, injection.pk), data, **HTMX)
    assert answer.status_code == 200
    page = surgeon_client.get(url("plan_builder", plan.pk)).content.decode()
    touched = {"CHEEK_L", zone}
    regions = [("section", "zone-totals"), ("section", "findings")]
    regions += [("a", f"zone-{code}") for code in touched]
    for tag, region_id in regions:
        assert region(answer.content.decode(), tag, region_id) == region(page, tag, region_id)
    # No other zone of the face map comes back: nothing else about them changed.
    shown = {name for name in oob_ids(answer) if name.startswith("zone-") and name != "zone-totals"}
    assert shown == {f"zone-{code}" for code in touched}
    assert 'id="face-map"' not in answer.content.decode()


def test_moving_an_injection_redraws_the_rows_left_in_its_old_zone(surgeon_client, plan):
    """The zone it leaves has a new total, so that zone's other rows get their findings anew."""
    import re

    moved = plan.injections.get(zone__code="CHEEK_L")
    stays = PlannedInjectionFactory(plan=plan, zone_code="CHEEK_L", position=2)
    data = injection_data(plan.version, f"inj{moved.pk}", zone="CHIN")
    response = surgeon_client.post(url("injection_edit", plan.pk, moved.pk), data, **HTMX)
    assert response.status_code == 200
    rows = set(re.findall(r'<tr id="injection-(\d+)"', response.content.decode()))
    assert rows == {str(moved.pk), str(stays.pk)}


def test_an_edit_cannot_move_an_injection_to_an_inactive_zone(surgeon_client, plan):
    injection = plan.injections.get(zone__code="CHEEK_L")
    TreatmentZone.objects.filter(code="NECK").update(active=False)
    before = snapshot(plan)
    data = injection_data(plan.version, f"inj{injection.pk}", zone="NECK")
    response = surgeon_client.post(url("injection_edit", plan.pk, injection.pk), data, **HTMX)
    assert response.status_code == 422
    assert "Choose a treatment zone from the list." in text(response)
    assert snapshot(plan) == before


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize(("field", "value", "message"), BAD_INJECTION_VALUES, ids=BAD_IDS)
def test_it_rejects_a_bad_edit_and_keeps_the_saved_injection(
    surgeon_client, plan, field, value, message, htmx
):
    injection = plan.injections.get(zone__code="CHEEK_L")
    prefix = f"inj{injection.pk}"
    before = snapshot(plan)
    data = injection_data(plan.version, prefix, **({"zone": "CHEEK_L"} | {field: value}))
    response = surgeon_client.post(
        url("injection_edit", plan.pk, injection.pk), data, **(HTMX if htmx else {})
    )
    assert response.status_code == 422
    feedback = text(response).split(f'id="feedback-{prefix}-{field}"')[1].split("</div>")[0]
    assert message in feedback
    assert snapshot(plan) == before
    if htmx:
        assert response.content.decode().lstrip().startswith(f'<tr id="injection-{injection.pk}"')


def test_it_deletes_an_injection(surgeon_client, surgeon, plan):
    injection = plan.injections.get(zone__code="CHEEK_L")
    response = surgeon_client.post(
        url("injection_delete", plan.pk, injection.pk), {"version": plan.version}
    )
    assert response.status_code == 302
    assert not PlannedInjection.objects.filter(pk=injection.pk).exists()
    assert fresh(plan).version == 2
    entry = AuditEntry.objects.get(action=AuditAction.DELETE)
    assert (entry.actor, entry.object_type, entry.object_id) == (
        surgeon,
        "plannedinjection",
        str(injection.pk),
    )
    assert entry.changes == {"plan": plan.pk, "zone": "CHEEK_L", "volume_ml": "0.30"}


def test_deleting_with_htmx_updates_the_regions_out_of_band(surgeon_client, plan):
    injection = plan.injections.get(zone__code="CHEEK_L")
    response = surgeon_client.post(
        url("injection_delete", plan.pk, injection.pk), {"version": plan.version}, **HTMX
    )
    assert response.status_code == 200
    assert oob_ids(response) == {"face-map", "zone-totals", "findings", "workflow"}
    assert f'id="injection-{injection.pk}"' not in response.content.decode()
    assert hx_trigger(response) == {"plan-version": {"version": 2}}


def test_deleting_only_by_post(surgeon_client, plan):
    injection = plan.injections.first()
    response = surgeon_client.get(url("injection_delete", plan.pk, injection.pk))
    assert response.status_code == 405
    assert PlannedInjection.objects.filter(pk=injection.pk).exists()


@pytest.mark.parametrize(
    "endpoint", ["injection_edit GET", "injection_edit", "injection_delete", "injection_row"]
)
@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_another_plans_injection_is_not_found(surgeon_client, plan, other_plan, endpoint, htmx):
    """The URL names this plan but another plan's injection: 404, and nothing changes."""
    foreign = other_plan.injections.get()
    before, other_before = snapshot(plan), snapshot(other_plan)
    method, _ = {**WRITES, **READS}[endpoint]
    target = url(endpoint.split()[0], plan.pk, foreign.pk)
    data = injection_data(plan.version, f"inj{foreign.pk}", zone="CHIN")
    extra = HTMX if htmx else {}
    response = (
        surgeon_client.get(target, **extra)
        if method == "get"
        else surgeon_client.post(target, data, **extra)
    )
    assert response.status_code == 404
    assert snapshot(plan) == before
    assert snapshot(other_plan) == other_before


def test_live_validation_of_another_plans_injection_is_not_found(surgeon_client, plan, other_plan):
    foreign = other_plan.injections.get()
    data = injection_data(plan.version, f"inj{foreign.pk}") | {"injection_id": str(foreign.pk)}
    response = surgeon_client.post(url("injection_validate", plan.pk), data, **HTMX)
    assert response.status_code == 404


def test_an_unknown_injection_id_is_not_found(surgeon_client, plan):
    response = surgeon_client.post(
        url("injection_delete", plan.pk, 999_999), {"version": plan.version}
    )
    assert response.status_code == 404
    assert fresh(plan).version == 1


# --- live validation ------------------------------------------------------------------------


def feedback(response, prefix: str, field: str) -> str:
    return text(response).split(f'id="feedback-{prefix}-{field}"')[1].split("</div>")[0]


def test_live_validation_shows_the_rule_and_its_citation_next_to_the_volume(surgeon_client, plan):
    before = snapshot(plan)
    data = injection_data(plan.version, zone="UPPER_LIP", volume_ml="0.6")
    response = surgeon_client.post(url("injection_validate", plan.pk), data, **HTMX)
    assert response.status_code == 200
    volume = feedback(response, "new", "volume_ml")
    assert "ZONE_VOLUME_ABOVE_MAX" in volume
    # 0.6 typed + 0.2 already planned in the upper lip.
    assert "UPPER_LIP: 0.8 mL planned in total, above the documented 0.2\u20130.5 mL" in volume
    assert "clinical summary, ref 5" in volume
    assert 'hx-swap-oob="true"' in response.content.decode()
    for other in ("zone", "instrument", "gauge", "depth", "technique"):
        assert "sev-" not in feedback(response, "new", other), other
    assert snapshot(plan) == before
    assert not AuditEntry.objects.filter(patient=plan.patient).exists()


@pytest.mark.parametrize(
    ("fields", "field", "rule", "cite"),
    [
        ({"zone": "CHIN", "volume_ml": "0.1"}, "volume_ml", "ZONE_VOLUME_BELOW_MIN", "ref 5"),
        ({"gauge": "21"}, "gauge", "GAUGE_TOO_LARGE_BORE", "refs 5, 3"),
        ({"gauge": "32"}, "gauge", "GAUGE_FINER_THAN_RANGE", "refs 5, 3"),
        ({"depth": "supraperiosteal"}, "depth", "DEPTH_NOT_ALLOWED", "refs 1, 5, 3"),
        (
            {"zone": "LOWER_LIP", "depth": "intramuscular"},
            "depth",
            "PERIORAL_BELOW_ORBICULARIS",
            "ref 5",
        ),
        (
            {"zone": "LOWER_LIP", "depth": "superficial_dermis"},
            "depth",
            "PERIORAL_TOO_SUPERFICIAL",
            "ref 5",
        ),
        ({"technique": "fanning"}, "technique", "TECHNIQUE_NOT_RETROGRADE", "ref 5"),
    ],
)
def test_live_validation_puts_each_rule_next_to_its_field(
    surgeon_client, plan, fields, field, rule, cite
):
    data = injection_data(plan.version, **fields)
    response = surgeon_client.post(url("injection_validate", plan.pk), data, **HTMX)
    assert response.status_code == 200
    assert rule in feedback(response, "new", field)
    assert f"clinical summary, {cite}" in feedback(response, "new", field)
    assert plan.injections.count() == 2


def test_live_validation_shows_field_errors_before_rules(surgeon_client, plan):
    data = injection_data(plan.version, volume_ml="abc")
    response = surgeon_client.post(url("injection_validate", plan.pk), data, **HTMX)
    assert response.status_code == 200
    assert "Enter the volume as a number of mL, e.g. 0.3." in feedback(response, "new", "volume_ml")
    assert plan.injections.count() == 2


def test_live_validation_of_an_edit_counts_the_zone_without_the_old_value(surgeon_client, plan):
    injection = plan.injections.get(zone__code="UPPER_LIP")
    prefix = f"inj{injection.pk}"
    data = injection_data(plan.version, prefix, zone="UPPER_LIP", volume_ml="0.45")
    data["injection_id"] = str(injection.pk)
    response = surgeon_client.post(url("injection_validate", plan.pk), data, **HTMX)
    assert response.status_code == 200
    # 0.45 replaces the 0.2 already saved: within range, so nothing fires.
    assert "sev-" not in feedback(response, prefix, "volume_ml")
    data[f"{prefix}-volume_ml"] = "0.55"
    response = surgeon_client.post(url("injection_validate", plan.pk), data, **HTMX)
    assert "ZONE_VOLUME_ABOVE_MAX" in feedback(response, prefix, "volume_ml")
    assert injection.__class__.objects.get(pk=injection.pk).volume_ml == Decimal("0.20")


def test_live_validation_refuses_a_malformed_injection_id(surgeon_client, plan):
    data = injection_data(plan.version) | {"injection_id": "1 OR 1=1"}
    response = surgeon_client.post(url("injection_validate", plan.pk), data, **HTMX)
    assert response.status_code == 400


# --- optimistic versions --------------------------------------------------------------------


def stale_requests(plan: TreatmentPlan) -> dict[str, tuple[str, dict]]:
    """Each write of the builder as a request that would succeed with the current version."""
    injection = plan.injections.get(zone__code="CHEEK_L")
    review_key = "TECHNIQUE_NOT_RETROGRADE:CHEEK_R:#{}".format(
        plan.injections.get(zone__code="CHEEK_R").pk
    )
    version = plan.version
    return {
        "details": (url("plan_details_update", plan.pk), details_data(version)),
        "create": (url("injection_create", plan.pk), injection_data(version, zone="CHIN")),
        "edit": (
            url("injection_edit", plan.pk, injection.pk),
            injection_data(version, f"inj{injection.pk}", zone="CHEEK_L", volume_ml="0.4"),
        ),
        "delete": (url("injection_delete", plan.pk, injection.pk), {"version": version}),
        "acknowledge": (
            url("warning_acknowledge", plan.pk),
            {"version": version, "finding_key": review_key, "reason": "Scar tissue."},
        ),
        "transition": (
            url("plan_transition", plan.pk),
            {"version": version, "target": "cancelled"},
        ),
    }


WRITE_KINDS = ["details", "create", "edit", "delete", "acknowledge", "transition"]


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize("kind", WRITE_KINDS)
def test_it_rejects_a_stale_version(surgeon_client, fanning_plan, kind, htmx):
    plan = fanning_plan
    target, data = stale_requests(plan)[kind]
    # Someone else saved in the meantime: the plan is at version 2, this page saw version 1.
    TreatmentPlan.objects.filter(pk=plan.pk).update(version=2)
    before = snapshot(plan)
    response = surgeon_client.post(target, data, **(HTMX if htmx else {}))
    assert response.status_code == 409
    body = text(response)
    assert STALE in body
    assert "Your change was not saved" in body
    assert snapshot(plan) == before
    # The fresh state comes with it: the current version for the next attempt.
    assert 'name="version" value="2"' in body
    if htmx:
        assert response["HX-Retarget"] == "#builder"
        assert response["HX-Reswap"] == "outerHTML"
        assert body.lstrip().startswith('<div id="builder"')
    else:
        assert "<html" in body


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize("kind", ["details", "create", "edit"])
def test_a_stale_write_gives_back_what_was_typed(surgeon_client, fanning_plan, kind, htmx):
    plan = fanning_plan
    injection = plan.injections.get(zone__code="CHEEK_L")
    typed = "Typed before a colleague saved"
    target, data = {
        "details": (url("plan_details_update", plan.pk), details_data(1, notes=typed)),
        "create": (
            url("injection_create", plan.pk),
            injection_data(1, zone="CHIN", volume_ml="0.35", notes=typed),
        ),
        "edit": (
            url("injection_edit", plan.pk, injection.pk),
            injection_data(1, f"inj{injection.pk}", zone="CHEEK_L", volume_ml="0.45", notes=typed),
        ),
    }[kind]
    TreatmentPlan.objects.filter(pk=plan.pk).update(version=2)

    response = surgeon_client.post(target, data, **(HTMX if htmx else {}))

    assert response.status_code == 409
    body = text(response)
    assert typed in body  # nothing typed is lost
    if kind != "details":
        assert 'value="0.35"' in body if kind == "create" else 'value="0.45"' in body
    if kind == "edit":
        assert f'<tr id="injection-{injection.pk}" class="editing">' in body
    # Sent again, it goes to the current version.
    assert 'name="version" value="2"' in body


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize("kind", WRITE_KINDS)
@pytest.mark.parametrize("version", [None, "", "abc", "0"], ids=["absent", "empty", "abc", "0"])
def test_it_rejects_a_write_without_a_version(surgeon_client, fanning_plan, kind, version, htmx):
    target, data = stale_requests(fanning_plan)[kind]
    data = dict(data)
    if version is None:
        del data["version"]
    else:
        data["version"] = version
    before = snapshot(fanning_plan)
    response = surgeon_client.post(target, data, **(HTMX if htmx else {}))
    assert response.status_code == 400
    assert NO_VERSION in text(response)
    assert snapshot(fanning_plan) == before


def test_two_writes_from_the_same_page_version_apply_once(surgeon_client, plan):
    first = injection_data(plan.version, zone="CHIN")
    second = injection_data(plan.version, zone="NECK")
    assert surgeon_client.post(url("injection_create", plan.pk), first).status_code == 302
    assert surgeon_client.post(url("injection_create", plan.pk), second).status_code == 409
    added = plan.injections.filter(zone__code__in=["CHIN", "NECK"])
    assert list(added.values_list("zone__code", flat=True)) == ["CHIN"]


def test_htmx_writes_carry_the_new_version_for_the_next_write(surgeon_client, plan):
    """The HX-Trigger version lets the same page write again (app.js copies it into forms)."""
    response = surgeon_client.post(
        url("injection_create", plan.pk), injection_data(plan.version, zone="CHIN"), **HTMX
    )
    version = hx_trigger(response)["plan-version"]["version"]
    response = surgeon_client.post(
        url("injection_create", plan.pk), injection_data(version, zone="NECK"), **HTMX
    )
    assert response.status_code == 200
    assert fresh(plan).version == 3


def version_inputs(response) -> set[str]:
    import re

    return set(re.findall(r'name="version" value="(\d+)" class="plan-version"', text(response)))


def test_fragment_links_send_the_page_version(surgeon_client, plan):
    body = surgeon_client.get(url("plan_builder", plan.pk)).content.decode()
    assert '<input type="hidden" id="page-version" name="version" value="1"' in body
    injection = plan.injections.first()
    for target in (
        url("injection_new", plan.pk) + "?zone=CHIN",
        url("injection_edit", plan.pk, injection.pk),
    ):
        assert f'hx-get="{target}" hx-include="#page-version"' in body, target


@pytest.mark.parametrize("endpoint", ["injection_new", "injection_edit GET", "injection_row"])
def test_a_fragment_fetched_into_a_stale_page_keeps_that_pages_version(
    surgeon_client, plan, endpoint
):
    """A click in a stale tab must not quietly refresh one form's version (lost update)."""
    TreatmentPlan.objects.filter(pk=plan.pk).update(version=5)
    response = call(surgeon_client, endpoint, plan, None, QUERY_STRING="version=4", **HTMX)
    assert response.status_code == 200
    assert version_inputs(response) == {"4"}
    # Without a page version (a link opened in a new tab), the current version is used.
    response = call(surgeon_client, endpoint, plan, None, **HTMX)
    assert version_inputs(response) == {"5"}


def test_a_fragment_from_a_stale_page_then_refuses_the_write(surgeon_client, plan):
    """The stale tab's add form, opened from the face map, is refused with the fresh plan."""
    TreatmentPlan.objects.filter(pk=plan.pk).update(version=2)  # another tab saved
    form = surgeon_client.get(
        url("injection_new", plan.pk), {"zone": "CHIN", "version": "1"}, **HTMX
    )
    version = version_inputs(form).pop()
    response = surgeon_client.post(
        url("injection_create", plan.pk), injection_data(version, zone="CHIN"), **HTMX
    )
    assert response.status_code == 409
    assert STALE in text(response)
    assert not plan.injections.filter(zone__code="CHIN").exists()


def test_a_rejected_injection_goes_back_with_the_pages_version(surgeon_client, plan):
    TreatmentPlan.objects.filter(pk=plan.pk).update(version=2)
    data = injection_data(1, zone="CHIN", volume_ml="abc")
    response = surgeon_client.post(url("injection_create", plan.pk), data, **HTMX)
    assert response.status_code == 422
    assert version_inputs(response) == {"1"}
    injection = plan.injections.first()
    data = injection_data(1, f"inj{injection.pk}", zone="CHEEK_L", volume_ml="abc")
    response = surgeon_client.post(url("injection_edit", plan.pk, injection.pk), data, **HTMX)
    assert response.status_code == 422
    assert version_inputs(response) == {"1"}


def test_rejected_details_go_back_with_the_pages_version(surgeon_client, plan):
    TreatmentPlan.objects.filter(pk=plan.pk).update(version=2)
    data = details_data(1, harvest_volume_ml="-1")
    response = surgeon_client.post(url("plan_details_update", plan.pk), data, **HTMX)
    assert response.status_code == 422
    assert version_inputs(response) == {"1"}
    # Nor may the page's other forms be moved on to the current version.
    assert "HX-Trigger" not in response


# --- warnings and workflow ------------------------------------------------------------------


def ready(client, plan, **extra):
    return client.post(
        url("plan_transition", plan.pk),
        {"version": fresh(plan).version, "target": "ready"},
        **extra,
    )


def warning_key(plan: TreatmentPlan) -> str:
    injection = plan.injections.get(technique="fanning")
    return f"TECHNIQUE_NOT_RETROGRADE:{injection.zone.code}:#{injection.pk}"


def test_the_builder_offers_an_acknowledgement_form_for_each_warning(surgeon_client, fanning_plan):
    response = surgeon_client.get(url("plan_builder", fanning_plan.pk))
    body = response.content.decode()
    assert "TECHNIQUE_NOT_RETROGRADE" in body
    assert f'name="finding_key" value="{warning_key(fanning_plan)}"' in body
    assert "acknowledge 1 warning with a reason" in text(response)


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_ready_is_refused_while_an_error_stands(surgeon_client, plan, htmx):
    add(plan, "UPPER_LIP", "0.4")  # 0.6 mL in the upper lip
    before = snapshot(plan)
    response = ready(surgeon_client, plan, **(HTMX if htmx else {}))
    assert response.status_code == 422
    refusal = "cannot be marked ready while 1 error finding(s) stand: ZONE_VOLUME_ABOVE_MAX"
    assert refusal in text(response)
    assert snapshot(plan) == before


def test_ready_is_refused_for_a_plan_without_injections(surgeon_client, plan):
    plan.injections.all().delete()
    response = ready(surgeon_client, plan)
    assert response.status_code == 422
    assert "NO_INJECTIONS" in text(response)
    assert fresh(plan).status == PlanStatus.DRAFT


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_ready_is_refused_until_the_harvest_volume_is_recorded(surgeon_client, plan, htmx):
    TreatmentPlan.objects.filter(pk=plan.pk).update(harvest_volume_ml=None)
    page = text(surgeon_client.get(url("plan_builder", plan.pk)))
    assert "To mark the plan ready: record the harvest volume in the session details." in page
    before = snapshot(plan)

    response = ready(surgeon_client, fresh(plan), **(HTMX if htmx else {}))

    assert response.status_code == 422
    assert "Record the harvest volume in the session details first" in text(response)
    assert snapshot(plan) == before
    TreatmentPlan.objects.filter(pk=plan.pk).update(harvest_volume_ml=Decimal("25"))
    assert ready(surgeon_client, fresh(plan)).status_code == 302
    assert fresh(plan).status == PlanStatus.READY


def test_ready_is_refused_while_a_warning_is_unacknowledged(surgeon_client, fanning_plan):
    response = ready(surgeon_client, fanning_plan)
    assert response.status_code == 422
    assert (
        "Acknowledge each warning with a reason first (1 still open: TECHNIQUE_NOT_RETROGRADE)"
        in text(response)
    )
    assert fresh(fanning_plan).status == PlanStatus.DRAFT


@pytest.mark.parametrize("reason", ["", "   "], ids=["empty", "blank"])
def test_an_acknowledgement_needs_a_reason(surgeon_client, fanning_plan, reason):
    before = snapshot(fanning_plan)
    response = surgeon_client.post(
        url("warning_acknowledge", fanning_plan.pk),
        {"version": 1, "finding_key": warning_key(fanning_plan), "reason": reason},
        **HTMX,
    )
    assert response.status_code == 422
    assert "Acknowledgement not saved: Write why you go ahead despite this warning." in text(
        response
    )
    assert snapshot(fanning_plan) == before


def test_an_acknowledgement_of_a_warning_that_does_not_stand_is_refused(surgeon_client, plan):
    response = surgeon_client.post(
        url("warning_acknowledge", plan.pk),
        {"version": 1, "finding_key": "TECHNIQUE_NOT_RETROGRADE:CHEEK_L:#1", "reason": "x"},
    )
    assert response.status_code == 422
    assert "That warning no longer applies to the plan." in text(response)
    assert not WarningAcknowledgement.objects.exists()


def test_an_acknowledgement_records_who_when_and_why_then_ready_works(
    surgeon_client, surgeon, fanning_plan
):
    plan = fanning_plan
    key = warning_key(plan)
    response = surgeon_client.post(
        url("warning_acknowledge", plan.pk),
        {"version": 1, "finding_key": key, "reason": "Fanning suits this scar."},
        **HTMX,
    )
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<section id="findings"')
    assert oob_ids(response) == {"workflow"}
    assert hx_trigger(response) == {"plan-version": {"version": 2}}
    assert "Acknowledged by" in text(response)
    assert "Fanning suits this scar." in text(response)
    acknowledgement = WarningAcknowledgement.objects.get(plan=plan)
    assert (acknowledgement.finding_key, acknowledgement.rule) == (key, "TECHNIQUE_NOT_RETROGRADE")
    assert acknowledgement.reason == "Fanning suits this scar."
    assert acknowledgement.acknowledged_by == surgeon
    assert acknowledgement.acknowledged_at is not None
    assert AuditEntry.objects.filter(
        action=AuditAction.CHANGE, object_type="treatmentplan", changes={"acknowledged": key}
    ).exists()

    response = ready(surgeon_client, plan)
    assert response.status_code == 302
    plan = fresh(plan)
    assert plan.status == PlanStatus.READY
    assert plan.version == 3
    entry = AuditEntry.objects.get(action=AuditAction.TRANSITION)
    assert entry.changes == {"status": ["draft", "ready"]}
    page = surgeon_client.get(response["Location"])
    assert "Plan is now ready for consent." in text(page)


def test_an_acknowledgement_lapses_when_the_values_it_was_given_for_change(surgeon_client, plan):
    injection = add(plan, "FOREHEAD", "0.3", instrument="needle", gauge=32)
    review = engine.review_plan(plan)
    (finding,) = [f for f in review.warnings if f.rule == "GAUGE_FINER_THAN_RANGE"]
    key = review.key(finding)
    response = surgeon_client.post(
        url("warning_acknowledge", plan.pk),
        {"version": 1, "finding_key": key, "reason": "Thin skin: 32 G on purpose."},
        **HTMX,
    )
    assert response.status_code == 200
    PlannedInjection.objects.filter(pk=injection.pk).update(gauge=33)

    page = surgeon_client.get(url("plan_builder", plan.pk))

    body = page.content.decode()
    assert "(1 to acknowledge)" in body
    assert "The values changed since this warning was acknowledged" in body
    assert ">Thin skin: 32 G on purpose.</textarea>" in body  # offered again, not counted
    refused = ready(surgeon_client, plan)
    assert refused.status_code == 422
    assert "1 still open: GAUGE_FINER_THAN_RANGE" in text(refused)
    assert fresh(plan).status == PlanStatus.DRAFT


def test_ready_with_htmx_reloads_the_page(surgeon_client, plan):
    response = ready(surgeon_client, plan, **HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == url("plan_builder", plan.pk)
    assert fresh(plan).status == PlanStatus.READY


def test_a_ready_plan_can_return_to_draft(surgeon_client, plan):
    ready(surgeon_client, plan)
    response = surgeon_client.post(
        url("plan_transition", plan.pk), {"version": fresh(plan).version, "target": "draft"}
    )
    assert response.status_code == 302
    assert fresh(plan).status == PlanStatus.DRAFT


def test_a_ready_plan_offers_no_edit_forms(surgeon_client, plan):
    """Edits are refused until the plan returns to draft, so the page does not offer them."""
    ready(surgeon_client, plan)
    body = surgeon_client.get(url("plan_builder", plan.pk)).content.decode()
    assert 'id="injection-form"' not in body
    assert url("plan_details_update", plan.pk) not in body
    assert "Return to draft" in body


@pytest.mark.parametrize("kind", [k for k in WRITE_KINDS if k != "transition"])
def test_a_ready_plan_refuses_edits_until_it_returns_to_draft(surgeon_client, fanning_plan, kind):
    plan = fanning_plan
    TreatmentPlan.objects.filter(pk=plan.pk).update(status=PlanStatus.READY)
    target, data = stale_requests(plan)[kind]
    before = snapshot(plan)
    response = surgeon_client.post(target, data)
    assert response.status_code in (409, 422)
    assert "return it to draft before changing it" in text(response)
    assert snapshot(plan) == before


@pytest.mark.parametrize("target", ["performed", "consented", "archived", ""])
def test_it_refuses_an_unknown_or_staff_only_status_change(surgeon_client, plan, target):
    response = surgeon_client.post(
        url("plan_transition", plan.pk), {"version": 1, "target": target}
    )
    assert response.status_code == 422
    assert "Unknown status change." in text(response)
    assert fresh(plan).status == PlanStatus.DRAFT


# --- read-only plans ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [PlanStatus.CONSENTED, PlanStatus.PERFORMED])
def test_a_consented_or_performed_plan_has_no_edit_forms(surgeon_client, fanning_plan, status):
    plan = fanning_plan
    TreatmentPlan.objects.filter(pk=plan.pk).update(status=status)
    response = surgeon_client.get(url("plan_builder", plan.pk))
    assert response.status_code == 200
    body = response.content.decode()
    assert "read-only" in body
    assert 'id="injection-form"' not in body
    assert "<textarea" not in body
    for name in ("plan_details_update", "injection_create", "warning_acknowledge"):
        assert url(name, plan.pk) not in body, name
    for injection in plan.injections.all():
        assert url("injection_edit", plan.pk, injection.pk) not in body
        assert url("injection_delete", plan.pk, injection.pk) not in body
    assert '<a id="zone-' not in body  # the map is not clickable
    assert "Start a new draft from this plan" in body


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize("kind", [k for k in WRITE_KINDS if k != "transition"])
@pytest.mark.parametrize("status", [PlanStatus.CONSENTED, PlanStatus.PERFORMED])
def test_a_consented_or_performed_plan_refuses_every_write(
    surgeon_client, fanning_plan, kind, status, htmx
):
    plan = fanning_plan
    TreatmentPlan.objects.filter(pk=plan.pk).update(status=status)
    target, data = stale_requests(plan)[kind]
    before = snapshot(plan)
    response = surgeon_client.post(target, data, **(HTMX if htmx else {}))
    assert response.status_code in (409, 422)
    assert LOCKED in text(response)
    assert snapshot(plan) == before


@pytest.mark.parametrize("target", ["ready", "draft"])
def test_a_consented_plan_cannot_change_status_back(surgeon_client, plan, target):
    TreatmentPlan.objects.filter(pk=plan.pk).update(status=PlanStatus.CONSENTED)
    response = surgeon_client.post(
        url("plan_transition", plan.pk), {"version": 1, "target": target}
    )
    assert response.status_code == 422
    assert LOCKED in text(response)
    assert fresh(plan).status == PlanStatus.CONSENTED


def test_a_consented_plan_can_be_repeated_but_not_edited(surgeon_client, plan):
    TreatmentPlan.objects.filter(pk=plan.pk).update(status=PlanStatus.CONSENTED)
    response = surgeon_client.post(url("plan_repeat", plan.pk))
    assert response.status_code == 302
    assert TreatmentPlan.objects.filter(repeated_from=plan, status=PlanStatus.DRAFT).count() == 1


def test_the_live_check_reads_the_saved_injections_as_the_review_does(patient, surgeon):
    from planner import engine

    plan = TreatmentPlanFactory(patient=patient, surgeon=surgeon)
    kept = [
        PlannedInjectionFactory(
            plan=plan, zone_code=zone, volume_ml=Decimal(volume), position=position
        )
        for position, (zone, volume) in enumerate(
            [("FOREHEAD", "0.3"), ("UPPER_LIP", "0.15"), ("CHIN", "0.4")]
        )
    ]
    stored = engine.stored_injection_inputs(plan)
    assert stored == tuple(engine.injection_input(i) for i in plan.injections.all())
    assert [i.zone for i in stored] == ["FOREHEAD", "UPPER_LIP", "CHIN"]
    without = engine.stored_injection_inputs(plan, exclude=kept[1].pk)
    assert [i.zone for i in without] == ["FOREHEAD", "CHIN"]


@pytest.mark.parametrize(
    ("injections", "expected"),
    [
        ([], "To mark the plan ready: add at least one injection."),
        (
            [("FOREHEAD", "0.6", "fanning")],
            "To mark the plan ready: resolve 1 error; acknowledge 1 warning with a reason.",
        ),
        (
            [("FOREHEAD", "0.6", "retrograde"), ("CHIN", "0.6", "retrograde")],
            "To mark the plan ready: resolve 2 errors.",
        ),
    ],
)
def test_the_status_card_lists_what_stands_before_ready(surgeon_client, plan, injections, expected):
    plan.injections.all().delete()
    for zone, volume, technique in injections:
        add(plan, zone, volume, technique=technique)
    assert expected in text(surgeon_client.get(url("plan_builder", plan.pk)))

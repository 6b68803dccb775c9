"""Procedure day: presets, the processing record, the performed record, deviations, addenda."""

from decimal import Decimal

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from planner import procedure
from planner.admin_procedure import ProtocolPresetAdmin
from planner.deviations import deviations
from planner.models import (
    AuditEntry,
    PerformedInjection,
    PlanAddendum,
    ProcessingRecord,
    ProtocolPreset,
    TreatmentPlan,
    TreatmentZone,
)
from planner.rules import InjectionInput

pytestmark = pytest.mark.django_db

PROCESSING = {
    "proc-donor_site": "abdomen",
    "proc-harvest_volume_ml": "20",
    "proc-harvest_cannula": "Multiport 2.1 mm",
    "proc-harvest_cannula_hole_mm": "1",
    "proc-emulsification_passes": "30",
    "proc-connector_bore_mm": "1.4",
    "proc-filter_type": "Mesh cartridge",
    "proc-filter_pore_mm": "0.5",
    "proc-nanofat_yield_ml": "4",
    "proc-harvest_to_injection_minutes": "25",
    "proc-kit_lot": "KIT-2026-118",
    "proc-filter_lot": "FLT-77",
}


@pytest.fixture
def consented_plan(plan):
    TreatmentPlan.objects.filter(pk=plan.pk).update(status="consented")
    plan.refresh_from_db()
    return plan


def url(plan) -> str:
    return reverse("procedure_day", args=[plan.pk])


def stamp(plan) -> str:
    return procedure.procedure_state(plan).stamp


def performed_post(plan, rows, **extra) -> dict:
    data = {
        "action": "performed",
        "stamp": stamp(plan),
        "done-TOTAL_FORMS": str(len(rows)),
        "done-INITIAL_FORMS": "0",
        "done-MIN_NUM_FORMS": "0",
        "done-MAX_NUM_FORMS": "80",
    }
    for index, (zone, volume, instrument, gauge, depth, technique) in enumerate(rows):
        data |= {
            f"done-{index}-zone": zone,
            f"done-{index}-volume_ml": volume,
            f"done-{index}-instrument": instrument,
            f"done-{index}-gauge": str(gauge),
            f"done-{index}-depth": depth,
            f"done-{index}-technique": technique,
        }
    return data | extra


AS_PLANNED = [
    ("CHEEK_L", "0.30", "needle", 27, "dermis", "retrograde"),
    ("UPPER_LIP", "0.20", "needle", 27, "dermis", "retrograde"),
]


# --- presets ------------------------------------------------------------------------------------


def make_preset(clinic, injections, **fields) -> ProtocolPreset:
    preset = ProtocolPreset.objects.create(clinic=clinic, name=fields.pop("name", "Lips"), **fields)
    for index, (code, volume) in enumerate(injections):
        preset.injections.create(
            zone=TreatmentZone.objects.get(code=code), volume_ml=volume, gauge=27, position=index
        )
    return preset


def preset_admin_post(clinic_admin, preset_fields, rows):
    """Saves a preset through the real admin view, as a clinic admin would."""
    from django.test import Client

    client = Client()
    client.force_login(clinic_admin)
    data = {
        "name": "Perioral",
        "description": "",
        "goal": "rejuvenation",
        "indications": '["fine_lines"]',
        "combination": "none",
        "active": "on",
        "injections-TOTAL_FORMS": str(len(rows)),
        "injections-INITIAL_FORMS": "0",
        "injections-MIN_NUM_FORMS": "0",
        "injections-MAX_NUM_FORMS": "1000",
    } | preset_fields
    for index, (zone_id, volume) in enumerate(rows):
        data |= {
            f"injections-{index}-zone": str(zone_id),
            f"injections-{index}-volume_ml": volume,
            f"injections-{index}-instrument": "needle",
            f"injections-{index}-gauge": "27",
            f"injections-{index}-depth": "dermis",
            f"injections-{index}-technique": "retrograde",
            f"injections-{index}-position": str(index),
        }
    return client.post(reverse("admin:planner_protocolpreset_add"), data)


@pytest.fixture
def preset_admin_user(clinic_admin):
    from django.contrib.auth.models import Permission

    clinic_admin.user_permissions.add(
        *Permission.objects.filter(
            codename__in=[
                "add_protocolpreset",
                "change_protocolpreset",
                "view_protocolpreset",
                "add_presetinjection",
                "change_presetinjection",
                "view_presetinjection",
                "delete_presetinjection",
            ]
        )
    )
    return clinic_admin


def test_a_preset_with_an_error_finding_cannot_be_saved_and_the_message_names_the_rule(
    preset_admin_user,
):
    upper_lip = TreatmentZone.objects.get(code="UPPER_LIP").pk
    response = preset_admin_post(preset_admin_user, {}, [(upper_lip, "0.4"), (upper_lip, "0.3")])
    assert response.status_code == 200  # the form again, with the error
    assert "ZONE_VOLUME_ABOVE_MAX" in response.content.decode()
    assert not ProtocolPreset.objects.exists()


def test_a_preset_within_the_documented_ranges_is_saved_for_the_admins_clinic(
    preset_admin_user, clinic
):
    upper_lip = TreatmentZone.objects.get(code="UPPER_LIP").pk
    response = preset_admin_post(preset_admin_user, {}, [(upper_lip, "0.3")])
    assert response.status_code == 302
    preset = ProtocolPreset.objects.get()
    assert (preset.clinic, preset.injections.count()) == (clinic, 1)


def test_a_volumization_preset_is_refused(preset_admin_user):
    cheek = TreatmentZone.objects.get(code="CHEEK_L").pk
    response = preset_admin_post(preset_admin_user, {"goal": "volumization"}, [(cheek, "0.3")])
    assert "VOLUMIZATION_GOAL" in response.content.decode()
    assert not ProtocolPreset.objects.exists()


def test_the_preset_admin_shows_only_the_admins_own_clinic(clinic, other_clinic, clinic_admin):
    mine = make_preset(clinic, [("CHIN", "0.3")], name="Mine")
    make_preset(other_clinic, [("CHIN", "0.3")], name="Theirs")
    request = RequestFactory().get("/")
    request.user = clinic_admin
    queryset = ProtocolPresetAdmin(ProtocolPreset, admin.site).get_queryset(request)
    assert list(queryset) == [mine]


def test_a_surgeon_starts_a_new_draft_from_a_preset(surgeon_client, patient, clinic):
    preset = make_preset(
        clinic, [("UPPER_LIP", "0.3"), ("LOWER_LIP", "0.2")], indications=["fine_lines"]
    )
    response = surgeon_client.post(
        reverse("plan_from_preset", args=[patient.pk]), {"preset": preset.pk}
    )
    plan = TreatmentPlan.objects.get(patient=patient)
    assert response.status_code == 302
    assert response["Location"] == plan.get_absolute_url()
    assert plan.status == "draft"
    assert plan.indications == ["fine_lines"]
    assert [(i.zone.code, i.volume_ml) for i in plan.injections.all()] == [
        ("UPPER_LIP", Decimal("0.30")),
        ("LOWER_LIP", Decimal("0.20")),
    ]


def test_another_clinics_preset_cannot_be_used(surgeon_client, patient, other_clinic):
    preset = make_preset(other_clinic, [("CHIN", "0.3")])
    surgeon_client.post(reverse("plan_from_preset", args=[patient.pk]), {"preset": preset.pk})
    assert not TreatmentPlan.objects.filter(patient=patient).exists()


def test_staff_cannot_start_a_plan_from_a_preset(colleague_client, patient, clinic):
    preset = make_preset(clinic, [("CHIN", "0.3")])
    response = colleague_client.post(
        reverse("plan_from_preset", args=[patient.pk]), {"preset": preset.pk}
    )
    assert response.status_code == 403


# --- processing record and yield --------------------------------------------------------------


def test_the_page_suggests_a_harvest_volume_from_the_clinic_yield_ratio(
    surgeon_client, consented_plan
):
    page = surgeon_client.get(url(consented_plan)).content.decode()
    assert "Planned nanofat: <strong>0.5 mL</strong>" in page
    assert "harvest about <strong>1 mL</strong>" in page  # 0.5 mL / 0.5 ratio, rounded up
    assert "a clinic default, not a documented value" in page


def test_suggested_harvest_rounds_up_to_whole_millilitres():
    assert procedure.suggested_harvest_ml(Decimal("2.1"), Decimal("0.5")) == Decimal(5)
    assert procedure.suggested_harvest_ml(Decimal("0"), Decimal("0.5")) == Decimal(0)


def test_the_processing_record_is_saved_with_its_lots(surgeon_client, consented_plan):
    response = surgeon_client.post(
        url(consented_plan), {"action": "processing", "stamp": stamp(consented_plan), **PROCESSING}
    )
    assert response.status_code == 302
    record = ProcessingRecord.objects.get(plan=consented_plan)
    assert (record.kit_lot, record.filter_lot, record.nanofat_yield_ml) == (
        "KIT-2026-118",
        "FLT-77",
        Decimal("4"),
    )


def test_a_yield_below_the_planned_total_is_an_error_finding(surgeon_client, consented_plan):
    surgeon_client.post(
        url(consented_plan),
        {
            "action": "processing",
            "stamp": stamp(consented_plan),
            **PROCESSING,
            "proc-nanofat_yield_ml": "0.4",
        },
    )
    page = surgeon_client.get(url(consented_plan)).content.decode()
    assert "YIELD_BELOW_PLANNED" in page
    assert "The nanofat yield of 0.4 mL is below the 0.5 mL planned in total" in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("proc-nanofat_yield_ml", "25", "cannot exceed the harvest"),
        ("proc-nanofat_yield_ml", "abc", "Enter the nanofat obtained in mL"),
        ("proc-harvest_volume_ml", "-3", "Enter a value above 0"),
        ("proc-filter_pore_mm", "0", "Enter a value above 0"),
    ],
)
def test_bad_processing_values_get_a_specific_message_and_save_nothing(
    surgeon_client, consented_plan, field, value, message
):
    response = surgeon_client.post(
        url(consented_plan),
        {"action": "processing", "stamp": stamp(consented_plan), **PROCESSING, field: value},
    )
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not ProcessingRecord.objects.exists()


# --- performed record, deviations, completion ---------------------------------------------------


def test_the_performed_record_is_prefilled_from_the_consented_plan(surgeon_client, consented_plan):
    page = surgeon_client.get(url(consented_plan)).content.decode()
    assert 'name="done-0-volume_ml" value="0.30"' in page
    assert 'name="done-1-volume_ml" value="0.20"' in page


def test_deviations_name_each_changed_zone():
    def inj(zone, volume, technique="retrograde"):
        return InjectionInput(zone, "midface", Decimal(volume), "needle", 27, "dermis", technique)

    found = deviations(
        [inj("CHEEK_L", "0.3"), inj("CHIN", "0.2"), inj("FOREHEAD", "0.4")],
        [
            inj("CHEEK_L", "0.3"),
            inj("CHIN", "0.25"),
            inj("NECK", "0.3"),
            inj("FOREHEAD", "0.4", "fanning"),
        ],
    )
    assert [d.description for d in found] == [
        "CHIN: 0.2 mL planned, 0.25 mL injected",
        "FOREHEAD: method changed from needle 27 G, dermis, retrograde to needle 27 G, dermis, "
        "fanning",
        "NECK: not in the consented plan, 0.3 mL injected",
    ]


def test_completing_requires_a_reason_for_each_deviation(surgeon_client, consented_plan):
    surgeon_client.post(
        url(consented_plan), {"action": "processing", "stamp": stamp(consented_plan), **PROCESSING}
    )
    rows = [AS_PLANNED[0], ("UPPER_LIP", "0.25", "needle", 27, "dermis", "retrograde")]
    surgeon_client.post(url(consented_plan), performed_post(consented_plan, rows))
    response = surgeon_client.post(
        url(consented_plan),
        {"action": "complete", "stamp": stamp(consented_plan), "end-adverse_events": ""},
    )
    assert response.status_code == 422
    assert "Give a reason for the deviation in UPPER_LIP." in response.content.decode()
    consented_plan.refresh_from_db()
    assert consented_plan.status == "consented"

    response = surgeon_client.post(
        url(consented_plan),
        {
            "action": "complete",
            "stamp": stamp(consented_plan),
            "end-adverse_events": "",
            "end-zone:UPPER_LIP": "Asymmetry corrected on the table",
        },
    )
    assert response.status_code == 302
    consented_plan.refresh_from_db()
    assert consented_plan.status == "performed"
    assert consented_plan.outcome.deviation_reasons == {
        "zone:UPPER_LIP": "Asymmetry corrected on the table"
    }


def test_completing_without_a_processing_record_is_refused(surgeon_client, consented_plan):
    surgeon_client.post(url(consented_plan), performed_post(consented_plan, AS_PLANNED))
    response = surgeon_client.post(
        url(consented_plan), {"action": "complete", "stamp": stamp(consented_plan)}
    )
    assert response.status_code == 422
    assert "record the harvest and processing" in response.content.decode()


def test_the_rules_run_on_what_was_performed(surgeon_client, consented_plan):
    rows = [("UPPER_LIP", "0.30", "needle", 27, "intramuscular", "retrograde")]
    surgeon_client.post(url(consented_plan), performed_post(consented_plan, rows))
    page = surgeon_client.get(url(consented_plan)).content.decode()
    assert "PERIORAL_BELOW_ORBICULARIS" in page
    assert "CHEEK_L: planned 0.3 mL, not injected" in page


def test_a_stale_procedure_page_is_refused(surgeon_client, consented_plan):
    old = stamp(consented_plan)
    surgeon_client.post(url(consented_plan), performed_post(consented_plan, AS_PLANNED))
    response = surgeon_client.post(
        url(consented_plan), {"action": "processing", "stamp": old, **PROCESSING}
    )
    assert response.status_code == 409
    assert "changed in another window" in response.content.decode()
    assert not ProcessingRecord.objects.exists()


def test_the_procedure_page_opens_only_for_consented_or_performed_plans(surgeon_client, plan):
    response = surgeon_client.get(url(plan))
    assert response.status_code == 302
    assert response["Location"] == plan.get_absolute_url()


def test_staff_see_the_record_but_cannot_write(colleague_client, consented_plan):
    assert colleague_client.get(url(consented_plan)).status_code == 200
    response = colleague_client.post(
        url(consented_plan), {"action": "processing", "stamp": stamp(consented_plan), **PROCESSING}
    )
    assert response.status_code == 403
    assert not ProcessingRecord.objects.exists()


def test_another_clinic_gets_404(outsider_client, consented_plan):
    assert outsider_client.get(url(consented_plan)).status_code == 404
    assert outsider_client.post(url(consented_plan), {"action": "processing"}).status_code == 404


# --- after completion ----------------------------------------------------------------------------


@pytest.fixture
def performed_plan(surgeon_client, consented_plan):
    surgeon_client.post(
        url(consented_plan), {"action": "processing", "stamp": stamp(consented_plan), **PROCESSING}
    )
    surgeon_client.post(url(consented_plan), performed_post(consented_plan, AS_PLANNED))
    surgeon_client.post(
        url(consented_plan),
        {
            "action": "complete",
            "stamp": stamp(consented_plan),
            "end-adverse_events": "Mild bruising, left cheek",
        },
    )
    consented_plan.refresh_from_db()
    assert consented_plan.status == "performed"
    return consented_plan


@pytest.mark.parametrize("action", ["processing", "performed", "complete"])
def test_a_performed_plan_refuses_every_procedure_write(surgeon_client, performed_plan, action):
    data = {"action": action, "stamp": stamp(performed_plan), **PROCESSING}
    if action == "performed":
        data = performed_post(performed_plan, AS_PLANNED[:1])
    response = surgeon_client.post(url(performed_plan), data)
    assert response.status_code == 422
    assert "Only a consented plan can be recorded" in response.content.decode()
    assert PerformedInjection.objects.filter(plan=performed_plan).count() == 2


def test_a_performed_plan_refuses_builder_writes(surgeon_client, performed_plan):
    injection = performed_plan.injections.first()
    prefix = f"inj{injection.pk}"
    response = surgeon_client.post(
        reverse("injection_edit", args=[performed_plan.pk, injection.pk]),
        {
            "version": performed_plan.version,
            f"{prefix}-zone": "CHEEK_L",
            f"{prefix}-volume_ml": "0.4",
            f"{prefix}-instrument": "needle",
            f"{prefix}-gauge": "27",
            f"{prefix}-depth": "dermis",
            f"{prefix}-technique": "retrograde",
        },
    )
    assert response.status_code == 409
    assert "performed and can no longer be edited" in response.content.decode()
    injection.refresh_from_db()
    assert injection.volume_ml == Decimal("0.30")


def test_a_performed_plan_accepts_dated_addenda(surgeon_client, performed_plan):
    response = surgeon_client.post(
        url(performed_plan),
        {
            "action": "addendum",
            "stamp": stamp(performed_plan),
            "add-text": "Patient called: all well",
        },
    )
    assert response.status_code == 302
    addendum = PlanAddendum.objects.get(plan=performed_plan)
    assert addendum.text == "Patient called: all well"
    assert addendum.created_at is not None
    page = surgeon_client.get(url(performed_plan)).content.decode()
    assert "Patient called: all well" in page
    assert "Mild bruising, left cheek" in page


def test_addenda_are_refused_before_the_plan_is_performed(surgeon_client, consented_plan):
    response = surgeon_client.post(
        url(consented_plan),
        {"action": "addendum", "stamp": stamp(consented_plan), "add-text": "Too early"},
    )
    assert response.status_code == 422
    assert not PlanAddendum.objects.exists()


# --- the operative record (second document of the procedure sheet) ---------------------------


def operative_text(client, plan) -> str:
    import io

    from pypdf import PdfReader

    response = client.get(reverse("operative_record_pdf", args=[plan.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "no-store" in response["Cache-Control"]
    assert "Alice" not in response["Content-Disposition"]
    reader = PdfReader(io.BytesIO(response.content))
    return " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)


def test_the_operative_record_lists_lots_deviations_and_planned_versus_performed(
    surgeon_client, consented_plan
):
    surgeon_client.post(
        url(consented_plan),
        {"action": "processing", "stamp": stamp(consented_plan), **PROCESSING},
    )
    rows = [AS_PLANNED[0], ("UPPER_LIP", "0.25", "needle", 27, "dermis", "retrograde")]
    surgeon_client.post(url(consented_plan), performed_post(consented_plan, rows))
    surgeon_client.post(
        url(consented_plan),
        {
            "action": "complete",
            "stamp": stamp(consented_plan),
            "end-adverse_events": "Vasovagal episode, resolved",
            "end-zone:UPPER_LIP": "Asymmetry corrected on the table",
        },
    )
    text = operative_text(surgeon_client, consented_plan)
    assert "Nanofat operative record" in text
    assert "KIT-2026-118" in text
    assert "FLT-77" in text
    assert "UPPER_LIP: 0.2 mL planned, 0.25 mL injected" in text
    assert "Asymmetry corrected on the table" in text
    assert "Vasovagal episode, resolved" in text
    assert "Page 1 of" in text
    assert AuditEntry.objects.filter(
        action="print", object_id=str(consented_plan.pk), changes__document="operative_record"
    ).exists()


def test_the_operative_record_exists_only_once_performed(surgeon_client, consented_plan):
    response = surgeon_client.get(reverse("operative_record_pdf", args=[consented_plan.pk]))
    assert response.status_code == 404


def test_staff_can_download_the_operative_record_and_other_clinics_cannot(
    colleague_client, outsider_client, performed_plan
):
    assert "Nanofat operative record" in operative_text(colleague_client, performed_plan)
    response = outsider_client.get(reverse("operative_record_pdf", args=[performed_plan.pk]))
    assert response.status_code == 404

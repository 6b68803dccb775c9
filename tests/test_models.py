"""The database itself refuses impossible rows, whatever code path (or person in a SQL shell)
writes them: every write here bypasses forms and model validation on purpose."""

import datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from planner.choices import AuditAction
from planner.models import (
    AppendOnlyError,
    AuditEntry,
    Patient,
    PlannedInjection,
    ReferenceValue,
    RuleSet,
    TreatmentPlan,
    TreatmentZone,
    User,
)
from tests.factories import PlannedInjectionFactory

pytestmark = pytest.mark.django_db


def assert_refused(write) -> None:
    """The write raises IntegrityError and leaves the surrounding transaction usable."""
    with pytest.raises(IntegrityError), transaction.atomic():
        write()


def injection_values(plan: TreatmentPlan, **overrides) -> dict:
    values = {
        "plan": plan,
        "zone": TreatmentZone.objects.get(code="CHEEK_L"),
        "volume_ml": Decimal("0.30"),
        "instrument": "needle",
        "gauge": 27,
        "depth": "dermis",
        "technique": "retrograde",
    }
    return values | overrides


# --- Planned injections ---------------------------------------------------------------------


@pytest.mark.parametrize("volume", ["0", "-0.10", "20.01", "999.99"])
def test_it_refuses_an_injection_volume_outside_0_to_20_ml(plan, volume):
    assert_refused(
        lambda: PlannedInjection.objects.create(**injection_values(plan, volume_ml=Decimal(volume)))
    )


@pytest.mark.parametrize("volume", ["0.01", "20.00"])
def test_it_accepts_the_volume_bounds_themselves(plan, volume):
    injection = PlannedInjection.objects.create(**injection_values(plan, volume_ml=Decimal(volume)))
    assert PlannedInjection.objects.get(pk=injection.pk).volume_ml == Decimal(volume)


@pytest.mark.parametrize("gauge", [9, 35])
def test_it_refuses_a_gauge_outside_10_to_34(plan, gauge):
    assert_refused(lambda: PlannedInjection.objects.create(**injection_values(plan, gauge=gauge)))


@pytest.mark.parametrize("gauge", [10, 34])
def test_it_accepts_gauges_10_and_34(plan, gauge):
    injection = PlannedInjection.objects.create(**injection_values(plan, gauge=gauge))
    assert PlannedInjection.objects.get(pk=injection.pk).gauge == gauge


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("depth", "deep_fat"),
        ("depth", "DERMIS"),
        ("instrument", "syringe"),
        ("technique", "linear"),
    ],
)
def test_it_refuses_a_vocabulary_value_that_is_not_a_code(plan, field, value):
    assert_refused(
        lambda: PlannedInjection.objects.create(**injection_values(plan, **{field: value}))
    )


def test_it_refuses_a_bad_volume_written_by_a_bulk_update(plan):
    assert_refused(lambda: plan.injections.update(volume_ml=Decimal("0")))
    assert set(plan.injections.values_list("volume_ml", flat=True)) == {
        Decimal("0.30"),
        Decimal("0.20"),
    }


def test_it_refuses_a_bad_gauge_in_a_bulk_create(plan):
    assert_refused(
        lambda: PlannedInjection.objects.bulk_create(
            [
                PlannedInjection(**injection_values(plan)),
                PlannedInjection(**injection_values(plan, gauge=40)),
            ]
        )
    )
    assert plan.injections.count() == 2


# --- Plans ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["approved", "Draft", ""])
def test_it_refuses_a_plan_status_outside_the_workflow(plan, status):
    assert_refused(lambda: TreatmentPlan.objects.filter(pk=plan.pk).update(status=status))


def test_it_refuses_a_plan_version_of_zero(plan):
    assert_refused(lambda: TreatmentPlan.objects.filter(pk=plan.pk).update(version=0))


def test_it_refuses_a_zero_harvest_volume(plan):
    assert_refused(
        lambda: TreatmentPlan.objects.filter(pk=plan.pk).update(harvest_volume_ml=Decimal("0"))
    )


# --- Patients -----------------------------------------------------------------------------------


def test_it_refuses_a_duplicate_chart_number_in_the_same_clinic(patient):
    assert_refused(
        lambda: Patient.objects.create(
            clinic=patient.clinic,
            chart_number=patient.chart_number,
            name="Someone Else",
            date_of_birth=datetime.date(1980, 1, 1),
        )
    )


def test_it_allows_the_same_chart_number_in_another_clinic(patient, other_clinic):
    twin = Patient.objects.create(
        clinic=other_clinic,
        chart_number=patient.chart_number,
        name="Someone Else",
        date_of_birth=datetime.date(1980, 1, 1),
    )
    assert Patient.objects.filter(chart_number=patient.chart_number).count() == 2
    assert twin.clinic_id != patient.clinic_id


@pytest.mark.parametrize(
    "values",
    [
        {"chart_number": ""},
        {"name": ""},
        {"date_of_birth": datetime.date(1899, 12, 31)},
        {"sex": "x"},
    ],
    ids=["empty-chart-number", "empty-name", "born-before-1900", "unknown-sex"],
)
def test_it_refuses_an_incomplete_or_impossible_patient(clinic, values):
    row = {
        "clinic": clinic,
        "chart_number": "B-1",
        "name": "Bea Example",
        "date_of_birth": datetime.date(1980, 1, 1),
    }
    assert_refused(lambda: Patient.objects.create(**(row | values)))


# --- Zones and reference values -------------------------------------------------------------


def test_it_refuses_a_duplicate_zone_code():
    existing = TreatmentZone.objects.get(code="CHIN")
    assert_refused(
        lambda: TreatmentZone.objects.create(
            code=existing.code,
            name="Chin again",
            laterality="midline",
            region="lower_face",
            shape="M0 0Z",
        )
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("code", "chin_lower"), ("laterality", "both"), ("region", "ear")],
)
def test_it_refuses_a_zone_with_a_malformed_value(field, value):
    row = {
        "code": "EAR_L",
        "name": "Ear",
        "laterality": "left",
        "region": "midface",
        "shape": "M0 0Z",
    }
    assert_refused(lambda: TreatmentZone.objects.create(**(row | {field: value})))


def test_it_refuses_a_reference_minimum_above_its_maximum():
    value = ReferenceValue.objects.get(rule_set=RuleSet.current(), key="zone_volume_ml")
    assert_refused(
        lambda: ReferenceValue.objects.filter(pk=value.pk).update(
            minimum=Decimal("0.600"), maximum=Decimal("0.500")
        )
    )


@pytest.mark.parametrize("field", ["citation", "sources"])
def test_it_refuses_a_reference_value_without_its_source(field):
    rule_set = RuleSet.objects.create(version=2, reason="Test")
    row = {
        "rule_set": rule_set,
        "key": "zone_volume_ml",
        "minimum": Decimal("0.2"),
        "maximum": Decimal("0.5"),
        "unit": "mL",
        "sources": "5",
        "citation": "Typical dosing: 0.2-0.5 mL per treatment quadrant (ref 5).",
    }
    assert_refused(lambda: ReferenceValue.objects.create(**(row | {field: ""})))


def test_it_refuses_two_values_for_one_key_in_one_rule_set():
    value = ReferenceValue.objects.get(rule_set=RuleSet.current(), key="needle_gauge")
    assert_refused(
        lambda: ReferenceValue.objects.create(
            rule_set=value.rule_set,
            key=value.key,
            minimum=1,
            maximum=2,
            unit="G",
            sources="5",
            citation="Duplicate.",
        )
    )


def test_it_refuses_a_duplicate_rule_set_version():
    assert_refused(lambda: RuleSet.objects.create(version=RuleSet.current().version, reason="x"))


# --- Users ------------------------------------------------------------------------------------


def test_it_refuses_a_user_without_a_clinic():
    assert_refused(lambda: User.objects.create(username="drifter"))


def test_it_refuses_removing_a_members_clinic(surgeon):
    assert_refused(lambda: User.objects.filter(pk=surgeon.pk).update(clinic=None))


def test_it_allows_a_superuser_without_a_clinic():
    root = User.objects.create_superuser("root", "root@example.com", "a-long-password-1")
    assert root.clinic_id is None
    assert User.objects.filter(is_superuser=True, clinic__isnull=True).count() == 1


# --- Audit trail ------------------------------------------------------------------------------


@pytest.fixture
def audit_entry(surgeon, patient):
    return AuditEntry.objects.create(
        actor=surgeon,
        actor_username=surgeon.username,
        clinic=patient.clinic,
        action=AuditAction.VIEW,
        object_type="patient",
        object_id=str(patient.pk),
        patient=patient,
    )


def test_it_never_saves_changes_to_an_audit_entry(audit_entry):
    audit_entry.action = AuditAction.DELETE
    with pytest.raises(AppendOnlyError):
        audit_entry.save()
    assert AuditEntry.objects.get(pk=audit_entry.pk).action == AuditAction.VIEW


def test_it_never_deletes_an_audit_entry(audit_entry):
    with pytest.raises(AppendOnlyError):
        audit_entry.delete()
    assert AuditEntry.objects.filter(pk=audit_entry.pk).exists()


def test_it_refuses_an_audit_action_outside_the_vocabulary(surgeon):
    assert_refused(lambda: AuditEntry.objects.create(actor=surgeon, action="erase"))


def test_the_injection_factory_builds_a_row_inside_every_bound(plan):
    injection = PlannedInjectionFactory(plan=plan, zone_code="CHIN")
    injection.full_clean()
    assert injection.zone.code == "CHIN"

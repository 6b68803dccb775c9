"""The audit trail: every access and change leaves an entry written in the same transaction;
clinic admins read their clinic's trail in admin, filtered by patient, user and date; nobody can
edit or delete an entry, and on PostgreSQL the database itself refuses it (and refuses any
change to a consented plan beyond the app's own status moves).

On SQLite the database triggers do not exist; the same promises are checked at the Python level
(the model, its queryset, the plan services), which are also what PostgreSQL runs first.
"""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from planner import audit, services
from planner.choices import AuditAction, PlanStatus
from planner.models import (
    AppendOnlyError,
    AuditEntry,
    PlannedInjection,
    TreatmentPlan,
    WarningAcknowledgement,
)
from tests.factories import (
    PatientFactory,
    PlannedInjectionFactory,
    TreatmentPlanFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

POSTGRES = connection.vendor == "postgresql"
needs_postgres = pytest.mark.skipif(not POSTGRES, reason="a PostgreSQL trigger (CI runs it)")


def _version(plan) -> int:
    return TreatmentPlan.objects.get(pk=plan.pk).version


def _injection_data(plan, prefix="new", **fields) -> dict:
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


# --- what is recorded -------------------------------------------------------------------------


def test_viewing_a_plan_is_recorded(surgeon_client, surgeon, plan):
    surgeon_client.get(reverse("plan_builder", args=[plan.pk]), REMOTE_ADDR="10.1.2.3")
    entry = AuditEntry.objects.get(action=AuditAction.VIEW, object_type="treatmentplan")
    assert (entry.actor, entry.patient, entry.object_id) == (surgeon, plan.patient, str(plan.pk))
    assert (entry.clinic, entry.plan_version, entry.ip_address) == (
        plan.patient.clinic,
        plan.version,
        "10.1.2.3",
    )


def test_viewing_a_patient_is_recorded(colleague_client, colleague, patient):
    colleague_client.get(reverse("patient_detail", args=[patient.pk]))
    entry = AuditEntry.objects.get(action=AuditAction.VIEW, object_type="patient")
    assert (entry.actor, entry.patient) == (colleague, patient)


def test_a_refused_view_records_nothing(outsider_client, plan):
    assert outsider_client.get(reverse("plan_builder", args=[plan.pk])).status_code == 404
    assert not AuditEntry.objects.filter(action=AuditAction.VIEW).exists()


def test_adding_an_injection_records_the_fields(surgeon_client, surgeon, plan):
    surgeon_client.post(reverse("injection_create", args=[plan.pk]), _injection_data(plan))
    entry = AuditEntry.objects.get(action=AuditAction.CREATE, object_type="plannedinjection")
    assert entry.actor == surgeon
    assert entry.patient == plan.patient
    assert entry.changes["plan"] == plan.pk
    assert {"zone", "volume_ml", "gauge"} <= set(entry.changes["fields"])


def test_changing_an_injection_records_only_the_changed_fields(surgeon_client, plan):
    injection = plan.injections.get(zone__code="CHEEK_L")
    data = _injection_data(plan, f"inj{injection.pk}", zone="CHEEK_L", volume_ml="0.35")
    surgeon_client.post(reverse("injection_edit", args=[plan.pk, injection.pk]), data)
    entry = AuditEntry.objects.get(action=AuditAction.CHANGE, object_type="plannedinjection")
    assert entry.changes["fields"] == ["volume_ml"]


def test_deleting_an_injection_records_what_was_deleted(surgeon_client, plan):
    injection = plan.injections.get(zone__code="CHEEK_L")
    surgeon_client.post(
        reverse("injection_delete", args=[plan.pk, injection.pk]), {"version": plan.version}
    )
    entry = AuditEntry.objects.get(action=AuditAction.DELETE)
    assert entry.changes == {"plan": plan.pk, "zone": "CHEEK_L", "volume_ml": "0.30"}


def test_a_status_change_is_recorded(surgeon_client, plan):
    surgeon_client.post(
        reverse("plan_transition", args=[plan.pk]),
        {"version": plan.version, "target": "ready"},
    )
    entry = AuditEntry.objects.get(action=AuditAction.TRANSITION)
    assert entry.changes == {"status": ["draft", "ready"]}


def test_plan_details_record_the_changed_fields(surgeon_client, plan):
    data = {
        "version": plan.version,
        "plan-planned_for": (date.today() + timedelta(days=3)).isoformat(),
        "plan-goal": "rejuvenation",
        "plan-documented_indications": ["fine_lines"],
        "plan-combination": "prf",
        "plan-donor_site": "abdomen",
        "plan-harvest_volume_ml": "",
        "plan-notes": "",
    }
    surgeon_client.post(reverse("plan_details_update", args=[plan.pk]), data)
    entry = AuditEntry.objects.get(action=AuditAction.CHANGE, object_type="treatmentplan")
    assert "combination" in entry.changes["fields"]
    assert "notes" not in entry.changes["fields"]


def test_no_patient_data_is_copied_into_the_trail(surgeon_client, patient, plan):
    """The trail points at the patient; it does not repeat names or notes."""
    surgeon_client.get(reverse("patient_detail", args=[patient.pk]))
    surgeon_client.get(reverse("plan_builder", args=[plan.pk]))
    for entry in AuditEntry.objects.all():
        assert patient.name not in str(entry.changes)
        assert patient.name not in str(entry)


# --- same transaction -------------------------------------------------------------------------


def _break_audit(monkeypatch):
    def broken(**kwargs):
        raise DatabaseError("the audit table is unavailable")

    monkeypatch.setattr(audit, "record", broken)


def test_a_change_whose_entry_cannot_be_written_is_not_kept(monkeypatch, surgeon, plan):
    _break_audit(monkeypatch)
    before = list(plan.injections.values_list("pk", "volume_ml"))
    version = plan.version
    with pytest.raises(DatabaseError):
        services.plan_transition(
            plan=plan, target="cancelled", expected_version=version, actor=surgeon
        )
    fresh = TreatmentPlan.objects.get(pk=plan.pk)
    assert (fresh.status, fresh.version) == (PlanStatus.DRAFT, version)
    assert list(plan.injections.values_list("pk", "volume_ml")) == before


def test_a_new_plan_whose_entry_cannot_be_written_is_not_kept(monkeypatch, surgeon, patient):
    _break_audit(monkeypatch)
    with pytest.raises(DatabaseError):
        services.plan_create(patient=patient, surgeon=surgeon)
    assert not TreatmentPlan.objects.filter(patient=patient).exists()


# --- nobody edits the trail -------------------------------------------------------------------


@pytest.fixture
def entry(surgeon, patient):
    return audit.record(actor=surgeon, action=AuditAction.VIEW, obj=patient)


def test_the_model_refuses_to_change_or_delete_an_entry(entry):
    entry.action = AuditAction.DELETE
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()


def test_the_queryset_refuses_bulk_changes_and_deletes(entry):
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).update(action=AuditAction.DELETE)
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.bulk_update([entry], ["action"])
    assert AuditEntry.objects.get(pk=entry.pk).action == AuditAction.VIEW


@needs_postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE planner_auditentry SET action = 'delete' WHERE id = %s",
        "DELETE FROM planner_auditentry WHERE id = %s",
    ],
)
def test_postgres_refuses_update_and_delete_on_the_audit_table(entry, sql):
    with (
        pytest.raises(DatabaseError, match="Cannot update or delete"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [entry.pk])
    assert AuditEntry.objects.get(pk=entry.pk).action == AuditAction.VIEW


@needs_postgres
def test_postgres_still_accepts_new_entries(entry, surgeon, patient):
    audit.record(actor=surgeon, action=AuditAction.CHANGE, obj=patient)
    assert AuditEntry.objects.count() == 2


# --- consented plans are frozen ---------------------------------------------------------------


@pytest.fixture
def consented(patient, surgeon, plan):
    """A consented plan with one injection and one acknowledged warning."""
    frozen = TreatmentPlanFactory(patient=patient, surgeon=surgeon, rule_set=plan.rule_set)
    PlannedInjectionFactory(plan=frozen, zone_code="CHIN", volume_ml=Decimal("0.30"))
    WarningAcknowledgement.objects.create(
        plan=frozen,
        finding_key="INDICATION_NOT_DOCUMENTED:melasma",
        rule="INDICATION_NOT_DOCUMENTED",
        message="Melasma is not a documented indication.",
        reason="Discussed with the patient.",
        acknowledged_by=surgeon,
    )
    TreatmentPlan.objects.filter(pk=frozen.pk).update(status=PlanStatus.CONSENTED)
    return TreatmentPlan.objects.get(pk=frozen.pk)


def _refused_by_postgres(action) -> None:
    with pytest.raises(DatabaseError, match="nanofat: plan"), transaction.atomic():
        action()


@needs_postgres
@pytest.mark.parametrize(
    "change",
    [
        {"notes": "edited after signing"},
        {"harvest_volume_ml": Decimal("50")},
        {"status": PlanStatus.DRAFT},
        {"status": PlanStatus.READY},
        {"version": 1, "notes": "x"},
    ],
    ids=["notes", "harvest", "back-to-draft", "back-to-ready", "version-and-notes"],
)
def test_postgres_refuses_edits_to_a_consented_plan(consented, change):
    _refused_by_postgres(lambda: TreatmentPlan.objects.filter(pk=consented.pk).update(**change))
    fresh = TreatmentPlan.objects.get(pk=consented.pk)
    assert (fresh.status, fresh.notes) == (PlanStatus.CONSENTED, consented.notes)


@needs_postgres
def test_postgres_refuses_deleting_a_consented_plan(consented):
    _refused_by_postgres(
        lambda: connection.cursor().execute(
            "DELETE FROM planner_treatmentplan WHERE id = %s", [consented.pk]
        )
    )


@needs_postgres
def test_postgres_refuses_a_version_going_backwards(consented):
    TreatmentPlan.objects.filter(pk=consented.pk).update(version=5)
    _refused_by_postgres(lambda: TreatmentPlan.objects.filter(pk=consented.pk).update(version=4))


@needs_postgres
def test_postgres_refuses_touching_the_injections_of_a_consented_plan(consented, plan):
    injection = consented.injections.get()
    _refused_by_postgres(lambda: PlannedInjectionFactory(plan=consented, zone_code="NECK"))
    _refused_by_postgres(
        lambda: PlannedInjection.objects.filter(pk=injection.pk).update(volume_ml=Decimal("0.5"))
    )
    _refused_by_postgres(lambda: PlannedInjection.objects.filter(pk=injection.pk).delete())
    # Nor moved away to a draft, nor moved onto the consented plan from a draft.
    _refused_by_postgres(lambda: PlannedInjection.objects.filter(pk=injection.pk).update(plan=plan))
    draft_injection = plan.injections.first()
    _refused_by_postgres(
        lambda: PlannedInjection.objects.filter(pk=draft_injection.pk).update(plan=consented)
    )
    assert consented.injections.get().volume_ml == Decimal("0.30")


@needs_postgres
def test_postgres_refuses_touching_the_acknowledgements_of_a_consented_plan(consented, surgeon):
    acknowledgement = consented.acknowledgements.get()
    _refused_by_postgres(
        lambda: WarningAcknowledgement.objects.filter(pk=acknowledgement.pk).update(reason="x")
    )
    _refused_by_postgres(
        lambda: WarningAcknowledgement.objects.filter(pk=acknowledgement.pk).delete()
    )
    _refused_by_postgres(
        lambda: WarningAcknowledgement.objects.create(
            plan=consented,
            finding_key="other",
            rule="TECHNIQUE_NOT_RETROGRADE",
            message="m",
            reason="r",
            acknowledged_by=surgeon,
        )
    )


def test_cancelling_a_consented_plan_still_works(consented, surgeon):
    version = consented.version
    services.plan_transition(
        plan=consented, target=PlanStatus.CANCELLED, expected_version=version, actor=surgeon
    )
    fresh = TreatmentPlan.objects.get(pk=consented.pk)
    assert (fresh.status, fresh.version) == (PlanStatus.CANCELLED, version + 1)


def test_completing_a_consented_plan_still_works(consented):
    """The procedure day's two steps (planner/procedure.py): claim the version, then move on."""
    version = consented.version
    with transaction.atomic():
        services.claim_version(consented, version, allowed=(PlanStatus.CONSENTED,))
        TreatmentPlan.objects.filter(pk=consented.pk).update(status=PlanStatus.PERFORMED)
    fresh = TreatmentPlan.objects.get(pk=consented.pk)
    assert (fresh.status, fresh.version) == (PlanStatus.PERFORMED, version + 1)


def test_a_draft_plan_stays_freely_editable(plan):
    TreatmentPlan.objects.filter(pk=plan.pk).update(notes="anything")
    PlannedInjection.objects.filter(plan=plan).delete()
    assert TreatmentPlan.objects.get(pk=plan.pk).notes == "anything"


@pytest.mark.parametrize("endpoint", ["injection_create", "plan_details_update"])
def test_the_app_refuses_edits_to_a_consented_plan(surgeon_client, consented, endpoint):
    """The Python guard (the services' status check) answers before the database would."""
    data = _injection_data(consented) if endpoint == "injection_create" else {
        "version": consented.version,
        "plan-planned_for": "2030-01-01",
        "plan-goal": "rejuvenation",
        "plan-combination": "none",
        "plan-donor_site": "abdomen",
    }  # fmt: skip
    response = surgeon_client.post(reverse(endpoint, args=[consented.pk]), data)
    assert response.status_code == 409
    assert "can no longer be edited" in response.content.decode()
    fresh = TreatmentPlan.objects.get(pk=consented.pk)
    assert (fresh.version, fresh.injections.count()) == (consented.version, 1)


def test_the_services_refuse_before_the_database_has_to(consented, surgeon):
    """On SQLite (no triggers) the services are the guard; on PostgreSQL they answer first."""
    injection = consented.injections.get()
    with pytest.raises(services.PlanLocked):
        services.injection_delete(
            plan=consented,
            injection=injection,
            expected_version=consented.version,
            actor=surgeon,
        )
    assert consented.injections.exists()


# --- reading the trail in admin ---------------------------------------------------------------


@pytest.fixture
def trail(surgeon, colleague, outsider, patient, other_clinic):
    """Entries of clinic A (two users, two patients) and of clinic B."""
    second = PatientFactory(clinic=patient.clinic, chart_number="A-0002", name="Bob Second")
    foreign = PatientFactory(clinic=other_clinic, chart_number="B-0001", name="Zed Foreign")
    audit.record(actor=surgeon, action=AuditAction.VIEW, obj=patient)
    audit.record(actor=colleague, action=AuditAction.VIEW, obj=second)
    audit.record(actor=outsider, action=AuditAction.VIEW, obj=foreign)
    return {"first": patient, "second": second, "foreign": foreign}


def _changelist(client, **params):
    response = client.get(reverse("admin:planner_auditentry_changelist"), params)
    assert response.status_code == 200
    return response, list(response.context["cl"].result_list)


def test_a_clinic_admin_sees_only_their_clinics_trail(admin_role_client, trail):
    response, entries = _changelist(admin_role_client)
    assert {e.patient for e in entries if e.patient} == {trail["first"], trail["second"]}
    body = response.content.decode()
    assert "outsider" not in body
    assert "B-0001" not in body


def test_the_trail_filters_by_patient_user_and_date(admin_role_client, trail, surgeon):
    _, by_patient = _changelist(admin_role_client, patient=trail["second"].pk)
    assert [e.patient for e in by_patient] == [trail["second"]]
    _, by_user = _changelist(admin_role_client, actor=surgeon.pk)
    assert {e.actor for e in by_user} == {surgeon}
    today = timezone.localdate()
    _, by_day = _changelist(
        admin_role_client, at__year=today.year, at__month=today.month, at__day=today.day
    )
    assert {e.patient for e in by_day if e.patient} == {trail["first"], trail["second"]}
    _, last_year = _changelist(admin_role_client, at__year=today.year - 1)
    assert last_year == []


def test_the_filters_offer_only_the_clinics_own_users_and_patients(admin_role_client, trail):
    response, _ = _changelist(admin_role_client)
    body = response.content.decode()
    assert "A-0002" in body
    assert "B-0001" not in body
    assert "?actor=" in body
    assert "outsider" not in body


def test_another_clinics_patient_id_in_the_filter_shows_nothing(admin_role_client, trail):
    _, entries = _changelist(admin_role_client, patient=trail["foreign"].pk)
    assert entries == []


def test_an_entry_of_another_clinic_cannot_be_opened(admin_role_client, trail):
    foreign = AuditEntry.objects.get(patient=trail["foreign"])
    url = reverse("admin:planner_auditentry_change", args=[foreign.pk])
    response = admin_role_client.get(url)
    assert response.status_code == 302  # the admin's "does not exist" redirect, nothing shown
    assert "B-0001" not in admin_role_client.get(response["Location"]).content.decode()


@pytest.fixture
def superuser_client(db):
    root = UserFactory(username="root", clinic=None, is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(root)
    return client


def test_a_superuser_sees_every_clinic(superuser_client, trail):
    _, entries = _changelist(superuser_client)
    assert trail["foreign"] in {e.patient for e in entries}


@pytest.mark.parametrize("who", ["admin_role_client", "superuser_client"])
def test_nobody_adds_changes_or_deletes_an_entry_in_admin(request, who, entry):
    client = request.getfixturevalue(who)
    add = reverse("admin:planner_auditentry_add")
    change = reverse("admin:planner_auditentry_change", args=[entry.pk])
    delete = reverse("admin:planner_auditentry_delete", args=[entry.pk])
    assert client.post(add, {"action": "view"}).status_code == 403
    assert client.post(change, {"action": "delete"}).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    bulk = client.post(
        reverse("admin:planner_auditentry_changelist"),
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    assert AuditEntry.objects.get(pk=entry.pk).action == AuditAction.VIEW
    page = client.get(change).content.decode()
    assert 'name="_save"' not in page
    assert "deletelink" not in page


def test_reference_changes_are_visible_to_every_clinic_admin(clinic_admin, other_clinic):
    from planner import reference
    from planner.models import ReferenceValue, RuleSet

    value = ReferenceValue.objects.get(rule_set=RuleSet.current(), key="needle_gauge")
    reference.create_version(
        actor=clinic_admin,
        reason="Protocol review",
        changes={"needle_gauge": {**reference.value_fields(value), "maximum": Decimal("31")}},
    )
    admin_b = UserFactory(username="admin-b", clinic=other_clinic, role="admin", is_staff=True)
    client = Client()
    client.force_login(admin_b)
    _, entries = _changelist(client)
    assert [e.action for e in entries if e.action != AuditAction.LOGIN] == [
        AuditAction.REFERENCE_CHANGE
    ]

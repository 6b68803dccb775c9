"""Follow-up: the schedule made when a plan is performed, the visit record and its scores (form
and database), the dashboard, and who may do what."""

import datetime

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from planner import followup, intervals, scores
from planner.models import (
    AdverseEvent,
    AuditEntry,
    ClinicFollowUpSettings,
    FollowUp,
    FollowUpInterval,
    TreatmentPlan,
)
from tests.factories import PatientFactory, PlannedInjectionFactory, TreatmentPlanFactory
from tests.followup_support import (
    POSAS_OBSERVER_OK,
    POSAS_PATIENT_OK,
    VSS_OK,
    make_scar_plan,
    perform,
    visit_post,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def performed(plan, surgeon):
    return perform(plan, surgeon)


@pytest.fixture
def scar_performed(plan, surgeon):
    return perform(make_scar_plan(plan), surgeon)


def first(plan) -> FollowUp:
    return plan.follow_ups.order_by("due_on").first()


def visit_url(follow_up) -> str:
    return reverse("followup_visit", args=[follow_up.pk])


# --- the schedule ---


def test_performing_a_plan_schedules_the_default_follow_ups(performed):
    today = timezone.localdate()
    schedule = list(performed.follow_ups.order_by("due_on"))
    assert [f.label for f in schedule] == ["1 week", "1 month", "3 months", "6 months", "12 months"]
    assert schedule[0].due_on == today + datetime.timedelta(weeks=1)
    assert schedule[-1].due_on == intervals.add_months(today, 12)
    assert {f.status for f in schedule} == {"scheduled"}


def test_the_clinic_intervals_are_used_when_configured(plan, surgeon, clinic):
    settings_row = ClinicFollowUpSettings.objects.create(clinic=clinic)
    FollowUpInterval.objects.create(settings=settings_row, amount=2, unit="week")
    FollowUpInterval.objects.create(settings=settings_row, amount=24, unit="month")
    perform(plan, surgeon)
    assert [f.label for f in plan.follow_ups.order_by("due_on")] == ["2 weeks", "24 months"]


def test_another_clinics_intervals_are_not_used(plan, surgeon, other_clinic):
    other = ClinicFollowUpSettings.objects.create(clinic=other_clinic)
    FollowUpInterval.objects.create(settings=other, amount=2, unit="day")
    perform(plan, surgeon)
    assert plan.follow_ups.count() == len(intervals.DEFAULT_INTERVALS)


def test_scheduling_twice_adds_nothing(performed):
    assert followup.schedule_for(performed, performed_on=timezone.localdate()) == []
    assert performed.follow_ups.count() == 5


def test_a_plan_performed_before_scheduling_existed_gets_its_schedule_on_request(
    performed, surgeon_client
):
    performed.follow_ups.all().delete()
    response = surgeon_client.post(reverse("followup_schedule", args=[performed.pk]))
    assert response.status_code == 302
    assert performed.follow_ups.count() == 5
    again = surgeon_client.post(reverse("followup_schedule", args=[performed.pk]), follow=True)
    assert "already has its follow-up schedule" in again.content.decode()


def test_a_draft_plan_has_no_schedule_and_cannot_get_one(plan, surgeon_client):
    response = surgeon_client.post(reverse("followup_schedule", args=[plan.pk]), follow=True)
    assert "once the plan is performed" in response.content.decode()
    assert plan.follow_ups.count() == 0


def test_the_schedule_change_in_admin_applies_to_later_plans_only(
    performed, clinic_admin, clinic, surgeon
):
    client = Client()
    client.force_login(clinic_admin)
    data = {
        "due_soon_days": "10",
        "overdue_after_days": "5",
        "intervals-TOTAL_FORMS": "2",
        "intervals-INITIAL_FORMS": "0",
        "intervals-MIN_NUM_FORMS": "1",
        "intervals-MAX_NUM_FORMS": "1000",
        "intervals-0-amount": "6",
        "intervals-0-unit": "week",
        "intervals-1-amount": "18",
        "intervals-1-unit": "month",
    }
    response = client.post(reverse("admin:planner_clinicfollowupsettings_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    saved = ClinicFollowUpSettings.objects.get(clinic=clinic)
    assert sorted(i.label for i in saved.interval_list()) == ["18 months", "6 weeks"]
    assert performed.follow_ups.count() == 5  # already scheduled: unchanged
    later = TreatmentPlanFactory(patient=performed.patient, surgeon=surgeon)
    PlannedInjectionFactory(plan=later)
    perform(later, surgeon)
    assert [f.label for f in later.follow_ups.order_by("due_on")] == ["6 weeks", "18 months"]
    assert AuditEntry.objects.filter(object_type="clinicfollowupsettings").exists()


def test_the_admin_refuses_a_schedule_without_intervals(clinic_admin):
    client = Client()
    client.force_login(clinic_admin)
    data = {
        "due_soon_days": "14",
        "overdue_after_days": "7",
        "intervals-TOTAL_FORMS": "1",
        "intervals-INITIAL_FORMS": "0",
        "intervals-MIN_NUM_FORMS": "1",
        "intervals-MAX_NUM_FORMS": "1000",
        "intervals-0-amount": "",
        "intervals-0-unit": "month",
    }
    response = client.post(reverse("admin:planner_clinicfollowupsettings_add"), data)
    assert response.status_code == 200
    assert not ClinicFollowUpSettings.objects.exists()


def test_surgeons_cannot_edit_the_clinic_intervals(surgeon_client):
    response = surgeon_client.get(reverse("admin:planner_clinicfollowupsettings_changelist"))
    assert response.status_code in (302, 403)


# --- recording a visit ---


def test_a_surgeon_records_a_visit_with_scores_and_adverse_events(performed, surgeon_client):
    follow_up = first(performed)
    data = visit_post(
        follow_up,
        **{
            "ae-bruising-present": "on",
            "ae-bruising-severity": "mild",
            "ae-bruising-resolved_on": timezone.localdate().isoformat(),
            "ae-other-present": "on",
            "ae-other-severity": "moderate",
            "ae-other-description": "Small lump at the left cheek",
        },
    )
    response = surgeon_client.post(visit_url(follow_up), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    follow_up.refresh_from_db()
    assert follow_up.status == "done"
    assert follow_up.visited_on == timezone.localdate()
    assert (follow_up.gais_surgeon, follow_up.gais_patient, follow_up.satisfaction) == (2, 3, 4)
    assert follow_up.version == 2
    kinds = dict(AdverseEvent.objects.filter(follow_up=follow_up).values_list("kind", "severity"))
    assert kinds == {"bruising": "mild", "other": "moderate"}
    entry = AuditEntry.objects.filter(object_type="followup", action="change").get()
    assert entry.changes["gais_surgeon"] == ["", "2"]
    page = surgeon_client.get(reverse("plan_followup", args=[performed.pk])).content.decode()
    assert "Much improved" in page
    assert "Bruising (mild" in page


def test_a_scar_plan_records_posas_and_vancouver_with_their_totals(scar_performed, surgeon_client):
    follow_up = first(scar_performed)
    data = visit_post(follow_up, **POSAS_PATIENT_OK, **POSAS_OBSERVER_OK, **VSS_OK)
    response = surgeon_client.post(visit_url(follow_up), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    follow_up.refresh_from_db()
    assert follow_up.posas_patient_total == 19  # the overall opinion (4) is not added
    assert follow_up.posas_patient_overall == 4
    assert follow_up.posas_observer_total == 16
    assert follow_up.vss_total == 5
    assert follow_up.vss_version == "vss_1990"


def test_scar_scales_are_not_offered_for_a_rejuvenation_plan(performed, surgeon_client):
    page = surgeon_client.get(visit_url(first(performed))).content.decode()
    assert 'name="posas_patient_pain"' not in page
    assert 'name="vss_height"' not in page
    assert 'name="gais_surgeon"' in page
    assert "FACE-Q (licensed instrument)" in page


@pytest.mark.parametrize(
    "item",
    [pytest.param(item, id=item.field) for item in scores.ALL_ITEMS],
)
@pytest.mark.parametrize("side", ["below", "above"])
def test_the_form_refuses_every_score_just_outside_its_scale(
    scar_performed, surgeon_client, item, side
):
    follow_up = first(scar_performed)
    value = item.low - 1 if side == "below" else item.high + 1
    data = visit_post(follow_up, **POSAS_PATIENT_OK, **POSAS_OBSERVER_OK, **VSS_OK)
    data |= {"faceq_scale": "Satisfaction with Skin", "faceq_total": "50"}
    data[item.field] = str(value)
    response = surgeon_client.post(visit_url(follow_up), data)
    assert response.status_code == 422
    page = response.content.decode()
    assert f"is scored {item.low} to {item.high}; {value} is {side} the scale" in page
    assert str(value) in page  # what was typed is kept
    follow_up.refresh_from_db()
    assert follow_up.status == "scheduled"


@pytest.mark.parametrize(
    "item",
    [pytest.param(item, id=item.field) for item in scores.ALL_ITEMS],
)
def test_the_form_accepts_every_score_at_both_ends_of_its_scale(
    scar_performed, surgeon_client, item
):
    follow_up = first(scar_performed)
    for value in (item.low, item.high):
        follow_up.refresh_from_db()
        data = visit_post(follow_up, **POSAS_PATIENT_OK, **POSAS_OBSERVER_OK, **VSS_OK)
        data |= {"faceq_scale": "Satisfaction with Skin", "faceq_total": "50"}
        data[item.field] = str(value)
        response = surgeon_client.post(visit_url(follow_up), data)
        assert response.status_code == 302, response.content.decode()[:2000]
        follow_up.refresh_from_db()
        assert getattr(follow_up, item.field) == value


def test_a_partly_scored_posas_scale_is_refused_with_a_clear_message(
    scar_performed, surgeon_client
):
    follow_up = first(scar_performed)
    partial = {k: v for k, v in POSAS_PATIENT_OK.items() if "itching" not in k}
    response = surgeon_client.post(visit_url(follow_up), visit_post(follow_up, **partial))
    assert response.status_code == 422
    assert "Score all 6 items of the POSAS 2.0 patient scale or none" in response.content.decode()


def test_a_visit_date_in_the_future_or_before_the_session_is_refused(performed, surgeon_client):
    follow_up = first(performed)
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    response = surgeon_client.post(
        visit_url(follow_up), visit_post(follow_up, visited_on=tomorrow.isoformat())
    )
    assert "cannot be in the future" in response.content.decode()
    before = timezone.localdate() - datetime.timedelta(days=3)
    response = surgeon_client.post(
        visit_url(follow_up), visit_post(follow_up, visited_on=before.isoformat())
    )
    assert "cannot be before the session" in response.content.decode()


def test_an_adverse_event_needs_a_severity_and_other_needs_a_description(performed, surgeon_client):
    follow_up = first(performed)
    data = visit_post(follow_up, **{"ae-swelling-present": "on", "ae-other-present": "on"})
    data["ae-other-severity"] = "mild"
    response = surgeon_client.post(visit_url(follow_up), data)
    page = response.content.decode()
    assert response.status_code == 422
    assert "Swelling: choose how severe it was." in page
    assert "Say what the other adverse event was." in page
    assert not AdverseEvent.objects.exists()


def test_a_stale_visit_form_is_refused_and_loses_nothing(performed, surgeon_client):
    follow_up = first(performed)
    surgeon_client.post(visit_url(follow_up), visit_post(follow_up, gais_surgeon="1"))
    stale = visit_post(follow_up, gais_surgeon="5")  # built from the old version
    response = surgeon_client.post(visit_url(follow_up), stale)
    assert response.status_code == 409
    assert "changed by a colleague" in response.content.decode()
    follow_up.refresh_from_db()
    assert follow_up.gais_surgeon == 1


def test_a_follow_up_can_be_marked_did_not_attend_and_reopened(performed, surgeon_client):
    follow_up = first(performed)
    url = reverse("followup_status", args=[follow_up.pk])
    surgeon_client.post(url, {"status": "missed"})
    follow_up.refresh_from_db()
    assert follow_up.status == "missed"
    surgeon_client.post(url, {"status": "scheduled"})
    follow_up.refresh_from_db()
    assert follow_up.status == "scheduled"
    surgeon_client.post(url, {"status": "done"})
    follow_up.refresh_from_db()
    assert follow_up.status == "scheduled"


def test_an_unscheduled_visit_can_be_added(performed, surgeon_client):
    response = surgeon_client.post(
        reverse("followup_unscheduled", args=[performed.pk]),
        {"due_on": timezone.localdate().isoformat()},
    )
    added = performed.follow_ups.get(interval_amount__isnull=True)
    assert response["Location"] == visit_url(added)
    assert added.label == "Unscheduled visit"


# --- database constraints ---


def _store(follow_up, **values) -> None:
    with transaction.atomic():
        FollowUp.objects.filter(pk=follow_up.pk).update(**values)


def _complete_scale(scale, value_for):
    return {item.field: value_for(item) for item in scale.items}


@pytest.mark.parametrize("item", [pytest.param(i, id=i.field) for i in scores.ALL_ITEMS])
def test_the_database_refuses_every_score_outside_its_scale(performed, item):
    follow_up = first(performed)
    scale = next((s for s in scores.SCALES if item.field in s.fields), None)
    base = _complete_scale(scale, lambda i: i.low) if scale else {}
    if scale is scores.VSS:
        base["vss_version"] = "vss_1990"
    if item is scores.FACEQ_TOTAL:
        base["faceq_scale"] = "Satisfaction with Skin"
    for good in (item.low, item.high):
        _store(follow_up, **(base | {item.field: good}))
    for bad in (item.low - 1, item.high + 1):
        with pytest.raises(IntegrityError):
            _store(follow_up, **(base | {item.field: bad}))


@pytest.mark.parametrize("scale", scores.SCALES, ids=lambda s: s.key)
def test_the_database_refuses_a_partly_scored_scale(performed, scale):
    follow_up = first(performed)
    extra = {"vss_version": "vss_1990"} if scale is scores.VSS else {}
    with pytest.raises(IntegrityError):
        _store(follow_up, **{scale.items[0].field: scale.items[0].low}, **extra)


def test_the_database_refuses_vancouver_scores_without_a_version(performed):
    with pytest.raises(IntegrityError):
        _store(first(performed), **_complete_scale(scores.VSS, lambda i: i.low))


def test_the_database_refuses_a_seen_visit_without_a_date(performed):
    with pytest.raises(IntegrityError):
        _store(first(performed), status="done")


def test_the_database_refuses_an_unnamed_face_q_score(performed):
    with pytest.raises(IntegrityError):
        _store(first(performed), faceq_total=50)


# --- dashboard ---


def test_the_dashboard_lists_due_overdue_awaiting_consent_and_performed(
    performed, colleague_client, patient, surgeon
):
    today = timezone.localdate()
    schedule = list(performed.follow_ups.order_by("due_on"))
    FollowUp.objects.filter(pk=schedule[0].pk).update(due_on=today - datetime.timedelta(days=30))
    FollowUp.objects.filter(pk=schedule[1].pk).update(due_on=today + datetime.timedelta(days=3))
    ready = TreatmentPlanFactory(patient=patient, surgeon=surgeon, status="ready")
    board = followup.dashboard(performed.surgeon, today=today)
    assert [f.pk for f in board.overdue] == [schedule[0].pk]
    assert [f.pk for f in board.due] == [schedule[1].pk]
    assert [p.pk for p in board.awaiting_consent] == [ready.pk]
    assert [p.pk for p in board.performed_this_month] == [performed.pk]
    page = colleague_client.get(reverse("dashboard")).content.decode()
    assert "Overdue follow-ups" in page
    assert reverse("followup_visit", args=[schedule[0].pk]) in page
    assert reverse("plan_builder", args=[ready.pk]) in page


def test_the_dashboard_hides_other_clinics(performed, outsider_client, outsider, other_clinic):
    other_patient = PatientFactory(clinic=other_clinic, name="Other Clinic Patient")
    TreatmentPlanFactory(patient=other_patient, surgeon=outsider, status="ready")
    page = outsider_client.get(reverse("dashboard")).content.decode()
    assert "Alice Example" not in page
    assert "Other Clinic Patient" in page
    board = followup.dashboard(outsider, today=timezone.localdate() + datetime.timedelta(days=7))
    assert board.due == []
    assert board.overdue == []
    assert board.performed_this_month == []


def test_a_plan_performed_last_month_is_not_performed_this_month(performed):
    next_month = intervals.add_months(timezone.localdate(), 1)
    board = followup.dashboard(performed.surgeon, today=next_month)
    assert board.performed_this_month == []


# --- access and permissions ---


def test_staff_see_follow_ups_but_cannot_record(performed, colleague_client):
    follow_up = first(performed)
    page = colleague_client.get(visit_url(follow_up))
    assert page.status_code == 200
    assert 'name="gais_surgeon"' not in page.content.decode()
    response = colleague_client.post(visit_url(follow_up), visit_post(follow_up))
    assert response.status_code == 403
    status = colleague_client.post(
        reverse("followup_status", args=[follow_up.pk]), {"status": "missed"}
    )
    assert status.status_code == 403
    follow_up.refresh_from_db()
    assert follow_up.status == "scheduled"


def test_the_clinic_admin_sees_the_dashboard_but_records_nothing(performed, admin_role_client):
    assert admin_role_client.get(reverse("dashboard")).status_code == 200
    follow_up = first(performed)
    assert admin_role_client.post(visit_url(follow_up), visit_post(follow_up)).status_code == 403


def test_another_clinic_gets_404_everywhere(performed, outsider_client):
    follow_up = first(performed)
    urls = [
        reverse("plan_followup", args=[performed.pk]),
        visit_url(follow_up),
        reverse("plan_followup_chart", args=[performed.pk]),
        reverse("patient_followup", args=[performed.patient.pk]),
        reverse("patient_followup_chart", args=[performed.patient.pk]),
        reverse("plan_photos", args=[performed.pk]),
        reverse("photo_compare", args=[performed.pk]),
    ]
    for url in urls:
        assert outsider_client.get(url).status_code == 404, url
    assert outsider_client.post(visit_url(follow_up), visit_post(follow_up)).status_code == 404
    assert (
        outsider_client.post(
            reverse("followup_status", args=[follow_up.pk]), {"status": "missed"}
        ).status_code
        == 404
    )


def test_anonymous_users_are_sent_to_login(performed):
    client = Client()
    for url in (
        reverse("dashboard"),
        reverse("plan_followup", args=[performed.pk]),
        visit_url(first(performed)),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_the_follow_up_links_appear_on_the_procedure_and_patient_pages(performed, surgeon_client):
    link = reverse("plan_followup", args=[performed.pk])
    procedure = surgeon_client.get(reverse("procedure_day", args=[performed.pk])).content.decode()
    assert link in procedure
    patient = surgeon_client.get(
        reverse("patient_detail", args=[performed.patient.pk])
    ).content.decode()
    assert link in patient
    assert reverse("dashboard") in patient


def test_a_performed_plan_is_still_frozen_after_its_follow_up_is_recorded(
    performed, surgeon_client
):
    follow_up = first(performed)
    surgeon_client.post(visit_url(follow_up), visit_post(follow_up))
    performed.refresh_from_db()
    assert performed.status == "performed"
    assert TreatmentPlan.objects.get(pk=performed.pk).version == performed.version

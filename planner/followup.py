"""Follow-up: the schedule made when a plan is performed, visit records, and the reads the
follow-up pages and the dashboard need. Access helpers for follow-ups and photos live here too
(404 outside the user's clinic, like ``planner.access``)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import F, Prefetch, QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.formats import date_format

from . import audit, intervals, scores
from .access import plans_for
from .choices import AuditAction, Goal, Indication, PlanStatus
from .models import (
    AdverseEvent,
    ClinicFollowUpSettings,
    FollowUp,
    Photo,
    TreatmentPlan,
    User,
)
from .models_followup import FollowUpStatus

if TYPE_CHECKING:  # matplotlib loads only where a chart is drawn
    from . import charts


class FollowUpConflict(Exception):
    """The visit was changed by someone else since the form was opened."""


class FollowUpRefused(Exception):
    """The action does not apply to this follow-up or plan; the message says why."""


# --- access ---


def follow_ups_for(user: User) -> QuerySet[FollowUp]:
    if user.is_superuser:
        return FollowUp.objects.all()
    return FollowUp.objects.filter(plan__patient__clinic_id=user.clinic_id)


def photos_for(user: User) -> QuerySet[Photo]:
    if user.is_superuser:
        return Photo.objects.all()
    return Photo.objects.filter(plan__patient__clinic_id=user.clinic_id)


def get_follow_up_for_user(request: HttpRequest, pk: int) -> FollowUp:
    queryset = follow_ups_for(request.user).select_related("plan__patient__clinic", "recorded_by")
    return get_object_or_404(queryset, pk=pk)


def get_photo_for_user(request: HttpRequest, pk: int) -> Photo:
    queryset = photos_for(request.user).select_related("plan__patient", "follow_up", "zone")
    return get_object_or_404(queryset, pk=pk)


# --- the clinic's settings ---


def clinic_settings(clinic_id: int | None) -> ClinicFollowUpSettings:
    found = (
        ClinicFollowUpSettings.objects.filter(clinic_id=clinic_id)
        .prefetch_related("intervals")
        .first()
    )
    return found or ClinicFollowUpSettings(clinic_id=clinic_id)


def clinic_intervals(clinic_id: int | None) -> list[intervals.Interval]:
    found = clinic_settings(clinic_id)
    configured = found.interval_list() if found.pk else []
    return configured or list(intervals.DEFAULT_INTERVALS)


# --- scheduling ---


def performed_on(plan: TreatmentPlan) -> datetime.date:
    """The session date: the day it was completed on the procedure page."""
    outcome = getattr(plan, "outcome", None)
    if outcome is not None and outcome.completed_at:
        return timezone.localdate(outcome.completed_at)
    return plan.planned_for


def schedule_for(
    plan: TreatmentPlan, *, performed_on: datetime.date, actor: User | None = None, request=None
) -> list[FollowUp]:
    """Creates the scheduled follow-ups of a performed plan from its clinic's intervals.

    Called inside ``procedure_complete``'s transaction. Idempotent: a plan that already has
    scheduled follow-ups keeps them (and nothing is added)."""
    with transaction.atomic():
        if plan.follow_ups.filter(interval_amount__isnull=False).exists():
            return []
        clinic_id = plan.patient.clinic_id
        created = FollowUp.objects.bulk_create(
            FollowUp(
                plan=plan,
                interval_amount=interval.amount,
                interval_unit=interval.unit,
                label=interval.label,
                due_on=due_on,
            )
            for interval, due_on in intervals.schedule(performed_on, clinic_intervals(clinic_id))
        )
        if actor is not None:
            audit.record(
                actor=actor,
                action=AuditAction.CREATE,
                obj=plan,
                request=request,
                changes={
                    "follow_ups": [f"{f.label} {f.due_on.isoformat()}" for f in created],
                },
            )
    return created


def schedule_missing(*, plan: TreatmentPlan, actor: User, request=None) -> list[FollowUp]:
    """For plans performed before follow-up scheduling existed."""
    if plan.status != PlanStatus.PERFORMED:
        raise FollowUpRefused("Follow-ups are scheduled once the plan is performed.")
    created = schedule_for(plan, performed_on=performed_on(plan), actor=actor, request=request)
    if not created:
        raise FollowUpRefused("This plan already has its follow-up schedule.")
    return created


def add_unscheduled(
    *, plan: TreatmentPlan, due_on: datetime.date, actor: User, request=None
) -> FollowUp:
    if plan.status != PlanStatus.PERFORMED:
        raise FollowUpRefused("Follow-up visits are recorded for performed plans only.")
    with transaction.atomic():
        follow_up = FollowUp.objects.create(plan=plan, label="Unscheduled visit", due_on=due_on)
        audit.record(
            actor=actor,
            action=AuditAction.CREATE,
            obj=follow_up,
            patient=plan.patient,
            request=request,
            changes={"plan": plan.pk, "due_on": due_on.isoformat()},
        )
    return follow_up


# --- recording a visit ---


def is_scar_plan(plan: TreatmentPlan) -> bool:
    """Scar scales (POSAS, VSS) are offered for plans whose goal or indications are scars."""
    return plan.goal == Goal.SCAR or Indication.SCARS in (plan.indications or [])


VISIT_FIELDS = (
    "visited_on",
    "notes",
    "vss_version",
    "faceq_scale",
    *(item.field for item in scores.ALL_ITEMS),
)


def visit_save(
    *,
    follow_up: FollowUp,
    data: dict,
    events: list[dict],
    version: int,
    actor: User,
    request=None,
) -> FollowUp:
    """Records (or corrects) a visit: its scores and the adverse events present.

    ``data`` holds cleaned visit fields; ``events`` one dict per adverse event present
    (kind, severity, description, resolved_on). Refused with FollowUpConflict when the visit
    changed since the form showed version ``version``."""
    with transaction.atomic():
        locked = FollowUp.objects.select_for_update().get(pk=follow_up.pk)
        if locked.version != version:
            raise FollowUpConflict(
                "This visit was changed by a colleague or in another window since you opened "
                "it. Nothing was saved; the current record is shown."
            )
        if locked.status == FollowUpStatus.CANCELLED:
            raise FollowUpRefused("This follow-up was cancelled; reopen it before recording.")
        before = {name: getattr(locked, name) for name in VISIT_FIELDS}
        for name in VISIT_FIELDS:
            setattr(locked, name, data.get(name, getattr(locked, name)))
        locked.status = FollowUpStatus.DONE
        locked.recorded_by = actor
        locked.recorded_at = timezone.now()
        locked.version = F("version") + 1
        locked.save()
        locked.refresh_from_db()
        old_events = {e.kind: e for e in locked.adverse_events.all()}
        new_events = {e["kind"]: e for e in events}
        AdverseEvent.objects.filter(follow_up=locked).exclude(kind__in=list(new_events)).delete()
        for kind, event in new_events.items():
            AdverseEvent.objects.update_or_create(
                follow_up=locked,
                kind=kind,
                defaults={
                    "severity": event["severity"],
                    "description": event.get("description", ""),
                    "resolved_on": event.get("resolved_on"),
                },
            )
        changes = {
            name: [_text(before[name]), _text(getattr(locked, name))]
            for name in VISIT_FIELDS
            if before[name] != getattr(locked, name) and name != "notes"
        }
        if before["notes"] != locked.notes:
            changes["notes"] = "changed"  # free text stays out of the audit trail
        events_before = sorted(
            f"{k}:{e.severity}:{_text(e.resolved_on)}" for k, e in old_events.items()
        )
        events_after = sorted(
            f"{k}:{e['severity']}:{_text(e.get('resolved_on'))}" for k, e in new_events.items()
        )
        if events_before != events_after:
            changes["adverse_events"] = [events_before, events_after]
        audit.record(
            actor=actor,
            action=AuditAction.CHANGE,
            obj=locked,
            patient=follow_up.plan.patient,
            request=request,
            changes=changes,
        )
    return locked


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def status_set(*, follow_up: FollowUp, status: str, actor: User, request=None) -> FollowUp:
    """Did not attend / cancelled / back to scheduled. A seen visit keeps its record."""
    allowed = {FollowUpStatus.MISSED, FollowUpStatus.CANCELLED, FollowUpStatus.SCHEDULED}
    if status not in allowed:
        raise FollowUpRefused("Unknown follow-up status.")
    with transaction.atomic():
        locked = FollowUp.objects.select_for_update().get(pk=follow_up.pk)
        if locked.status == FollowUpStatus.DONE:
            raise FollowUpRefused("This visit is recorded; correct the record instead.")
        previous = locked.status
        locked.status = status
        locked.version = F("version") + 1
        locked.save(update_fields=["status", "version"])
        locked.refresh_from_db()
        audit.record(
            actor=actor,
            action=AuditAction.TRANSITION,
            obj=locked,
            patient=follow_up.plan.patient,
            request=request,
            changes={"status": [previous, status]},
        )
    return locked


# --- reads ---


def plan_follow_ups(plan: TreatmentPlan) -> list[FollowUp]:
    return list(
        plan.follow_ups.select_related("recorded_by").prefetch_related(
            "adverse_events", Prefetch("photos", queryset=Photo.objects.select_related("zone"))
        )
    )


def seen(follow_ups) -> list[FollowUp]:
    return [f for f in follow_ups if f.status == FollowUpStatus.DONE and f.visited_on]


@dataclass(frozen=True)
class Dashboard:
    today: datetime.date
    due: list[FollowUp]
    overdue: list[FollowUp]
    awaiting_consent: list[TreatmentPlan]
    performed_this_month: list[TreatmentPlan]
    due_soon_days: int
    overdue_after_days: int


def dashboard(user: User, *, today: datetime.date | None = None) -> Dashboard:
    today = today or timezone.localdate()
    config = clinic_settings(user.clinic_id)
    grace = datetime.timedelta(days=config.overdue_after_days)
    ahead = datetime.timedelta(days=config.due_soon_days)
    scheduled = (
        follow_ups_for(user)
        .filter(status=FollowUpStatus.SCHEDULED, plan__status=PlanStatus.PERFORMED)
        .select_related("plan__patient")
        .order_by("due_on", "pk")
    )
    month_start = today.replace(day=1)
    plans = plans_for(user).select_related("patient", "surgeon")
    return Dashboard(
        today=today,
        due=list(scheduled.filter(due_on__gte=today - grace, due_on__lte=today + ahead)),
        overdue=list(scheduled.filter(due_on__lt=today - grace)),
        awaiting_consent=list(plans.filter(status=PlanStatus.READY).order_by("planned_for", "pk")),
        performed_this_month=list(
            plans.filter(
                status=PlanStatus.PERFORMED,
                outcome__completed_at__date__gte=month_start,
                outcome__completed_at__date__lte=today,
            )
            .select_related("outcome")
            .order_by("-outcome__completed_at")
        ),
        due_soon_days=config.due_soon_days,
        overdue_after_days=config.overdue_after_days,
    )


# --- charts ---


def chart_points(follow_ups, *, plan: TreatmentPlan | None = None) -> list[charts.Point]:
    """One point per seen visit; with ``plan`` (a patient's chart) labels name the session."""
    from . import charts

    points = []
    for follow_up in seen(follow_ups):
        totals = follow_up.totals
        label = follow_up.label if plan is None else f"{follow_up.label} after plan {plan.pk}"
        points.append(
            charts.Point(
                on=follow_up.visited_on,
                label=label,
                posas_patient=totals["posas_patient"],
                posas_observer=totals["posas_observer"],
                vss=totals["vss"],
                gais_surgeon=follow_up.gais_surgeon,
                gais_patient=follow_up.gais_patient,
            )
        )
    return points


def chart_sessions(plans) -> list[charts.Session]:
    from . import charts

    sessions = []
    for plan in plans:
        if plan.status == PlanStatus.PERFORMED:
            day = performed_on(plan)
            sessions.append(charts.Session(on=day, label=f"Session {date_format(day, 'j M Y')}"))
    return sessions

"""Writes. Each runs in one transaction together with its audit entry."""

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from . import audit, engine
from .choices import AuditAction, PlanStatus
from .forms import PatientForm
from .models import Patient, PlannedInjection, TreatmentPlan, User, WarningAcknowledgement


class DuplicateChartNumber(Exception):
    pass


def patient_save(*, form: PatientForm, actor: User, request=None) -> Patient:
    """Creates or updates the form's patient; a chart number taken meanwhile raises."""
    creating = form.instance.pk is None
    try:
        with transaction.atomic():
            patient = form.save()
            audit.record(
                actor=actor,
                action=AuditAction.CREATE if creating else AuditAction.CHANGE,
                obj=patient,
                changes={"fields": sorted(form.changed_data)},
                request=request,
            )
    except IntegrityError as error:
        raise DuplicateChartNumber from error
    return patient


class PlanConflict(Exception):
    """The plan changed since the user loaded it (another tab or a colleague)."""


class PlanLocked(Exception):
    """The plan's status no longer allows this change."""


class TransitionRefused(Exception):
    """The plan cannot move to the requested status; the message says why."""


def claim_version(
    plan: TreatmentPlan,
    expected_version: int,
    *,
    allowed: tuple[str, ...] = (PlanStatus.DRAFT,),
    **changes,
) -> None:
    """Bumps the plan's version if it is still the one the user saw, else raises.

    The conditional UPDATE is the lock: of two concurrent writers with the same version,
    exactly one updates a row; the other sees 0 rows and is told. ``changes`` (other fields of
    the plan) are written by the same UPDATE.
    """
    now = timezone.now()
    updated = TreatmentPlan.objects.filter(
        pk=plan.pk, version=expected_version, status__in=allowed
    ).update(version=F("version") + 1, updated_at=now, **changes)
    if updated:
        plan.version = expected_version + 1
        plan.updated_at = now
        for name, value in changes.items():
            setattr(plan, name, value)
        return
    current = TreatmentPlan.objects.filter(pk=plan.pk).values("status", "version").first()
    if current and current["status"] not in allowed:
        raise PlanLocked(locked_message(current["status"]))
    raise PlanConflict(
        "This plan was changed in another window or by a colleague since you opened it. "
        "Your change was not saved; the current plan is shown below."
    )


def locked_message(status: str) -> str:
    if status == PlanStatus.READY:
        return "This plan is ready for consent; return it to draft before changing it."
    label = PlanStatus(status).label.lower()
    return f"This plan is {label} and can no longer be edited; start a new draft from it instead."


INJECTION_FIELDS = ("zone_id", "volume_ml", "instrument", "gauge", "depth", "technique", "position")


def plan_create(
    *,
    patient: Patient,
    surgeon: User,
    request=None,
    injections=(),
    audit_changes: dict | None = None,
    **details,
) -> TreatmentPlan:
    """A new draft for today, with the given plan details and copies of the given injections
    (planned or preset ones) in zones still active."""
    with transaction.atomic():
        plan = TreatmentPlan.objects.create(
            patient=patient,
            surgeon=surgeon,
            planned_for=timezone.localdate(),
            rule_set=engine.current_rule_set(),
            **details,
        )
        PlannedInjection.objects.bulk_create(
            PlannedInjection(
                plan=plan,
                notes=getattr(source, "notes", ""),
                **{name: getattr(source, name) for name in INJECTION_FIELDS},
            )
            for source in injections
            if source.zone.active
        )
        audit.record(
            actor=surgeon,
            action=AuditAction.CREATE,
            obj=plan,
            request=request,
            changes=audit_changes,
        )
    return plan


def plan_repeat(*, source: TreatmentPlan, surgeon: User, request=None) -> TreatmentPlan:
    """A new draft with the source plan's details and injections."""
    return plan_create(
        patient=source.patient,
        surgeon=surgeon,
        request=request,
        injections=source.injections.select_related("zone"),
        audit_changes={"repeated_from": source.pk},
        repeated_from=source,
        goal=source.goal,
        indications=list(source.indications),
        combination=source.combination,
        donor_site=source.donor_site,
        harvest_volume_ml=source.harvest_volume_ml,
        notes=source.notes,
    )


def plan_update_details(
    *, plan: TreatmentPlan, form, expected_version: int, actor: User, request=None
) -> TreatmentPlan:
    with transaction.atomic():
        claim_version(plan, expected_version)
        form.instance.version = plan.version
        form.instance.rule_set = engine.current_rule_set(plan)
        plan = form.save()
        audit.record(
            actor=actor,
            action=AuditAction.CHANGE,
            obj=plan,
            request=request,
            changes={"fields": sorted(form.changed_data)},
        )
    return plan


def injection_save(
    *, plan: TreatmentPlan, form, expected_version: int, actor: User, request=None
) -> PlannedInjection:
    creating = form.instance.pk is None
    with transaction.atomic():
        claim_version(plan, expected_version, rule_set=engine.current_rule_set(plan))
        injection = form.save(commit=False)
        injection.plan = plan
        if creating:
            last = plan.injections.aggregate(last=Max("position"))["last"]
            injection.position = 0 if last is None else last + 1
        injection.save()
        audit.record(
            actor=actor,
            action=AuditAction.CREATE if creating else AuditAction.CHANGE,
            obj=injection,
            patient=plan.patient,
            request=request,
            changes={"plan": plan.pk, "fields": sorted(form.changed_data)},
        )
    return injection


def injection_delete(
    *,
    plan: TreatmentPlan,
    injection: PlannedInjection,
    expected_version: int,
    actor: User,
    request=None,
) -> None:
    with transaction.atomic():
        claim_version(plan, expected_version)
        audit.record(
            actor=actor,
            action=AuditAction.DELETE,
            obj=injection,
            patient=plan.patient,
            request=request,
            changes={
                "plan": plan.pk,
                "zone": injection.zone.code,
                "volume_ml": str(injection.volume_ml),
            },
        )
        injection.delete()


def warning_acknowledge(
    *,
    plan: TreatmentPlan,
    finding_key: str,
    finding,
    reason: str,
    expected_version: int,
    actor: User,
    request=None,
) -> WarningAcknowledgement:
    with transaction.atomic():
        claim_version(plan, expected_version)
        acknowledgement, _ = WarningAcknowledgement.objects.update_or_create(
            plan=plan,
            finding_key=finding_key,
            defaults={
                "rule": finding.rule,
                "message": finding.message,
                "reason": reason,
                "acknowledged_by": actor,
            },
        )
        audit.record(
            actor=actor,
            action=AuditAction.CHANGE,
            obj=plan,
            request=request,
            changes={"acknowledged": finding_key},
        )
    return acknowledgement


# target status -> statuses it may be reached from
TRANSITIONS: dict[str, tuple[str, ...]] = {
    PlanStatus.READY: (PlanStatus.DRAFT,),
    PlanStatus.DRAFT: (PlanStatus.READY,),
    PlanStatus.CANCELLED: (PlanStatus.DRAFT, PlanStatus.READY, PlanStatus.CONSENTED),
}


def plan_transition(
    *, plan: TreatmentPlan, target: str, expected_version: int, actor: User, request=None
) -> TreatmentPlan:
    """Moves the plan along its workflow; marking it ready re-runs every rule first."""
    if target not in TRANSITIONS:
        raise TransitionRefused("Unknown status change.")
    with transaction.atomic():
        previous = plan.status
        claim_version(plan, expected_version, allowed=TRANSITIONS[target])
        if target == PlanStatus.READY:
            _check_finalisable(plan)
        TreatmentPlan.objects.filter(pk=plan.pk).update(
            status=target, rule_set=engine.rule_set_for(plan)
        )
        plan.status = target
        audit.record(
            actor=actor,
            action=AuditAction.TRANSITION,
            obj=plan,
            request=request,
            changes={"status": [previous, target]},
        )
    return plan


#: Why a plan without a harvest volume is not ready: the consent sheet states what is harvested.
HARVEST_VOLUME_MISSING = (
    "Record the harvest volume in the session details first: the consent sheet states how much "
    "fat is taken from the donor site."
)


def _check_finalisable(plan: TreatmentPlan) -> None:
    review = engine.review_plan(plan, finalising=True)
    errors = review.errors
    if errors:
        raise TransitionRefused(
            f"The plan cannot be marked ready while {len(errors)} error finding(s) stand: "
            + "; ".join(f.rule for f in errors)
            + "."
        )
    acknowledged = {ack.finding_key: ack for ack in plan.acknowledgements.all()}
    pending = [
        f
        for f in review.warnings
        if not (ack := acknowledged.get(review.key(f))) or not ack.covers(f.message)
    ]
    if pending:
        raise TransitionRefused(
            f"Acknowledge each warning with a reason first ({len(pending)} still open: "
            + ", ".join(f.rule for f in pending)
            + ")."
        )
    if plan.harvest_volume_ml is None:
        raise TransitionRefused(HARVEST_VOLUME_MISSING)

"""Procedure-day writes and reads: presets, processing record, performed record, addenda.

The consented plan itself stays untouched until the session is completed; what happened on the
day lives in its own records, and the plan then moves to ``performed`` and is closed.
"""

import hashlib
from dataclasses import dataclass
from decimal import ROUND_UP, Decimal

from django.db import transaction
from django.utils import timezone

from . import audit, engine, followup, rules
from .choices import AuditAction, Combination, PlanStatus
from .deviations import Deviation, deviations
from .models import (
    ClinicProcessingDefaults,
    Patient,
    PerformedInjection,
    PlanAddendum,
    PlannedInjection,
    ProcedureOutcome,
    ProcessingRecord,
    ProtocolPreset,
    TreatmentPlan,
    User,
)
from .services import PlanConflict, PlanLocked, claim_version, plan_create


class ProcedureIncomplete(Exception):
    """The session cannot be completed yet; the message says what is missing."""


# --- presets --------------------------------------------------------------------------------


def preset_findings(preset: ProtocolPreset, injections) -> list[rules.Finding]:
    """The rules on a preset as if it were a plan (the current reference values)."""
    combined = () if preset.combination == Combination.NONE else (preset.combination,)
    plan = rules.PlanInput(
        goal=preset.goal,
        indications=tuple(preset.indications or ()),
        combined_with=combined,
        injections=tuple(engine.injection_input(injection) for injection in injections),
    )
    return rules.evaluate(plan, engine.snapshot_for(engine.current_rule_set()))


def plan_from_preset(
    *, preset: ProtocolPreset, patient: Patient, surgeon: User, request=None
) -> TreatmentPlan:
    return plan_create(
        patient=patient,
        surgeon=surgeon,
        request=request,
        injections=preset.injections.select_related("zone"),
        audit_changes={"preset": preset.pk},
        goal=preset.goal,
        indications=list(preset.indications),
        combination=preset.combination,
        notes=f"Started from the preset “{preset.name}”.",
    )


# --- reads ----------------------------------------------------------------------------------


def processing_defaults(plan: TreatmentPlan) -> ClinicProcessingDefaults:
    defaults = ClinicProcessingDefaults.objects.filter(clinic_id=plan.patient.clinic_id).first()
    return defaults or ClinicProcessingDefaults(clinic_id=plan.patient.clinic_id)


def suggested_harvest_ml(total_ml: Decimal, ratio: Decimal) -> Decimal:
    """Harvest volume that yields the planned nanofat at the clinic's usual ratio (whole mL)."""
    if total_ml <= 0 or ratio <= 0:
        return Decimal(0)
    return (total_ml / ratio).quantize(Decimal(1), rounding=ROUND_UP)


@dataclass(frozen=True)
class ProcedureState:
    plan: TreatmentPlan
    planned: tuple[PlannedInjection, ...]
    performed: tuple[PerformedInjection, ...]
    processing: ProcessingRecord | None
    deviations: tuple[Deviation, ...]
    findings: tuple[rules.Finding, ...]

    @property
    def planned_total_ml(self) -> Decimal:
        return sum((i.volume_ml for i in self.planned), Decimal(0))

    @property
    def performed_total_ml(self) -> Decimal:
        return sum((i.volume_ml for i in self.performed), Decimal(0))

    @property
    def stamp(self) -> str:
        """A fingerprint of the procedure record, sent back with each write: a write made from
        a page that no longer shows the current record is refused instead of overwriting it."""
        parts = [str(self.processing.updated_at) if self.processing else "-"]
        parts += [
            f"{i.pk}:{i.zone_id}:{i.volume_ml}:{i.instrument}:{i.gauge}:{i.depth}:{i.technique}"
            for i in self.performed
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def procedure_state(plan: TreatmentPlan) -> ProcedureState:
    planned = tuple(plan.injections.select_related("zone"))
    performed = tuple(plan.performed_injections.select_related("zone"))
    processing = ProcessingRecord.objects.filter(plan=plan).first()
    planned_inputs = [engine.injection_input(i) for i in planned]
    performed_inputs = [engine.injection_input(i) for i in performed]
    findings: list[rules.Finding] = []
    if processing is not None:
        planned_total = sum((i.volume_ml for i in planned_inputs), Decimal(0))
        findings += rules.check_yield(planned_total, processing.nanofat_yield_ml)
    if performed:
        # The same rules as at planning, on what was actually injected.
        snapshot = engine.snapshot_for(engine.rule_set_for(plan))
        findings += rules.evaluate(engine.plan_input(plan, performed), snapshot)
    return ProcedureState(
        plan=plan,
        planned=planned,
        performed=performed,
        processing=processing,
        deviations=tuple(deviations(planned_inputs, performed_inputs)) if performed else (),
        findings=tuple(findings),
    )


# --- writes ---------------------------------------------------------------------------------


def _lock_consented(plan: TreatmentPlan, stamp: str) -> None:
    """Holds the plan row for the transaction; refuses if closed or changed meanwhile."""
    locked = TreatmentPlan.objects.select_for_update().get(pk=plan.pk)
    if locked.status != PlanStatus.CONSENTED:
        raise PlanLocked(
            "Only a consented plan can be recorded on the procedure day; this one is "
            f"{locked.get_status_display().lower()}."
        )
    if procedure_state(locked).stamp != stamp:
        raise PlanConflict(
            "The procedure record was changed in another window or by a colleague "
            "since you opened it. Nothing was saved; the current record is shown."
        )


def processing_save(
    *, plan: TreatmentPlan, form, stamp: str, actor: User, request=None
) -> ProcessingRecord:
    with transaction.atomic():
        _lock_consented(plan, stamp)
        record = form.save(commit=False)
        record.plan = plan
        record.recorded_by = actor
        record.save()
        audit.record(
            actor=actor,
            action=AuditAction.CHANGE,
            obj=record,
            patient=plan.patient,
            request=request,
            changes={"plan": plan.pk, "fields": sorted(form.changed_data)},
        )
    return record


def performed_save(*, plan: TreatmentPlan, formset, stamp: str, actor: User, request=None) -> None:
    """Replaces the performed injections with the formset's rows (deleted rows left out)."""
    with transaction.atomic():
        _lock_consented(plan, stamp)
        plan.performed_injections.all().delete()
        rows = [
            form.cleaned_data
            for form in formset.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        PerformedInjection.objects.bulk_create(
            PerformedInjection(
                plan=plan,
                zone=row["zone"],
                volume_ml=row["volume_ml"],
                instrument=row["instrument"],
                gauge=row["gauge"],
                depth=row["depth"],
                technique=row["technique"],
                position=index,
            )
            for index, row in enumerate(rows)
        )
        audit.record(
            actor=actor,
            action=AuditAction.CHANGE,
            obj=plan,
            request=request,
            changes={"performed_injections": len(rows)},
        )


def procedure_complete(
    *,
    plan: TreatmentPlan,
    reasons: dict[str, str],
    adverse_events: str,
    stamp: str,
    actor: User,
    request=None,
) -> ProcedureOutcome:
    with transaction.atomic():
        _lock_consented(plan, stamp)
        state = procedure_state(plan)
        _check_complete(state, reasons)
        outcome = ProcedureOutcome.objects.create(
            plan=plan,
            adverse_events=adverse_events,
            completed_by=actor,
            deviation_reasons={d.key: reasons[d.key].strip() for d in state.deviations},
            findings=[f.as_dict() for f in state.findings],
        )
        claim_version(
            plan, plan.version, allowed=(PlanStatus.CONSENTED,), status=PlanStatus.PERFORMED
        )
        audit.record(
            actor=actor,
            action=AuditAction.TRANSITION,
            obj=plan,
            request=request,
            changes={
                "status": [PlanStatus.CONSENTED, PlanStatus.PERFORMED],
                "deviations": len(state.deviations),
            },
        )
        # Follow-up: the clinic's review schedule starts from the day of the session.
        followup.schedule_for(plan, performed_on=timezone.localdate(outcome.completed_at))
    return outcome


def _check_complete(state: ProcedureState, reasons: dict[str, str]) -> None:
    missing = []
    if state.processing is None:
        missing.append("record the harvest and processing (with the nanofat yield)")
    if not state.performed:
        missing.append("record what was injected")
    unexplained = [d.zone for d in state.deviations if not reasons.get(d.key, "").strip()]
    if unexplained:
        missing.append(
            "give a reason for each deviation from the consented plan ("
            + ", ".join(unexplained)
            + ")"
        )
    if missing:
        raise ProcedureIncomplete("To complete the session, " + "; ".join(missing) + ".")


def addendum_add(*, plan: TreatmentPlan, text: str, actor: User, request=None) -> PlanAddendum:
    with transaction.atomic():
        locked = TreatmentPlan.objects.select_for_update().get(pk=plan.pk)
        if locked.status != PlanStatus.PERFORMED:
            raise PlanLocked("Addenda are added to performed plans only.")
        addendum = PlanAddendum.objects.create(plan=plan, text=text, author=actor)
        audit.record(
            actor=actor,
            action=AuditAction.CREATE,
            obj=addendum,
            patient=plan.patient,
            request=request,
            changes={"plan": plan.pk},
        )
    return addendum

"""Procedure day: start from a preset, record processing and what was injected, complete."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import audit, operative, pdf, procedure
from ..access import get_patient_for_user, get_plan_for_user
from ..choices import AuditAction, PlanStatus
from ..forms_procedure import (
    AddendumForm,
    CompleteForm,
    PerformedFormSet,
    PresetChoiceForm,
    ProcessingRecordForm,
)
from ..models import TreatmentPlan
from ..services import PlanConflict, PlanLocked
from . import consent as consent_views
from .documents import pdf_response

EDIT_PERMISSION = "planner.change_treatmentplan"


@require_POST
@permission_required("planner.add_treatmentplan", raise_exception=True)
def plan_from_preset(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = get_patient_for_user(request, patient_id)
    form = PresetChoiceForm(request.POST, clinic_id=patient.clinic_id)
    if not form.is_valid():
        messages.error(request, "; ".join(form.errors["preset"]))
        return redirect(patient)
    plan = procedure.plan_from_preset(
        preset=form.cleaned_data["preset"], patient=patient, surgeon=request.user, request=request
    )
    messages.success(request, f"New draft plan from the preset “{form.cleaned_data['preset']}”.")
    return redirect(plan)


@require_http_methods(["GET", "POST"])
@permission_required("planner.view_treatmentplan", raise_exception=True)
def procedure_day(request: HttpRequest, pk: int) -> HttpResponse:
    plan = get_plan_for_user(request, pk)
    if plan.status not in (PlanStatus.CONSENTED, PlanStatus.PERFORMED):
        messages.error(request, "The procedure record opens once the plan is consented.")
        return redirect(plan)
    state = procedure.procedure_state(plan)
    forms = _forms(plan, state)
    status = 200
    if request.method == "POST":
        if not request.user.has_perm(EDIT_PERMISSION):
            return render(request, "403.html", status=403)
        response, forms, status = _handle_post(request, plan, state, forms)
        if response is not None:
            return response
        if status == 422 and not messages.get_messages(request):
            messages.error(request, "Please correct the fields marked below; nothing was saved.")
        state = procedure.procedure_state(plan)
    else:
        audit.record(
            actor=request.user,
            action=AuditAction.VIEW,
            obj=plan,
            request=request,
            changes={"page": "procedure"},
        )
    return render(
        request, "planner/procedure.html", _context(request, plan, state, forms), status=status
    )


def _forms(plan: TreatmentPlan, state: procedure.ProcedureState) -> dict:
    return {
        "processing": ProcessingRecordForm(
            instance=state.processing, prefix="proc", initial=_processing_initial(plan, state)
        ),
        "performed": PerformedFormSet(prefix="done", initial=_performed_initial(state)),
        "complete": CompleteForm(prefix="end", deviations=state.deviations),
        "addendum": AddendumForm(prefix="add"),
    }


def _processing_initial(plan: TreatmentPlan, state: procedure.ProcedureState) -> dict:
    if state.processing is not None:
        return {}
    defaults = procedure.processing_defaults(plan)
    return {
        "donor_site": plan.donor_site or defaults.donor_site,
        "harvest_volume_ml": plan.harvest_volume_ml,
        "harvest_cannula": defaults.harvest_cannula,
        "harvest_cannula_hole_mm": defaults.harvest_cannula_hole_mm,
        "emulsification_passes": defaults.emulsification_passes,
        "connector_bore_mm": defaults.connector_bore_mm,
        "filter_type": defaults.filter_type,
        "filter_pore_mm": defaults.filter_pore_mm,
    }


def _performed_initial(state: procedure.ProcedureState) -> list[dict]:
    # Pre-filled from the consented plan until the surgeon saves what was done.
    source = state.performed or state.planned
    return [
        {
            "zone": i.zone.code,
            "volume_ml": i.volume_ml,
            "instrument": i.instrument,
            "gauge": i.gauge,
            "depth": i.depth,
            "technique": i.technique,
        }
        for i in source
    ]


def _handle_post(request: HttpRequest, plan: TreatmentPlan, state, forms):
    action = request.POST.get("action", "")
    stamp = request.POST.get("stamp", "")
    try:
        if action == "processing":
            form = ProcessingRecordForm(request.POST, instance=state.processing, prefix="proc")
            forms["processing"] = form
            if not form.is_valid():
                return None, forms, 422
            procedure.processing_save(
                plan=plan, form=form, stamp=stamp, actor=request.user, request=request
            )
            messages.success(request, "Harvest and processing record saved.")
        elif action == "performed":
            formset = PerformedFormSet(request.POST, prefix="done")
            forms["performed"] = formset
            if not formset.is_valid():
                return None, forms, 422
            procedure.performed_save(
                plan=plan, formset=formset, stamp=stamp, actor=request.user, request=request
            )
            messages.success(request, "Performed injections saved.")
        elif action == "complete":
            form = CompleteForm(request.POST, prefix="end", deviations=state.deviations)
            forms["complete"] = form
            if not form.is_valid():
                return None, forms, 422
            procedure.procedure_complete(
                plan=plan,
                reasons=form.reasons(),
                adverse_events=form.cleaned_data["adverse_events"],
                stamp=stamp,
                actor=request.user,
                request=request,
            )
            messages.success(request, "Session completed: the plan is now performed and closed.")
        elif action == "addendum":
            form = AddendumForm(request.POST, prefix="add")
            forms["addendum"] = form
            if not form.is_valid():
                return None, forms, 422
            procedure.addendum_add(
                plan=plan, text=form.cleaned_data["text"], actor=request.user, request=request
            )
            messages.success(request, "Addendum added.")
        else:
            messages.error(request, "Unknown action; nothing was saved.")
            return None, forms, 400
    except PlanConflict as conflict:
        messages.error(request, str(conflict))
        return None, _forms(plan, procedure.procedure_state(plan)), 409
    except (PlanLocked, procedure.ProcedureIncomplete) as refusal:
        messages.error(request, str(refusal))
        return None, forms, 422
    return redirect(reverse("procedure_day", args=[plan.pk])), forms, 200


def _context(request: HttpRequest, plan: TreatmentPlan, state, forms) -> dict:
    ratio = procedure.processing_defaults(plan).expected_yield_ratio
    return {
        "plan": plan,
        "patient": plan.patient,
        "state": state,
        "editable": plan.status == PlanStatus.CONSENTED and request.user.has_perm(EDIT_PERMISSION),
        "can_add_addendum": plan.status == PlanStatus.PERFORMED
        and request.user.has_perm(EDIT_PERMISSION),
        "expected_yield_ratio": ratio,
        "suggested_harvest_ml": procedure.suggested_harvest_ml(state.planned_total_ml, ratio),
        "outcome": getattr(plan, "outcome", None) if plan.status == PlanStatus.PERFORMED else None,
        "addenda": plan.addenda.select_related("author"),
        **forms,
    }


@require_GET
@permission_required("planner.view_treatmentplan", raise_exception=True)
def operative_record_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """The operative record of a performed plan, as a PDF; every download is audited."""
    plan = get_plan_for_user(request, pk)
    if plan.status != PlanStatus.PERFORMED:
        raise Http404("The operative record exists once the session is performed.")
    try:
        content = operative.render_operative_pdf(plan)
    except pdf.PdfError as error:
        return consent_views.unavailable(request, plan, error)
    audit.record(
        actor=request.user,
        action=AuditAction.PRINT,
        obj=plan,
        request=request,
        changes={"document": "operative_record"},
    )
    return pdf_response(content, f"operative-record-plan-{plan.pk}.pdf")

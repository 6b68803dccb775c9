"""Follow-up: the clinic dashboard, a plan's follow-up page, the visit record, score charts
and the printable follow-up summary."""

import base64

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import audit, charts, followup, scores
from ..access import get_patient_for_user, get_plan_for_user
from ..choices import AuditAction, PlanStatus
from ..forms_followup import (
    PhotoUploadForm,
    UnscheduledVisitForm,
    VisitForm,
    adverse_event_forms,
)
from ..models import FollowUp, Patient, TreatmentPlan
from ..models_followup import FollowUpStatus
from .documents import pdf_response

VIEW = "planner.view_followup"
RECORD = "planner.change_followup"
SCHEDULE = "planner.add_followup"

# The chart is an image: matplotlib writes presentation as style attributes, which the SVG
# document needs and nothing else. No script, no fetches.
CHART_CSP = {
    "default-src": ["'none'"],
    "style-src": ["'unsafe-inline'"],
    "img-src": ["data:"],
}


# --- dashboard ---


@require_GET
@permission_required(VIEW, raise_exception=True)
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "planner/dashboard.html", {"board": followup.dashboard(request.user)})


# --- a plan's follow-up ------------------------------------------------------------------------


def _plan_context(request: HttpRequest, plan: TreatmentPlan) -> dict:
    follow_ups = followup.plan_follow_ups(plan)
    baseline = list(plan.photos.filter(follow_up__isnull=True).select_related("zone"))
    return {
        "plan": plan,
        "patient": plan.patient,
        "follow_ups": follow_ups,
        "seen": followup.seen(follow_ups),
        "session_on": followup.performed_on(plan) if plan.status == PlanStatus.PERFORMED else None,
        "has_schedule": any(f.is_scheduled for f in follow_ups),
        "scar": followup.is_scar_plan(plan),
        "baseline_photos": baseline,
        "unscheduled_form": UnscheduledVisitForm(initial={"due_on": timezone.localdate()}),
        "today": timezone.localdate(),
    }


@require_GET
@permission_required(VIEW, raise_exception=True)
def plan_followup(request: HttpRequest, pk: int) -> HttpResponse:
    plan = get_plan_for_user(request, pk)
    audit.record(
        actor=request.user,
        action=AuditAction.VIEW,
        obj=plan,
        request=request,
        changes={"page": "follow-up"},
    )
    return render(request, "planner/followup_plan.html", _plan_context(request, plan))


@require_POST
@permission_required(SCHEDULE, raise_exception=True)
def followup_schedule(request: HttpRequest, pk: int) -> HttpResponse:
    plan = get_plan_for_user(request, pk)
    try:
        created = followup.schedule_missing(plan=plan, actor=request.user, request=request)
    except followup.FollowUpRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, f"Follow-up schedule created: {len(created)} reviews.")
    return redirect("plan_followup", pk=plan.pk)


@require_POST
@permission_required(SCHEDULE, raise_exception=True)
def followup_unscheduled(request: HttpRequest, pk: int) -> HttpResponse:
    plan = get_plan_for_user(request, pk)
    form = UnscheduledVisitForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(form.errors.get("due_on", ["Enter a valid date."])))
        return redirect("plan_followup", pk=plan.pk)
    try:
        follow_up = followup.add_unscheduled(
            plan=plan, due_on=form.cleaned_data["due_on"], actor=request.user, request=request
        )
    except followup.FollowUpRefused as refusal:
        messages.error(request, str(refusal))
        return redirect("plan_followup", pk=plan.pk)
    return redirect(follow_up)


# --- the visit record ---


@require_http_methods(["GET", "POST"])
@permission_required(VIEW, raise_exception=True)
def followup_visit(request: HttpRequest, pk: int) -> HttpResponse:
    follow_up = followup.get_follow_up_for_user(request, pk)
    plan = follow_up.plan
    session_on = followup.performed_on(plan)
    scar = followup.is_scar_plan(plan)
    can_record = request.user.has_perm(RECORD) and follow_up.status != FollowUpStatus.CANCELLED
    status = 200
    if request.method == "POST":
        if not request.user.has_perm(RECORD):
            return render(request, "403.html", status=403)
        form = VisitForm(request.POST, plan=plan, session_on=session_on, scar=scar)
        events = adverse_event_forms(request.POST, follow_up=follow_up, session_on=session_on)
        if form.is_valid() and all(event.is_valid() for event in events):
            try:
                followup.visit_save(
                    follow_up=follow_up,
                    data=form.visit_data(),
                    events=[e for e in (event.event() for event in events) if e],
                    version=_int(request.POST.get("version")),
                    actor=request.user,
                    request=request,
                )
            except followup.FollowUpConflict as conflict:
                messages.error(request, str(conflict))
                follow_up.refresh_from_db()
                form, events = _visit_forms(follow_up, plan, session_on, scar)
                status = 409
            except followup.FollowUpRefused as refusal:
                messages.error(request, str(refusal))
                status = 422
            else:
                messages.success(request, f"Follow-up visit ({follow_up.label}) saved.")
                return redirect(follow_up)
        else:
            status = 422
            messages.error(request, "Please correct the scores marked below; nothing was saved.")
    else:
        form, events = _visit_forms(follow_up, plan, session_on, scar)
        audit.record(
            actor=request.user,
            action=AuditAction.VIEW,
            obj=follow_up,
            patient=plan.patient,
            request=request,
        )
    photos = list(follow_up.photos.select_related("zone"))
    context = {
        "follow_up": follow_up,
        "plan": plan,
        "patient": plan.patient,
        "session_on": session_on,
        "form": form,
        "events": events,
        "event_errors": [error for event in events for error in event.non_field_errors()],
        "can_record": can_record,
        "scar": scar,
        "photos": photos,
        "photo_form": PhotoUploadForm(follow_ups=[follow_up], initial_timepoint=str(follow_up.pk)),
        "gais_labels": scores.GAIS_LABELS,
    }
    return render(request, "planner/followup_visit.html", context, status=status)


def _visit_forms(follow_up: FollowUp, plan: TreatmentPlan, session_on, scar: bool):
    form = VisitForm(
        initial=VisitForm.initial_for(follow_up), plan=plan, session_on=session_on, scar=scar
    )
    return form, adverse_event_forms(None, follow_up=follow_up, session_on=session_on)


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


@require_POST
@permission_required(RECORD, raise_exception=True)
def followup_status(request: HttpRequest, pk: int) -> HttpResponse:
    follow_up = followup.get_follow_up_for_user(request, pk)
    try:
        followup.status_set(
            follow_up=follow_up,
            status=request.POST.get("status", ""),
            actor=request.user,
            request=request,
        )
    except followup.FollowUpRefused as refusal:
        messages.error(request, str(refusal))
    else:
        follow_up.refresh_from_db()
        messages.success(request, f"{follow_up.label}: {follow_up.get_status_display()}.")
    return redirect("plan_followup", pk=follow_up.plan_id)


# --- a patient's outcomes ---


@require_GET
@permission_required(VIEW, raise_exception=True)
def patient_followup(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_patient_for_user(request, pk)
    plans = list(patient.plans.filter(status=PlanStatus.PERFORMED).select_related("outcome"))
    rows = []
    for plan in plans:
        for follow_up in followup.seen(followup.plan_follow_ups(plan)):
            rows.append((plan, follow_up))
    rows.sort(key=lambda pair: (pair[1].visited_on, pair[1].pk))
    audit.record(
        actor=request.user,
        action=AuditAction.VIEW,
        obj=patient,
        request=request,
        changes={"page": "follow-up"},
    )
    return render(
        request,
        "planner/followup_patient.html",
        {"patient": patient, "plans": plans, "rows": rows},
    )


# --- charts ---


def plan_chart_svg(plan: TreatmentPlan) -> bytes:
    points = followup.chart_points(followup.plan_follow_ups(plan))
    sessions = followup.chart_sessions([plan])
    return charts.trajectory_svg(points, sessions=sessions)


def patient_chart_svg(patient: Patient) -> bytes:
    plans = list(patient.plans.filter(status=PlanStatus.PERFORMED).select_related("outcome"))
    points = [
        point
        for plan in plans
        for point in followup.chart_points(followup.plan_follow_ups(plan), plan=plan)
    ]
    return charts.trajectory_svg(points, sessions=followup.chart_sessions(plans))


def _svg_response(content: bytes, name: str) -> HttpResponse:
    response = HttpResponse(content, content_type="image/svg+xml; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{name}"'
    response["Cache-Control"] = "no-store, private"
    return response


@require_GET
@permission_required(VIEW, raise_exception=True)
@csp_override(CHART_CSP)
def plan_chart(request: HttpRequest, pk: int) -> HttpResponse:
    plan = get_plan_for_user(request, pk)
    return _svg_response(plan_chart_svg(plan), f"scores-plan-{plan.pk}.svg")


@require_GET
@permission_required(VIEW, raise_exception=True)
@csp_override(CHART_CSP)
def patient_chart(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_patient_for_user(request, pk)
    return _svg_response(patient_chart_svg(patient), f"scores-patient-{patient.pk}.svg")


# --- the printable summary ---


def summary_html(plan: TreatmentPlan) -> str:
    follow_ups = followup.plan_follow_ups(plan)
    seen = followup.seen(follow_ups)
    chart = base64.b64encode(plan_chart_svg(plan)).decode("ascii")
    return render_to_string(
        "planner/followup_summary_print.html",
        {
            "plan": plan,
            "patient": plan.patient,
            "clinic": plan.patient.clinic,
            "follow_ups": follow_ups,
            "seen": seen,
            "vss_versions": sorted({f.get_vss_version_display() for f in seen if f.vss_version}),
            "session_on": followup.performed_on(plan),
            "scar": followup.is_scar_plan(plan),
            "chart_data_uri": f"data:image/svg+xml;base64,{chart}",
            "printed_at": timezone.localtime(),
        },
    )


@require_GET
@permission_required(VIEW, raise_exception=True)
def followup_summary_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    from .. import pdf  # WeasyPrint's renderer (planner/pdf.py)

    plan = get_plan_for_user(request, pk)
    if plan.status != PlanStatus.PERFORMED:
        messages.error(request, "The follow-up summary is available once the plan is performed.")
        return redirect("plan_followup", pk=plan.pk)
    try:
        content = pdf.render_pdf(summary_html(plan)).pdf
    except pdf.PdfError as error:
        messages.error(request, f"The follow-up summary could not be made: {error}")
        return redirect("plan_followup", pk=plan.pk)
    audit.record(
        actor=request.user,
        action=AuditAction.PRINT,
        obj=plan,
        request=request,
        changes={"document": "follow-up summary"},
    )
    return pdf_response(content, f"follow-up-plan-{plan.pk}.pdf")

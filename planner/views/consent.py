"""The consent sheet: the PDF, its print preview, and recording the patient's signature."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from .. import audit, consent, pdf, services
from ..access import get_plan_for_user
from ..choices import AuditAction
from ..forms_consent import ConsentRecordForm
from ..models import ConsentRecord, TreatmentPlan
from .documents import pdf_response

VIEW_PERMISSION = "planner.view_treatmentplan"
PRINT_PERMISSION = "planner.print_consent"
RECORD_PERMISSION = "planner.record_consent"
STAFF_ONLY = "Only clinic staff print the sheet for signature."


def _record_of(plan: TreatmentPlan) -> ConsentRecord | None:
    return ConsentRecord.objects.filter(plan=plan).select_related("recorded_by").first()


def _state_for(request: HttpRequest, plan: TreatmentPlan) -> consent.SheetState:
    state = consent.sheet_state(plan)
    if state.signable and not request.user.has_perm(PRINT_PERMISSION):
        state.blockers.append(STAFF_ONLY)
    return state


def _pdf_response(content: bytes, plan: TreatmentPlan, version: int) -> HttpResponse:
    return pdf_response(content, f"consent-plan-{plan.pk}-v{version}.pdf")


def unavailable(request: HttpRequest, plan: TreatmentPlan, error: pdf.PdfError) -> HttpResponse:
    timed_out = isinstance(error, pdf.PdfRenderTimeout)
    response = render(
        request,
        "planner/consent/unavailable.html",
        {"plan": plan, "message": str(error), "timed_out": timed_out},
        status=503,
    )
    response["Retry-After"] = "30"
    return response


@require_GET
@permission_required(VIEW_PERMISSION, raise_exception=True)
def consent_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """The signed copy once consented; else the sheet for signature (staff, signable plan) or a
    DRAFT-marked copy. Every download is an audit entry."""
    plan = get_plan_for_user(request, pk)
    record = _record_of(plan)
    if record is not None:
        audit.record(
            actor=request.user,
            action=AuditAction.PRINT,
            obj=plan,
            request=request,
            changes={"copy": "signed", "document_id": record.document_id},
        )
        return _pdf_response(bytes(record.pdf), plan, record.plan_version)

    state = _state_for(request, plan)
    try:
        content, document_id = consent.render_sheet_pdf(state)
    except pdf.PdfError as error:
        return unavailable(request, plan, error)
    audit.record(
        actor=request.user,
        action=AuditAction.PRINT,
        obj=plan,
        request=request,
        changes={
            "copy": "for signature" if state.signable else "draft",
            "document_id": document_id,
        },
    )
    return _pdf_response(content, plan, plan.version)


@require_http_methods(["GET", "POST"])
@permission_required(VIEW_PERMISSION, raise_exception=True)
def consent_sheet(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the print preview (or the record, once consented). POST: record the signature."""
    plan = get_plan_for_user(request, pk)
    if request.method == "POST":
        if not request.user.has_perm(RECORD_PERMISSION):
            raise PermissionDenied
        return _record_signature(request, plan)
    record = _record_of(plan)
    if record is not None:
        return render(request, "planner/consent/record.html", {"plan": plan, "record": record})
    return _preview(request, plan)


def _preview(
    request: HttpRequest,
    plan: TreatmentPlan,
    *,
    form: ConsentRecordForm | None = None,
    error_message: str = "",
    status: int = 200,
) -> HttpResponse:
    state = _state_for(request, plan)
    if state.signable and request.user.has_perm(RECORD_PERMISSION):
        form = form or ConsentRecordForm(
            initial={"version": plan.version, "signed_on": timezone.localdate()}
        )
    else:
        form = None
    html, _ = consent.render_html(
        state,
        for_pdf=False,
        request=request,
        consent_form=form,
        error_message=error_message,
    )
    return HttpResponse(html, status=status)


def _record_signature(request: HttpRequest, plan: TreatmentPlan) -> HttpResponse:
    form = ConsentRecordForm(request.POST)
    if not form.is_valid():
        return _preview(request, plan, form=form, status=422)
    data = form.cleaned_data
    try:
        consent.record_consent(
            plan=plan,
            expected_version=data["version"],
            signed_document_id=data["document_id"],
            signed_on=data["signed_on"],
            witness_name=data["witness_name"],
            actor=request.user,
            request=request,
        )
    except (services.PlanConflict, services.PlanLocked, consent.ConsentRefused) as refusal:
        return _refused(request, plan, form, refusal)
    except pdf.PdfError as error:
        return unavailable(request, plan, error)
    messages.success(request, "Consent recorded. The plan is now consented and read-only.")
    return redirect("consent_sheet", plan.pk)


def _refused(
    request: HttpRequest, plan: TreatmentPlan, form: ConsentRecordForm, refusal: Exception
) -> HttpResponse:
    """The page again, saying why nothing was recorded: beside the field it is about, with
    what was typed kept, when the plan is unchanged; else the current record or sheet."""
    current = get_plan_for_user(request, plan.pk)
    record = _record_of(current)
    if record is not None:
        message = "This plan's consent has already been recorded; nothing more was recorded."
        context = {"plan": current, "record": record, "error_message": message}
        return render(request, "planner/consent/record.html", context, status=409)
    field = getattr(refusal, "field", None)
    if field is not None:
        form.add_error(field, str(refusal))
        return _preview(request, current, form=form, status=409)
    return _preview(request, current, error_message=str(refusal), status=409)

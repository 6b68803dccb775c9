from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.db.models import Count, Max, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from .. import audit
from ..access import get_patient_for_user, patients_for
from ..choices import AuditAction
from ..forms import PatientForm, PatientSearchForm
from ..forms_procedure import PresetChoiceForm
from ..services import DuplicateChartNumber, patient_save

PAGE_SIZE = 25


@require_http_methods(["GET", "POST"])
@permission_required("planner.view_patient", raise_exception=True)
def patient_list(request: HttpRequest) -> HttpResponse:
    """The clinic's patients; a search is POSTed, so no name ever travels in a URL (history,
    proxy and server logs keep URLs)."""
    data = request.POST if request.method == "POST" else {}
    search = PatientSearchForm(data or None)
    patients = patients_for(request.user)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    if query:
        patients = patients.filter(Q(name__icontains=query) | Q(chart_number__icontains=query))
    page = Paginator(patients.order_by("name", "chart_number"), PAGE_SIZE).get_page(
        data.get("page") or request.GET.get("page")
    )
    # The plan figures join every plan: read for the page's rows only, not for the count of the
    # matching patients (a join and a grouping less there, which PostgreSQL also plans faster).
    page.object_list = page.object_list.annotate(
        plan_count=Count("plans"), last_session=Max("plans__planned_for")
    )
    context = {"page": page, "search": search, "query": query}
    template = "planner/patient_list.html"
    if request.htmx and request.htmx.target == "patient-results":
        template += "#patient-results"
    status = 422 if search.is_bound and not search.is_valid() else 200
    return render(request, template, context, status=status)


@require_GET
@permission_required("planner.view_patient", raise_exception=True)
def patient_detail(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_patient_for_user(request, pk)
    audit.record(actor=request.user, action=AuditAction.VIEW, obj=patient, request=request)
    plans = patient.plans.select_related("surgeon").annotate(injection_count=Count("injections"))
    context = {
        "patient": patient,
        "plans": plans,
        "preset_form": PresetChoiceForm(clinic_id=patient.clinic_id),
    }
    return render(request, "planner/patient_detail.html", context)


@require_http_methods(["GET", "POST"])
@permission_required("planner.add_patient", raise_exception=True)
def patient_create(request: HttpRequest) -> HttpResponse:
    return _patient_form(request, PatientForm(request.POST or None, clinic=request.user.clinic))


@require_http_methods(["GET", "POST"])
@permission_required("planner.change_patient", raise_exception=True)
def patient_edit(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_patient_for_user(request, pk)
    form = PatientForm(request.POST or None, instance=patient, clinic=patient.clinic)
    return _patient_form(request, form)


def _patient_form(request: HttpRequest, form: PatientForm) -> HttpResponse:
    if request.method == "POST" and form.is_valid():
        try:
            patient = patient_save(form=form, actor=request.user, request=request)
        except DuplicateChartNumber:
            form.add_error("chart_number", "This chart number was just taken by another patient.")
        else:
            messages.success(request, f"Patient {patient.chart_number} saved.")
            return redirect(patient)
    status = 422 if form.is_bound else 200
    return render(request, "planner/patient_form.html", {"form": form}, status=status)

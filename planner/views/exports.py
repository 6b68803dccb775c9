"""The clinic audit export (CSV), for clinic admins only; every export is audited."""

import hashlib

from django.contrib.auth.decorators import permission_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from .. import audit, export
from ..access import plans_for
from ..choices import AuditAction
from ..forms_followup import ExportForm
from ..models import ClinicExport

EXPORT = "planner.export_clinic_audit"


@require_GET
@permission_required(EXPORT, raise_exception=True)
def export_page(request: HttpRequest) -> HttpResponse:
    recent = ClinicExport.objects.filter(clinic_id=request.user.clinic_id).select_related(
        "requested_by"
    )[:10]
    return render(
        request,
        "planner/export.html",
        {"form": ExportForm(), "columns": export.columns(identifiable=False), "recent": recent},
    )


@require_http_methods(["GET", "POST"])
@permission_required(EXPORT, raise_exception=True)
def audit_csv(request: HttpRequest) -> HttpResponse:
    """GET: the pseudonymised export of every plan. POST (the export page's form): a date
    range, and names and chart numbers only when the admin ticks the box and gives a reason."""
    form = ExportForm(request.POST if request.method == "POST" else {})
    if not form.is_valid():
        return render(
            request,
            "planner/export.html",
            {"form": form, "columns": export.columns(identifiable=False), "recent": []},
            status=422,
        )
    data = form.cleaned_data
    identifiable = bool(data.get("identifiable")) and request.method == "POST"
    plans = plans_for(request.user)
    if data.get("date_from"):
        plans = plans.filter(planned_for__gte=data["date_from"])
    if data.get("date_to"):
        plans = plans.filter(planned_for__lte=data["date_to"])
    text, count = export.write_csv(export.plans_queryset(plans), identifiable=identifiable)
    content = text.encode("utf-8-sig")  # the BOM makes spreadsheets read UTF-8
    digest = hashlib.sha256(content).hexdigest()
    with transaction.atomic():
        record = ClinicExport.objects.create(
            clinic_id=request.user.clinic_id,
            requested_by=request.user,
            identifiable=identifiable,
            reason=data.get("reason", "") if identifiable else "",
            row_count=count,
            sha256=digest,
        )
        audit.record(
            actor=request.user,
            action=AuditAction.CREATE,
            obj=record,
            request=request,
            changes={
                "export": "clinic audit CSV",
                "identifiable": identifiable,
                "rows": count,
                "date_from": data["date_from"].isoformat() if data.get("date_from") else "",
                "date_to": data["date_to"].isoformat() if data.get("date_to") else "",
                "sha256": digest,
            },
        )
    stamp = timezone.localdate().isoformat()
    kind = "identifiable" if identifiable else "pseudonymised"
    response = HttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="clinic-audit-{stamp}-{kind}.csv"'
    response["Cache-Control"] = "no-store, private"
    return response

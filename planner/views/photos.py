"""Clinical photos: the plan's gallery and upload, the authenticated file view, comparison."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import audit, followup, photos
from ..access import get_plan_for_user
from ..choices import AuditAction, PlanStatus
from ..forms_followup import PhotoUploadForm
from ..models import Photo, TreatmentPlan, TreatmentZone
from ..models_followup import PhotoView

VIEW = "planner.view_photo"
ADD = "planner.add_photo"
DELETE = "planner.delete_photo"
# Room for the form fields and multipart framing around the largest accepted photo.
UPLOAD_OVERHEAD_BYTES = 64 * 1024


def _gallery(plan: TreatmentPlan) -> list[dict]:
    """Photos grouped by time point: baseline first, then each follow-up in date order."""
    groups = [{"label": "Baseline", "follow_up": None, "photos": []}]
    by_follow_up = {}
    for follow_up in plan.follow_ups.exclude(status="cancelled").order_by("due_on", "pk"):
        group = {"label": follow_up.label, "follow_up": follow_up, "photos": []}
        by_follow_up[follow_up.pk] = group
        groups.append(group)
    for photo in plan.photos.select_related("zone", "uploaded_by"):
        group = by_follow_up.get(photo.follow_up_id) if photo.follow_up_id else groups[0]
        if group is not None:
            group["photos"].append(photo)
    for group in groups:
        # The standard views not yet taken at this time point (close-ups are per zone).
        taken = {photo.view for photo in group["photos"]}
        group["missing"] = [
            label
            for value, label in PhotoView.choices
            if value != PhotoView.CLOSE_UP and value not in taken
        ]
    return groups


@require_http_methods(["GET", "POST"])
@permission_required(VIEW, raise_exception=True)
def plan_photos(request: HttpRequest, pk: int) -> HttpResponse:
    plan = get_plan_for_user(request, pk)
    follow_ups = list(plan.follow_ups.order_by("due_on", "pk"))
    status = 200
    form = PhotoUploadForm(follow_ups=follow_ups, initial_timepoint=request.GET.get("at", ""))
    if request.method == "POST":
        if not request.user.has_perm(ADD):
            return render(request, "403.html", status=403)
        if plan.status == PlanStatus.CANCELLED:
            messages.error(request, "This plan is cancelled; photos are not added to it.")
            return redirect("plan_photos", pk=plan.pk)
        if _too_large(request):
            return _refuse_too_large(request, plan, follow_ups)
        form = PhotoUploadForm(request.POST, request.FILES, follow_ups=follow_ups)
        if form.is_valid():
            photo = photo_add(plan=plan, form=form, actor=request.user, request=request)
            messages.success(
                request, f"Photo saved ({photo.timepoint}, {photo.get_view_display()})."
            )
            target = request.POST.get("next", "")
            if target == "visit" and photo.follow_up_id:
                return redirect(photo.follow_up)
            return redirect("plan_photos", pk=plan.pk)
        status = 422
        messages.error(request, "The photo was not saved; see the message below.")
    return render(
        request,
        "planner/photos.html",
        {
            "plan": plan,
            "patient": plan.patient,
            "groups": _gallery(plan),
            "form": form,
            "views": PhotoView.choices,
            "can_upload": request.user.has_perm(ADD) and plan.status != PlanStatus.CANCELLED,
        },
        status=status,
    )


def _too_large(request: HttpRequest) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return length > settings.PHOTO_MAX_BYTES + UPLOAD_OVERHEAD_BYTES


def _refuse_too_large(request, plan, follow_ups) -> HttpResponse:
    """Answers before Django reads the body: a 1 GB upload is not spooled to disk first."""
    limit = settings.PHOTO_MAX_BYTES // (1024 * 1024)
    form = PhotoUploadForm(follow_ups=follow_ups)
    messages.error(
        request,
        f"The photo is larger than {limit} MB and was not saved. Export it at a smaller size.",
    )
    return render(
        request,
        "planner/photos.html",
        {
            "plan": plan,
            "patient": plan.patient,
            "groups": _gallery(plan),
            "form": form,
            "views": PhotoView.choices,
            "can_upload": True,
        },
        status=413,
    )


def photo_add(*, plan: TreatmentPlan, form: PhotoUploadForm, actor, request=None) -> Photo:
    clean = form.clean_photo
    name = photos.store(clean, clinic_id=plan.patient.clinic_id)
    try:
        with transaction.atomic():
            photo = Photo.objects.create(
                plan=plan,
                follow_up=form.follow_up(),
                view=form.cleaned_data["view"],
                zone=form.cleaned_data.get("zone")
                if form.cleaned_data["view"] == PhotoView.CLOSE_UP
                else None,
                taken_on=form.cleaned_data["taken_on"],
                file_name=name,
                content_type=clean.content_type,
                width=clean.width,
                height=clean.height,
                size_bytes=len(clean.data),
                sha256=clean.sha256,
                original_format=clean.original_format,
                uploaded_by=actor,
            )
            audit.record(
                actor=actor,
                action=AuditAction.CREATE,
                obj=photo,
                patient=plan.patient,
                request=request,
                changes={
                    "plan": plan.pk,
                    "view": photo.view,
                    "timepoint": photo.timepoint,
                    "sha256": photo.sha256,
                },
            )
    except Exception:
        photos.remove(name)  # no file without its record
        raise
    return photo


@require_GET
@permission_required(VIEW, raise_exception=True)
def photo_file(request: HttpRequest, pk: int) -> HttpResponse:
    photo = followup.get_photo_for_user(request, pk)
    try:
        handle = photos.path_of(photo.file_name).open("rb")
    except (OSError, photos.PhotoRejected):
        raise Http404("The photo file is missing.") from None
    audit.record(
        actor=request.user,
        action=AuditAction.VIEW,
        obj=photo,
        patient=photo.plan.patient,
        request=request,
    )
    response = FileResponse(handle, content_type=photo.content_type)
    extension = "png" if photo.content_type == "image/png" else "jpg"
    response["Content-Disposition"] = f'inline; filename="photo-{photo.pk}.{extension}"'
    response["Cache-Control"] = "no-store, private"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_POST
@permission_required(DELETE, raise_exception=True)
def photo_delete(request: HttpRequest, pk: int) -> HttpResponse:
    photo = followup.get_photo_for_user(request, pk)
    plan_id, name = photo.plan_id, photo.file_name
    with transaction.atomic():
        audit.record(
            actor=request.user,
            action=AuditAction.DELETE,
            obj=photo,
            patient=photo.plan.patient,
            request=request,
            changes={"plan": plan_id, "view": photo.view, "sha256": photo.sha256},
        )
        photo.delete()
        transaction.on_commit(lambda: photos.remove(name))
    messages.success(request, "Photo deleted.")
    return redirect("plan_photos", pk=plan_id)


@require_GET
@permission_required(VIEW, raise_exception=True)
def photo_compare(request: HttpRequest, pk: int) -> HttpResponse:
    """Baseline beside one follow-up, for the same view (and zone, for close-ups)."""
    plan = get_plan_for_user(request, pk)
    follow_ups = list(plan.follow_ups.exclude(status="cancelled").order_by("due_on", "pk"))
    view = request.GET.get("view") or PhotoView.FRONT
    if view not in PhotoView.values:
        view = PhotoView.FRONT
    zone_code = request.GET.get("zone", "")
    zone = TreatmentZone.objects.filter(code=zone_code).first() if zone_code else None
    chosen = next((f for f in follow_ups if str(f.pk) == request.GET.get("with", "")), None)
    if chosen is None:
        with_photos = {p.follow_up_id for p in plan.photos.filter(view=view)}
        candidates = [f for f in follow_ups if f.pk in with_photos]
        chosen = candidates[-1] if candidates else None

    def latest(follow_up):
        photos_ = plan.photos.filter(view=view, follow_up=follow_up)
        if view == PhotoView.CLOSE_UP:
            photos_ = photos_.filter(zone=zone) if zone else photos_.none()
        return photos_.order_by("-taken_on", "-uploaded_at", "-pk").first()

    context = {
        "plan": plan,
        "patient": plan.patient,
        "follow_ups": follow_ups,
        "views": PhotoView.choices,
        "view": view,
        "view_label": PhotoView(view).label,
        "zone": zone,
        "zones": TreatmentZone.objects.filter(active=True),
        "chosen": chosen,
        "baseline": latest(None),
        "later": latest(chosen) if chosen else None,
    }
    return render(request, "planner/photo_compare.html", context)

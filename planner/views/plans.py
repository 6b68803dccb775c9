"""The plan builder: one page, named partials that htmx swaps, plain POST fallbacks."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget, trigger_client_event

from .. import audit, engine, rules, services
from ..access import get_patient_for_user, get_plan_for_user
from ..choices import AuditAction, PlanStatus
from ..forms import AcknowledgementForm, InjectionForm, PlanDetailsForm, VersionForm
from ..jinja import render_block
from ..models import PlannedInjection, TreatmentPlan
from ..selectors import BuilderState, PlanContents, builder_state, plan_contents

# The page is a Django template around the builder; the builder's regions, which htmx swaps,
# are the blocks of a Jinja2 template (planner/jinja.py).
PAGE = "planner/plan_builder.html"
REGIONS = "planner/builder.jinja"
EDIT_PERMISSION = "planner.change_treatmentplan"
LIVE_FIELDS = ("zone", "volume_ml", "instrument", "gauge", "depth", "technique")
# Which form field a rule's message is shown next to while typing.
RULE_FIELD = {
    "ZONE_VOLUME_ABOVE_MAX": "volume_ml",
    "ZONE_VOLUME_BELOW_MIN": "volume_ml",
    "GAUGE_TOO_LARGE_BORE": "gauge",
    "GAUGE_FINER_THAN_RANGE": "gauge",
    "DEPTH_NOT_ALLOWED": "depth",
    "PERIORAL_BELOW_ORBICULARIS": "depth",
    "PERIORAL_TOO_SUPERFICIAL": "depth",
    "TECHNIQUE_NOT_RETROGRADE": "technique",
}


# --- creating plans -------------------------------------------------------------------------


@require_POST
@permission_required("planner.add_treatmentplan", raise_exception=True)
def plan_create(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = get_patient_for_user(request, patient_id)
    plan = services.plan_create(patient=patient, surgeon=request.user, request=request)
    messages.success(request, "New draft plan created.")
    return redirect(plan)


@require_POST
@permission_required("planner.add_treatmentplan", raise_exception=True)
def plan_repeat(request: HttpRequest, pk: int) -> HttpResponse:
    source = get_plan_for_user(request, pk)
    plan = services.plan_repeat(source=source, surgeon=request.user, request=request)
    source_date = date_format(source.planned_for, "j M Y")
    messages.success(request, f"New draft plan created from the plan of {source_date}.")
    return redirect(plan)


# --- the page -------------------------------------------------------------------------------


@require_GET
@permission_required("planner.view_treatmentplan", raise_exception=True)
def plan_builder(request: HttpRequest, pk: int) -> HttpResponse:
    plan = get_plan_for_user(request, pk)
    audit.record(actor=request.user, action=AuditAction.VIEW, obj=plan, request=request)
    return _page(request, builder_state(plan))


def _page(
    request: HttpRequest,
    state: BuilderState,
    *,
    status: int = 200,
    details_form: PlanDetailsForm | None = None,
    injection_form: InjectionForm | None = None,
    notice: str = "",
    kept_edit: dict | None = None,
) -> HttpResponse:
    context = _context(
        request,
        state,
        details_form=details_form,
        injection_form=injection_form,
        notice=notice,
        kept_edit=kept_edit,
    )
    context["builder"] = _region(request, "builder", context)
    return render(request, PAGE, context, status=status)


def _region(request: HttpRequest, name: str, context: dict) -> str:
    return render_block(REGIONS, name, context, request)


def _context(
    request: HttpRequest,
    state: BuilderState,
    *,
    details_form: PlanDetailsForm | None = None,
    injection_form: InjectionForm | None = None,
    notice: str = "",
    **flags,
) -> dict:
    """Everything the builder's regions read; ``flags`` (oob, focus, saved...) override the
    defaults."""
    plan = state.plan
    zone_code = request.GET.get("zone", "")
    can_change_plan = request.user.has_perm(EDIT_PERMISSION)
    return {
        "plan": plan,
        "patient": plan.patient,
        "state": state,
        # Only a draft takes edits (services claim versions of drafts only); a ready plan goes
        # back to draft first, so its page offers no forms that would be refused.
        "editable": plan.status == PlanStatus.DRAFT and can_change_plan,
        "can_change_plan": can_change_plan,
        "can_add_plan": request.user.has_perm("planner.add_treatmentplan"),
        "can_print_consent": request.user.has_perm("planner.print_consent"),
        # Built when a template first reads them: most htmx answers show neither form.
        "details_form": details_form
        or SimpleLazyObject(lambda: PlanDetailsForm(instance=plan, prefix="plan")),
        "injection_form": injection_form
        or SimpleLazyObject(lambda: _new_injection_form(state, zone_code)),
        "notice": notice,
        "transitions": _transitions_for(request, plan),
        "oob": False,  # an out-of-band swap
        "focus": False,  # htmx moves the focus into the swapped region
        "saved": False,
        "page_version": None,  # the version of the page a fragment is fetched into
        "kept_edit": None,  # an edit refused by a conflict: {"injection_id", "form"} as typed
        **flags,
    }


def _new_injection_form(state: BuilderState, zone_code: str = "") -> InjectionForm:
    initial = {"instrument": "needle", "gauge": 27, "depth": "dermis", "technique": "retrograde"}
    chosen = any(zone.code == zone_code and zone.active for zone in state.zones)
    if chosen:
        initial["zone"] = zone_code
    form = InjectionForm(prefix="new", initial=initial)
    if chosen:
        # Opened from the face map: the zone is chosen, the volume comes next.
        form.fields["volume_ml"].widget.attrs["data-focus-after-swap"] = ""
    return form


def _transitions_for(request: HttpRequest, plan: TreatmentPlan) -> list[tuple[str, str]]:
    if not request.user.has_perm(EDIT_PERMISSION):
        return []
    labels = {
        PlanStatus.READY: "Mark ready for consent",
        PlanStatus.DRAFT: "Return to draft",
        PlanStatus.CANCELLED: "Cancel plan",
    }
    return [
        (target, labels[target])
        for target, sources in services.TRANSITIONS.items()
        if plan.status in sources
    ]


def _partials(request: HttpRequest, state: BuilderState, names: tuple[str, ...], **extra) -> str:
    """Renders regions of the builder; all but the first are out-of-band swaps."""
    all_oob = extra.pop("all_oob", False)
    context = _context(request, state, **extra)
    parts = []
    for index, name in enumerate(names):
        context["oob"] = index > 0 or all_oob
        parts.append(_region(request, name, context))
    return "".join(parts)


def _htmx_update(
    request: HttpRequest, state: BuilderState, names: tuple[str, ...], *, status: int = 200, **extra
) -> HttpResponse:
    response = HttpResponse(_partials(request, state, names, **extra), status=status)
    return trigger_client_event(response, "plan-version", {"version": state.plan.version})


def _conflict(
    request: HttpRequest, plan_id: int, message: str, *, status: int = 409, **kept
) -> HttpResponse:
    """The change was refused: show why, with the plan as it stands now. ``kept`` holds the
    refused form (``details_form``, ``injection_form`` or ``kept_edit``) so that what was typed
    is shown again, ready to be checked against the current plan and sent once more."""
    plan = get_plan_for_user(request, plan_id)
    state = builder_state(plan)
    if request.htmx:
        response = HttpResponse(
            _partials(request, state, ("builder",), notice=message, **kept), status=status
        )
        response = retarget(response, "#builder")
        return reswap(response, "outerHTML")
    return _page(request, state, status=status, notice=message, **kept)


def _expected_version(request: HttpRequest) -> int | None:
    form = VersionForm(request.POST)
    return form.cleaned_data["version"] if form.is_valid() else None


def _page_version(request: HttpRequest) -> int | None:
    """The version of the page an htmx fragment is fetched into (sent by hx-include).

    Forms inside the fragment must carry it, not the plan's current version: otherwise a click
    in a stale tab would quietly refresh one form's version and its write would be accepted.
    """
    form = VersionForm(request.GET)
    return form.cleaned_data["version"] if form.is_valid() else None


def _after_write(
    request: HttpRequest, plan: TreatmentPlan, names: tuple[str, ...], message: str, **extra
) -> HttpResponse:
    if not request.htmx:
        messages.success(request, message)
        return redirect(plan)
    # The service's version claim (and, for the details, the form's save) left ``plan`` holding
    # what it wrote: nothing to read back.
    return _htmx_update(request, builder_state(plan), names, **extra)


# --- plan details ---------------------------------------------------------------------------


@require_POST
@permission_required(EDIT_PERMISSION, raise_exception=True)
def plan_details_update(request: HttpRequest, pk: int) -> HttpResponse:
    plan = get_plan_for_user(request, pk)
    version = _expected_version(request)
    if version is None:
        return _conflict(
            request, pk, "The page did not send the plan version; nothing was saved.", status=400
        )
    form = PlanDetailsForm(request.POST, instance=plan, prefix="plan")
    if not form.is_valid():
        state = builder_state(get_plan_for_user(request, pk))
        if request.htmx:
            # The form goes back into the page it came from: with that page's version.
            body = _partials(
                request, state, ("plan_details",), details_form=form, page_version=version
            )
            return HttpResponse(body, status=422)
        return _page(request, state, status=422, details_form=form)
    try:
        plan = services.plan_update_details(
            plan=plan, form=form, expected_version=version, actor=request.user, request=request
        )
    except (services.PlanConflict, services.PlanLocked) as refusal:
        return _conflict(request, pk, str(refusal), details_form=form)
    return _after_write(
        request,
        plan,
        # The page's heading names the session date.
        ("plan_details", "findings", "workflow", "face_map", "plan_heading"),
        "Plan details saved.",
        saved=True,
    )


# --- injections -----------------------------------------------------------------------------


# What the injection views read of a plan besides its own fields: its patient, whom the audit
# entry names (the full page, shown only without htmx, loads the rest when it needs it).
INJECTION_RELATED = ("patient",)


def _injection_for(plan: TreatmentPlan, injection_id: int) -> PlannedInjection:
    """An injection of this plan; another plan's injection id is a 404."""
    return get_object_or_404(
        PlannedInjection.objects.select_related("zone"), pk=injection_id, plan=plan
    )


@require_GET
@permission_required(EDIT_PERMISSION, raise_exception=True)
def injection_new(request: HttpRequest, pk: int) -> HttpResponse:
    """The add-injection form, opened for a zone clicked on the face map."""
    plan = get_plan_for_user(request, pk)
    if not plan.is_editable:
        return _conflict(request, pk, services.locked_message(plan.status))
    state = builder_state(plan)
    if request.htmx:
        return HttpResponse(
            _partials(
                request,
                state,
                ("injection_form",),
                focus=True,
                page_version=_page_version(request),
            )
        )
    return _page(request, state)


@require_POST
@permission_required(EDIT_PERMISSION, raise_exception=True)
def injection_create(request: HttpRequest, pk: int) -> HttpResponse:
    plan = get_plan_for_user(request, pk, related=INJECTION_RELATED)
    form = InjectionForm(request.POST, prefix="new")
    return _save_injection(request, plan, form)


@require_http_methods(["GET", "POST"])
@permission_required(EDIT_PERMISSION, raise_exception=True)
def injection_edit(request: HttpRequest, pk: int, injection_id: int) -> HttpResponse:
    plan = get_plan_for_user(request, pk, related=INJECTION_RELATED)
    if request.method == "POST":
        return _edit_injection(request, plan, injection_id)
    injection = _injection_for(plan, injection_id)
    form = InjectionForm(
        instance=injection, prefix=f"inj{injection.pk}", initial={"zone": injection.zone.code}
    )
    state = builder_state(plan)
    if request.htmx:
        return HttpResponse(
            _edit_row(request, state, injection, form, page_version=_page_version(request))
        )
    return _edit_page(request, state, injection, form)


def _edit_injection(request: HttpRequest, plan: TreatmentPlan, injection_id: int) -> HttpResponse:
    """Saves a changed injection. The plan's injections and zones are read once, before the
    save: the form takes the injection and its zone from them, and the answer reviews them with
    the change applied (the version claim refuses the save if anything changed meanwhile)."""
    contents = plan_contents(plan)
    injection = contents.injection(injection_id)
    if injection is None:
        raise Http404("No such injection in this plan.")
    form = InjectionForm(
        request.POST,
        instance=injection,
        prefix=f"inj{injection.pk}",
        zones=contents.active_zones_by_code(),
    )
    return _save_injection(request, plan, form, injection=injection, contents=contents)


def _save_injection(
    request: HttpRequest,
    plan: TreatmentPlan,
    form: InjectionForm,
    injection: PlannedInjection | None = None,
    contents: PlanContents | None = None,
) -> HttpResponse:
    # The form edits the injection in place when it validates: note the zone it leaves first.
    left_zone = injection.zone.code if injection else None
    version = _expected_version(request)
    if version is None:
        return _conflict(
            request,
            plan.pk,
            "The page did not send the plan version; nothing was saved.",
            status=400,
        )
    if not form.is_valid():
        return _invalid_injection(request, plan, form, injection, version)
    try:
        saved = services.injection_save(
            plan=plan, form=form, expected_version=version, actor=request.user, request=request
        )
    except (services.PlanConflict, services.PlanLocked) as refusal:
        kept = (
            {"injection_form": form}
            if injection is None
            else {"kept_edit": {"injection_id": injection.pk, "form": form}}
        )
        return _conflict(request, plan.pk, str(refusal), **kept)
    if not request.htmx:
        messages.success(request, f"Injection in {saved.zone.name} saved.")
        return redirect(plan)
    # The save wrote the plan's version and rule set and left the plan object holding them, and
    # the form changed the injection in ``contents`` in place.
    state = builder_state(plan, rule_set=plan.rule_set, contents=contents)
    row = _region(
        request,
        "injection_row",
        _context(
            request,
            state,
            row=state.row(saved.pk),
            focus=injection is not None,
            oob=injection is not None,
        ),
    )
    # Table rows cannot stand alone in a response, so they travel in a <template>, and every
    # region is an out-of-band swap: a new row is appended, an edited row replaced.
    wrapper = (
        '<template><tbody hx-swap-oob="beforeend:#injection-rows">{}</tbody></template>'
        if injection is None
        else "<template>{}</template>"
    )
    # Of the face map, only the zones the change touched: no other zone's total or findings can
    # have changed (every rule concerns one injection or one zone).
    zones = {saved.zone.code, left_zone} - {None}
    regions = ("face_map_zones", "zone_totals", "findings", "workflow")
    extra = {"zone_views": [view for view in state.zone_views if view.zone.code in zones]}
    if injection is None:
        # A fresh add form, ready for the next zone (an edit leaves the add form as typed).
        regions = ("injection_form", *regions)
        extra["injection_form"] = _new_injection_form(state)
        extra["injection_form"].fields["zone"].widget.attrs["data-focus-after-swap"] = ""
    body = (
        wrapper.format(row)
        + _zone_rows(request, state, zones, exclude=saved.pk)
        + _partials(request, state, regions, all_oob=True, **extra)
    )
    response = reswap(HttpResponse(body), "none")
    return trigger_client_event(response, "plan-version", {"version": plan.version})


def _zone_rows(
    request: HttpRequest, state: BuilderState, zones: set[str], *, exclude: int | None = None
) -> str:
    """The other rows of the zones a change touched: their zone findings may have changed."""
    rows = [
        row
        for row in state.rows
        if row.injection.zone.code in zones and row.injection.pk != exclude
    ]
    if not rows:
        return ""
    context = _context(request, state, oob=True)
    return (
        "<template>"
        + "".join(_region(request, "injection_row", {**context, "row": row}) for row in rows)
        + "</template>"
    )


def _invalid_injection(
    request: HttpRequest,
    plan: TreatmentPlan,
    form: InjectionForm,
    injection: PlannedInjection | None,
    version: int,
) -> HttpResponse:
    state = builder_state(plan)
    if request.htmx:
        # The fragment goes back into the page it came from: with that page's version.
        if injection is None:
            body = _region(
                request,
                "injection_form",
                _context(request, state, injection_form=form, page_version=version),
            )
            response = HttpResponse(body, status=422)
            return reswap(retarget(response, "#injection-form"), "outerHTML")
        body = _edit_row(request, state, injection, form, page_version=version)
        return HttpResponse(body, status=422)
    if injection is None:
        return _page(request, state, status=422, injection_form=form)
    return _edit_page(request, state, injection, form, status=422)


def _edit_row(
    request: HttpRequest,
    state: BuilderState,
    injection: PlannedInjection,
    form: InjectionForm,
    *,
    page_version: int | None = None,
) -> str:
    context = _context(
        request, state, row=state.row(injection.pk), form=form, page_version=page_version
    )
    return _region(request, "injection_edit_row", context)


def _edit_page(
    request: HttpRequest,
    state: BuilderState,
    injection: PlannedInjection,
    form: InjectionForm,
    *,
    status: int = 200,
) -> HttpResponse:
    """The edit form on a page of its own, for a browser without JavaScript."""
    context = {
        "plan": state.plan,
        "row": state.row(injection.pk),
        "edit_row": _edit_row(request, state, injection, form),
    }
    return render(request, "planner/injection_edit.html", context, status=status)


@require_GET
@permission_required("planner.view_treatmentplan", raise_exception=True)
def injection_row(request: HttpRequest, pk: int, injection_id: int) -> HttpResponse:
    """The read-only row again (cancelling an edit)."""
    plan = get_plan_for_user(request, pk)
    injection = _injection_for(plan, injection_id)
    state = builder_state(plan)
    if not request.htmx:
        return redirect(plan)
    context = _context(
        request,
        state,
        page_version=_page_version(request),
        row=state.row(injection.pk),
        focus=True,
    )
    return HttpResponse(_region(request, "injection_row", context))


@require_POST
@permission_required(EDIT_PERMISSION, raise_exception=True)
def injection_delete(request: HttpRequest, pk: int, injection_id: int) -> HttpResponse:
    plan = get_plan_for_user(request, pk, related=INJECTION_RELATED)
    injection = _injection_for(plan, injection_id)
    version = _expected_version(request)
    if version is None:
        return _conflict(
            request, pk, "The page did not send the plan version; nothing was deleted.", status=400
        )
    try:
        services.injection_delete(
            plan=plan,
            injection=injection,
            expected_version=version,
            actor=request.user,
            request=request,
        )
    except (services.PlanConflict, services.PlanLocked) as refusal:
        return _conflict(request, pk, str(refusal))
    if not request.htmx:
        messages.success(request, f"Injection in {injection.zone.name} deleted.")
        return redirect(plan)
    plan.refresh_from_db(fields=["version", "status", "rule_set", "updated_at"])
    state = builder_state(plan)
    # The row's target is replaced with nothing; the rest follows out of band.
    body = _zone_rows(request, state, {injection.zone.code}) + _partials(
        request, state, ("face_map", "zone_totals", "findings", "workflow"), all_oob=True
    )
    response = HttpResponse(body)
    return trigger_client_event(response, "plan-version", {"version": plan.version})


@require_POST
@permission_required(EDIT_PERMISSION, raise_exception=True)
def injection_validate(request: HttpRequest, pk: int) -> HttpResponse:
    """Live validation while typing: field errors and rule findings, nothing saved."""
    plan = get_plan_for_user(request, pk, related=())  # the plan's own fields are enough
    injection_id = request.POST.get("injection_id", "")
    existing = None
    if injection_id:
        if not injection_id.isdigit():
            return HttpResponse("Unknown injection.", status=400)
        existing = _injection_for(plan, int(injection_id))
    prefix = f"inj{existing.pk}" if existing else "new"
    form = InjectionForm(request.POST, prefix=prefix, instance=existing)
    feedback = _live_feedback(plan, form, existing)
    context = {"prefix": prefix, "fields": [(name, feedback[name]) for name in LIVE_FIELDS]}
    return HttpResponse(_region(request, "live_feedback", context))


def _live_feedback(
    plan: TreatmentPlan, form: InjectionForm, existing: PlannedInjection | None
) -> dict[str, list[tuple[str, str, str, str]]]:
    """Per field: (severity, rule code, message, citation) tuples; field errors have no rule."""
    feedback: dict[str, list[tuple[str, str, str, str]]] = {name: [] for name in LIVE_FIELDS}
    form.is_valid()
    for name in LIVE_FIELDS:
        for error in form.errors.get(name, []):
            feedback[name].append(("error", "", error, ""))
    if any(form.errors.get(name) for name in LIVE_FIELDS):
        return feedback
    candidate = form.instance
    candidate.zone = form.cleaned_data["zone"]
    # Each rule shown next to a field (RULE_FIELD) concerns one injection or its zone's total, so
    # the other injections of the candidate's zone are all the check needs, however big the plan.
    others = engine.stored_injection_inputs(
        plan, exclude=existing.pk if existing else None, zone_id=candidate.zone.pk
    )
    findings = rules.evaluate(
        engine.plan_input(plan, [*others, candidate]),
        engine.snapshot_for(engine.rule_set_for(plan)),
    )
    index = len(others)
    for finding in findings:
        concerns_candidate = finding.injection == index or (
            finding.injection is None and finding.zone == candidate.zone.code
        )
        if concerns_candidate and finding.rule in RULE_FIELD:
            feedback[RULE_FIELD[finding.rule]].append(
                (finding.severity.value, finding.rule, finding.message, finding.citation)
            )
    return feedback


# --- warnings and workflow ------------------------------------------------------------------


@require_POST
@permission_required(EDIT_PERMISSION, raise_exception=True)
def warning_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    plan = get_plan_for_user(request, pk)
    version = _expected_version(request)
    form = AcknowledgementForm(request.POST)
    review = engine.review_plan(plan)
    by_key = {review.key(finding): finding for finding in review.warnings}
    if version is None:
        return _conflict(
            request, pk, "The page did not send the plan version; nothing was saved.", status=400
        )
    if not form.is_valid() or form.cleaned_data["finding_key"] not in by_key:
        message = (
            "That warning no longer applies to the plan."
            if form.is_valid()
            else "; ".join(error for errors in form.errors.values() for error in errors)
        )
        return _conflict(request, pk, f"Acknowledgement not saved: {message}", status=422)
    key = form.cleaned_data["finding_key"]
    try:
        services.warning_acknowledge(
            plan=plan,
            finding_key=key,
            finding=by_key[key],
            reason=form.cleaned_data["reason"],
            expected_version=version,
            actor=request.user,
            request=request,
        )
    except (services.PlanConflict, services.PlanLocked) as refusal:
        return _conflict(request, pk, str(refusal))
    return _after_write(request, plan, ("findings", "workflow"), "Warning acknowledged.")


@require_POST
@permission_required(EDIT_PERMISSION, raise_exception=True)
def plan_transition(request: HttpRequest, pk: int) -> HttpResponse:
    plan = get_plan_for_user(request, pk)
    version = _expected_version(request)
    target = request.POST.get("target", "")
    if version is None:
        return _conflict(
            request, pk, "The page did not send the plan version; nothing changed.", status=400
        )
    try:
        services.plan_transition(
            plan=plan, target=target, expected_version=version, actor=request.user, request=request
        )
    except services.PlanConflict as refusal:
        return _conflict(request, pk, str(refusal))
    except (services.PlanLocked, services.TransitionRefused) as refusal:
        return _conflict(request, pk, str(refusal), status=422)
    label = PlanStatus(target).label.lower()
    if request.htmx:
        # The whole page changes shape (read-only or editable): reload it.
        messages.success(request, f"Plan is now {label}.")
        return HttpResponseClientRedirect(reverse("plan_builder", args=[pk]))
    messages.success(request, f"Plan is now {label}.")
    return redirect(plan)

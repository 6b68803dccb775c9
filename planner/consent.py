"""The consent and procedure sheet: what it shows, when it may be signed, and the signature.

Reads build one context for the template ``planner/consent/sheet.html`` (the same template
serves the PDF and the browser's print preview); the write records the signature, with the
exact PDF that was signed, in one transaction with the plan's move to ``consented``.
"""

import base64
import functools
import hashlib
from dataclasses import dataclass, field
from datetime import date
from xml.etree import ElementTree

from django.db import transaction
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.utils import timezone
from django.utils.formats import date_format

from . import audit, engine, pdf, rules
from .choices import (
    AuditAction,
    Combination,
    Depth,
    DonorSite,
    Goal,
    Indication,
    Instrument,
    PlanStatus,
    Technique,
)
from .models import AuditEntry, ConsentRecord, ConsentText, TreatmentPlan, User
from .models_consent import ConsentTextKey
from .selectors import BuilderState, builder_state
from .services import PlanConflict, claim_version

TEMPLATE = "planner/consent/sheet.html"
PRINT_CSS = "planner/print.css"
#: The builder's face outline; the sheet draws the same outline.
FACE_OUTLINE = "planner/partials/face_outline.svg"
# Replaced by the document id once the sheet is rendered: the id is a digest of the sheet itself.
_ID_PLACEHOLDER = "NF-DOCID-PLACEHOLDER"


class ConsentRefused(Exception):
    """The plan cannot be signed now; the message says why (shown to the user)."""

    #: The form field the refusal is about, if any (the page shows the message beside it).
    field: str | None = None


class SignedSheetMismatch(ConsentRefused):
    """The paper the patient signed is not the plan's current sheet."""

    field = "document_id"


class SigningDateRefused(ConsentRefused):
    """The signing date is before the signed sheet could have existed."""

    field = "signed_on"


@dataclass
class SheetState:
    plan: TreatmentPlan
    builder: BuilderState
    texts: dict[str, ConsentText]
    blockers: list[str] = field(default_factory=list)  # why it cannot be signed

    @property
    def signable(self) -> bool:
        return not self.blockers


def sheet_state(plan: TreatmentPlan) -> SheetState:
    """Everything the sheet shows, and the reasons (if any) it cannot be printed for signature."""
    review = engine.review_plan(plan, finalising=True)
    builder = builder_state(plan, review)
    texts = ConsentText.current()
    return SheetState(plan, builder, texts, _blockers(plan, builder, texts))


def _blockers(plan: TreatmentPlan, builder: BuilderState, texts: dict) -> list[str]:
    reasons = []
    if plan.status == PlanStatus.DRAFT:
        reasons.append("The plan is a draft: the surgeon marks it ready for consent first.")
    elif plan.status != PlanStatus.READY:
        reasons.append(f"The plan is {plan.get_status_display().lower()}.")
    errors = builder.review.errors
    if errors:
        reasons.append(
            f"{len(errors)} error finding(s) stand: " + ", ".join(f.rule for f in errors) + "."
        )
    if builder.open_warnings:
        reasons.append(f"{builder.open_warnings} warning(s) are not acknowledged by the surgeon.")
    if plan.harvest_volume_ml is None:
        reasons.append("The harvest volume is not recorded: the surgeon enters it in the plan.")
    in_force = builder.review.rule_set
    if plan.status == PlanStatus.READY and plan.rule_set_id != in_force.pk:
        reasons.append(
            f"The reference values changed (rule set v{in_force.version} is now in force): the "
            "surgeon must review the plan and mark it ready again."
        )
    missing = [key.label for key in ConsentTextKey if key not in texts]
    if missing:
        reasons.append("Consent wording is missing: " + ", ".join(missing) + ".")
    return reasons


# --- the template's context ---------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    label: str
    value: str
    citation: str


def _facts(snapshot: rules.ReferenceSnapshot) -> list[Fact]:
    """The documented technique, printed from the rule set (not editable wording)."""

    def depths(choice: rules.Choice) -> str:
        return ", ".join(label for code, label in Depth.choices if code in choice.values)

    def techniques(choice: rules.Choice) -> str:
        chosen = [label.lower() for code, label in Technique.choices if code in choice.values]
        return ", ".join(chosen)

    return [
        Fact(
            "Volume per treatment zone",
            rules.format_range(snapshot.zone_volume_ml),
            rules.citation(snapshot.zone_volume_ml.sources),
        ),
        Fact(
            "Instrument",
            f"needle {rules.format_range(snapshot.needle_gauge)} or cannula "
            f"{rules.format_range(snapshot.cannula_gauge)}",
            rules.citation(
                dict.fromkeys(snapshot.needle_gauge.sources + snapshot.cannula_gauge.sources)
            ),
        ),
        Fact(
            "Depth",
            depths(snapshot.allowed_depths),
            rules.citation(snapshot.allowed_depths.sources),
        ),
        Fact(
            "Around the mouth",
            "above the orbicularis oris muscle",
            rules.citation(snapshot.perioral_forbidden_depths.sources),
        ),
        Fact(
            "Technique",
            techniques(snapshot.recommended_techniques),
            rules.citation(snapshot.recommended_techniques.sources),
        ),
    ]


def _label(choices, value: str) -> str:
    try:
        return choices(value).label
    except ValueError:
        return value


def _rows(builder: BuilderState) -> list[dict]:
    numbers = {row.injection.pk: index for index, row in enumerate(builder.rows, start=1)}
    rows = []
    for row in builder.rows:
        injection = row.injection
        rows.append(
            {
                "number": numbers[injection.pk],
                "zone": injection.zone.name,
                "zone_code": injection.zone.code,
                "volume": injection.volume_ml,
                "instrument": f"{_label(Instrument, injection.instrument)} {injection.gauge} G",
                "depth": _label(Depth, injection.depth),
                "technique": _label(Technique, injection.technique),
                "notes": injection.notes,
            }
        )
    return rows


def _acknowledged(builder: BuilderState) -> list[dict]:
    numbers = {row.injection.pk: index for index, row in enumerate(builder.rows, start=1)}
    zone_names = {zone.code: zone.name for zone in builder.zones}
    items = []
    for view in builder.findings:
        if view.acknowledgement is None:
            continue
        ack = view.acknowledgement
        title, message = rules.in_plain_words(view.finding, zone_names)
        items.append(
            {
                "title": title,
                "message": message,
                "citation": view.finding.citation,
                "injection": numbers.get(view.injection.pk) if view.injection else None,
                "reason": ack.reason,
                "by": ack.acknowledged_by.display_name,
                "at": ack.acknowledged_at,
            }
        )
    return items


def _indications(plan: TreatmentPlan, snapshot: rules.ReferenceSnapshot) -> list[dict]:
    documented = snapshot.documented_indications.values
    return [
        {"label": _label(Indication, code), "documented": code in documented}
        for code in plan.indications or ()
    ]


@functools.cache
def face_outline_path() -> str:
    """The builder's face outline as the data of one SVG path.

    The outline is some thirty paths and circles of one stroke style; drawn as one path, the
    renderer handles one element instead of thirty (every SVG element costs it as much as a
    table cell) and the picture is the same.
    """
    outline = ElementTree.fromstring(render_to_string(FACE_OUTLINE))  # noqa: S314  (our own file)
    parts = []
    for element in outline.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "path":
            parts.append(element.get("d", "").strip())
        elif tag in ("circle", "ellipse"):
            cx, cy = float(element.get("cx", 0)), float(element.get("cy", 0))
            rx = float(element.get("rx", element.get("r", 0)))
            ry = float(element.get("ry", element.get("r", 0)))
            parts.append(
                f"M{cx - rx:g} {cy:g}a{rx:g} {ry:g} 0 1 0 {2 * rx:g} 0"
                f"a{rx:g} {ry:g} 0 1 0 {-2 * rx:g} 0Z"
            )
        elif tag == "line":
            x1, y1, x2, y2 = (float(element.get(name, 0)) for name in ("x1", "y1", "x2", "y2"))
            parts.append(f"M{x1:g} {y1:g}L{x2:g} {y2:g}")
        elif tag not in ("g", "title", "desc"):
            raise ValueError(f"{FACE_OUTLINE}: no single-path form for <{tag}>")
    return " ".join(parts)


def _face_map(builder: BuilderState) -> dict:
    """The face map's planned zones as one hatched path, their label boxes as one path."""
    planned = [view for view in builder.zone_views if view.total]
    return {
        "outline": face_outline_path(),
        "zones": " ".join(view.zone.shape.strip() for view in planned),
        "boxes": "".join(
            f"M{view.zone.label_x - 20} {view.zone.label_y - 13}h40v25h-40Z" for view in planned
        ),
        "labels": [
            {
                "x": view.zone.label_x,
                "y": view.zone.label_y,
                "code": view.zone.short_label,
                "total": view.total,
            }
            for view in planned
        ],
    }


def sheet_context(state: SheetState, *, for_pdf: bool, preview: bool = False) -> dict:
    plan, builder = state.plan, state.builder
    patient = plan.patient
    snapshot = engine.snapshot_for(builder.review.rule_set)
    plan_input = engine.plan_input(plan, builder.review.injections)
    blocks = [
        state.texts[key]
        for key in ConsentTextKey
        if key in state.texts
        and key != ConsentTextKey.DECLARATION
        and (key != ConsentTextKey.COMBINATION or plan.combination != Combination.NONE)
    ]
    return {
        "for_pdf": for_pdf,
        "preview": preview,
        "stylesheet": PRINT_CSS if for_pdf else static(PRINT_CSS),
        "draft": not state.signable,
        "blockers": state.blockers,
        "document_id": _ID_PLACEHOLDER,
        "plan": plan,
        "patient": patient,
        "clinic": patient.clinic,
        "surgeon": plan.surgeon,
        "rule_set": builder.review.rule_set,
        "goal": _label(Goal, plan.goal),
        "indications": _indications(plan, snapshot),
        "combination": (
            _label(Combination, plan.combination) if plan.combination != Combination.NONE else ""
        ),
        "donor_site": _label(DonorSite, plan.donor_site),
        "flags": [
            ("Takes anticoagulants or antiplatelets", patient.on_anticoagulants),
            ("Smoker", patient.smoker),
            ("Active skin infection in a treatment area", patient.active_skin_infection),
            ("Pregnant or breastfeeding", patient.pregnant_or_breastfeeding),
        ],
        "rows": _rows(builder),
        "zone_totals": builder.zone_totals,
        "face_map": _face_map(builder),
        "total_ml": builder.review.total_ml,
        "acknowledged": _acknowledged(builder),
        "open_warnings": builder.open_warnings,
        "error_count": len(builder.review.errors),
        "advice": rules.advice(plan_input, snapshot),
        "facts": _facts(snapshot),
        "blocks": blocks,
        "declaration": state.texts.get(ConsentTextKey.DECLARATION),
        "text_versions": text_versions(state),
        "signers": [
            ("Patient", patient.name),
            ("Surgeon", plan.surgeon.display_name),
            ("Witness", ""),
        ],
    }


def text_versions(state: SheetState) -> dict[str, int]:
    return {key: text.version for key, text in sorted(state.texts.items())}


def document_id_for(html: str) -> str:
    """A short id that is a digest of the sheet: the same content always has the same id."""
    digest = hashlib.sha256(html.encode()).digest()
    code = base64.b32encode(digest).decode()[:10]
    return f"NF-{code[:5]}-{code[5:]}"


def render_html(state: SheetState, *, for_pdf: bool, request=None, **extra) -> tuple[str, str]:
    """The sheet as HTML, and its document id."""
    context = sheet_context(state, for_pdf=for_pdf, preview=not for_pdf) | extra
    # The id is computed from the PDF form of the sheet, so preview and PDF show the same id.
    pdf_html = render_to_string(TEMPLATE, sheet_context(state, for_pdf=True))
    document_id = document_id_for(pdf_html)
    html = pdf_html if for_pdf else render_to_string(TEMPLATE, context, request=request)
    return html.replace(_ID_PLACEHOLDER, document_id), document_id


def render_sheet_pdf(state: SheetState) -> tuple[bytes, str]:
    """The sheet as PDF bytes (in the renderer's child process, within the time limit)."""
    html, document_id = render_html(state, for_pdf=True)
    return pdf.render_pdf(html).pdf, document_id


# --- the signature -----------------------------------------------------------------------------


def record_consent(
    *,
    plan: TreatmentPlan,
    expected_version: int,
    signed_document_id: str,
    signed_on: date,
    witness_name: str,
    actor: User,
    request=None,
) -> ConsentRecord:
    """Stores the signed sheet and moves the plan to ``consented``, or raises.

    ``signed_document_id`` is the id printed on the paper the patient signed: the consent is
    recorded only if it is the plan's current sheet, so a sheet printed before a change is
    never stored as signed. The PDF is made before the transaction (it takes a moment and needs
    no lock) from the plan as the user saw it; the conditional version claim inside the
    transaction then guarantees that nothing changed since, or refuses with ``PlanConflict``.
    """
    if plan.version != expected_version:
        raise PlanConflict(
            "This plan was changed since you opened this page. The consent was not recorded; "
            "check the current sheet and record it again."
        )
    state = sheet_state(plan)
    if not state.signable:
        raise ConsentRefused("The plan cannot be signed now: " + " ".join(state.blockers))
    html, document_id = render_html(state, for_pdf=True)
    check_signed_sheet(plan, document_id, signed_document_id, signed_on)
    pdf_bytes = pdf.render_pdf(html).pdf
    with transaction.atomic():
        claim_version(
            plan,
            expected_version,
            allowed=(PlanStatus.READY,),
            status=PlanStatus.CONSENTED,
            rule_set=state.builder.review.rule_set,
        )
        record = ConsentRecord.objects.create(
            plan=plan,
            patient_signed=True,
            signed_on=signed_on,
            witness_name=witness_name,
            recorded_by=actor,
            plan_version=expected_version,
            rule_set=state.builder.review.rule_set,
            consent_text_versions=text_versions(state),
            document_id=document_id,
            pdf=pdf_bytes,
            sha256=hashlib.sha256(pdf_bytes).hexdigest(),
        )
        audit.record(
            actor=actor,
            action=AuditAction.CONSENT,
            obj=plan,
            request=request,
            changes={
                "status": [PlanStatus.READY, PlanStatus.CONSENTED],
                "signed_on": signed_on.isoformat(),
                "document_id": document_id,
                "sha256": record.sha256,
                "signed_version": expected_version,
            },
        )
    return record


def current_document_id(plan: TreatmentPlan) -> str:
    """The id of the sheet the plan would print now."""
    return render_html(sheet_state(plan), for_pdf=True)[1]


def check_signed_sheet(
    plan: TreatmentPlan, document_id: str, signed_document_id: str, signed_on: date
) -> None:
    """Refuses a signature on any sheet but ``document_id``, or dated before that sheet was
    first printed (before the plan's last change if it was never downloaded, e.g. printed
    from the browser's preview)."""
    if signed_document_id != document_id:
        raise SignedSheetMismatch(
            f"The signed sheet is document {signed_document_id}, but this plan's sheet is now "
            f"{document_id}: the plan, the patient's details or the wording changed after that "
            "sheet was printed. Nothing was recorded. Print the current sheet and have it signed."
        )
    first_print = (
        AuditEntry.objects.filter(
            clinic_id=plan.patient.clinic_id,  # the audit's (clinic, at) index
            action=AuditAction.PRINT,
            object_type=TreatmentPlan._meta.model_name,
            object_id=str(plan.pk),
            changes__document_id=document_id,
        )
        .order_by("at")
        .values_list("at", flat=True)
        .first()
    )
    earliest = timezone.localdate(first_print or plan.updated_at)
    if signed_on < earliest:
        since = "was first printed" if first_print else "shows the plan as it has been since"
        raise SigningDateRefused(
            f"Check the signing date: document {document_id} {since} "
            f"{date_format(earliest, 'j F Y')}, "
            "so it cannot have been signed before that day."
        )

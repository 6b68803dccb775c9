"""The operative record: the second document of the procedure sheet, made once the session is
performed. Planned versus performed per zone, the processing record with its lots, the
deviations with their reasons, adverse events, addenda. Rendered by the same hardened renderer
as the consent sheet."""

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.template.loader import render_to_string

from . import pdf
from .choices import PlanStatus
from .consent import PRINT_CSS, document_id_for
from .models import TreatmentPlan
from .procedure import ProcedureState, procedure_state

TEMPLATE = "planner/consent/operative_record.html"


@dataclass(frozen=True)
class ZoneComparison:
    code: str
    name: str
    planned_ml: Decimal
    performed_ml: Decimal
    reason: str

    @property
    def differs(self) -> bool:
        return bool(self.reason) or self.planned_ml != self.performed_ml


def zone_comparison(state: ProcedureState, reasons: dict[str, str]) -> list[ZoneComparison]:
    planned: dict[str, Decimal] = defaultdict(Decimal)
    performed: dict[str, Decimal] = defaultdict(Decimal)
    names: dict[str, str] = {}
    for injection in state.planned:
        planned[injection.zone.code] += injection.volume_ml
        names[injection.zone.code] = injection.zone.name
    for injection in state.performed:
        performed[injection.zone.code] += injection.volume_ml
        names[injection.zone.code] = injection.zone.name
    return [
        ZoneComparison(
            code, names[code], planned[code], performed[code], reasons.get(f"zone:{code}", "")
        )
        for code in sorted(names)
    ]


def operative_context(plan: TreatmentPlan) -> dict:
    state = procedure_state(plan)
    outcome = getattr(plan, "outcome", None)
    reasons = outcome.deviation_reasons if outcome else {}
    return {
        "document_title": "Nanofat operative record",
        "stylesheet": PRINT_CSS,
        "for_pdf": True,
        "plan": plan,
        "patient": plan.patient,
        "clinic": plan.patient.clinic,
        "state": state,
        "outcome": outcome,
        "zones": zone_comparison(state, reasons),
        "deviations": [(d, reasons.get(d.key, "")) for d in state.deviations],
        "addenda": list(plan.addenda.select_related("author")),
        "rule_set": plan.rule_set,
        "document_id": "NF-DOCID-PLACEHOLDER",
    }


def render_operative_pdf(plan: TreatmentPlan) -> bytes:
    if plan.status != PlanStatus.PERFORMED:
        raise ValueError("The operative record exists once the session is performed.")
    html = render_to_string(TEMPLATE, operative_context(plan))
    html = html.replace("NF-DOCID-PLACEHOLDER", document_id_for(html))
    return pdf.render_pdf(html).pdf

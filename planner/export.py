"""The clinic audit CSV: plans, zones, volumes, instruments, depths, findings, acknowledged
warnings, adverse events and outcome scores, one record per row.

Each row has a ``record`` column saying what it is (``plan``, ``injection``, ``finding``,
``acknowledged_warning``, ``session_adverse_events``, ``follow_up``, ``adverse_event``) and
the plan's columns repeated, so a spreadsheet filter on ``record`` gives one table each.

Patients appear under a pseudonym, ``P-`` and the first 12 hex digits of an HMAC-SHA256 of the
patient id keyed with the project's SECRET_KEY: the same patient has the same pseudonym in every
export (so audits can follow a patient over time), nobody without the key can recompute it from
an id, and rotating SECRET_KEY changes every pseudonym. Names and chart numbers are added only
for an identifiable export an admin asks for (with a reason; audited by the caller).

Every cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed
with ``'`` so a spreadsheet never runs it as a formula (CSV injection).
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterable, Iterator

from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.crypto import salted_hmac

from . import engine, rules, scores
from .models import FollowUp, TreatmentPlan
from .rules import format_decimal

PSEUDONYM_SALT = "nanofat.export.patient-pseudonym"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

PLAN_COLUMNS = [
    "patient_ref",
    "plan_id",
    "plan_status",
    "session_date",
    "performed_on",
    "surgeon",
    "goal",
    "indications",
    "combination",
    "rule_set_version",
]
IDENTITY_COLUMNS = ["patient_name", "chart_number"]
RECORD_COLUMNS = [
    "record",
    "zone",
    "volume_ml",
    "instrument",
    "gauge",
    "depth",
    "technique",
    "rule",
    "severity",
    "message",
    "sources",
    "acknowledged_reason",
    "acknowledged_by",
    "follow_up",
    "due_on",
    "follow_up_status",
    "visited_on",
    "adverse_event",
    "adverse_event_severity",
    "adverse_event_details",
    "resolved_on",
    "gais_surgeon",
    "gais_patient",
    "satisfaction",
    "posas_patient_total",
    "posas_observer_total",
    *[item.field for item in scores.POSAS_PATIENT.items],
    "posas_patient_overall",
    *[item.field for item in scores.POSAS_OBSERVER.items],
    "posas_observer_overall",
    "vss_total",
    *[item.field for item in scores.VSS.items],
    "vss_version",
    "faceq_scale_licensed",
    "faceq_total_licensed",
]


def columns(*, identifiable: bool) -> list[str]:
    head = PLAN_COLUMNS[:1] + (IDENTITY_COLUMNS if identifiable else []) + PLAN_COLUMNS[1:]
    return head + RECORD_COLUMNS


def pseudonym(patient_id: int) -> str:
    return "P-" + salted_hmac(PSEUDONYM_SALT, str(patient_id), algorithm="sha256").hexdigest()[:12]


def safe_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime.datetime):
        text = timezone.localtime(value).isoformat(timespec="minutes")
    elif isinstance(value, datetime.date):
        text = value.isoformat()
    else:
        text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def plans_queryset(plans: QuerySet[TreatmentPlan]) -> QuerySet[TreatmentPlan]:
    return (
        plans.select_related("patient", "surgeon", "rule_set", "outcome")
        .prefetch_related(
            "injections__zone",
            "performed_injections__zone",
            "acknowledgements__acknowledged_by",
            Prefetch(
                "follow_ups",
                queryset=FollowUp.objects.prefetch_related("adverse_events").order_by(
                    "due_on", "pk"
                ),
            ),
        )
        .order_by("planned_for", "pk")
    )


def rows(plans: Iterable[TreatmentPlan], *, identifiable: bool) -> Iterator[dict]:
    for plan in plans:
        base = _plan_columns(plan, identifiable=identifiable)
        yield base | {"record": "plan"}
        outcome = getattr(plan, "outcome", None) if plan.status == "performed" else None
        performed = list(plan.performed_injections.all()) if outcome else []
        # What was injected when the session is done; what is planned before.
        for injection in performed or plan.injections.all():
            yield base | {
                "record": "injection" if not performed else "performed_injection",
                "zone": injection.zone.code,
                "volume_ml": format_decimal(injection.volume_ml),
                "instrument": injection.instrument,
                "gauge": injection.gauge,
                "depth": injection.depth,
                "technique": injection.technique,
            }
        for finding in _findings(plan, outcome):
            yield base | {
                "record": "finding",
                "zone": finding.get("zone") or "",
                "rule": finding.get("rule", ""),
                "severity": finding.get("severity", ""),
                "message": finding.get("message", ""),
                "sources": " ".join(str(s) for s in finding.get("sources", ())),
            }
        for ack in plan.acknowledgements.all():
            yield base | {
                "record": "acknowledged_warning",
                "rule": ack.rule,
                "severity": "warning",
                "message": ack.message,
                "acknowledged_reason": ack.reason,
                "acknowledged_by": ack.acknowledged_by.username,
            }
        if outcome is not None and outcome.adverse_events:
            yield base | {
                "record": "session_adverse_events",
                "adverse_event_details": outcome.adverse_events,
            }
        for follow_up in plan.follow_ups.all():
            visit = _follow_up_columns(follow_up)
            yield base | visit | {"record": "follow_up"}
            for event in follow_up.adverse_events.all():
                yield (
                    base
                    | {key: visit[key] for key in ("follow_up", "due_on", "visited_on")}
                    | {
                        "record": "adverse_event",
                        "adverse_event": event.kind,
                        "adverse_event_severity": event.severity,
                        "adverse_event_details": event.description,
                        "resolved_on": event.resolved_on,
                    }
                )


def _plan_columns(plan: TreatmentPlan, *, identifiable: bool) -> dict:
    outcome = getattr(plan, "outcome", None) if plan.status == "performed" else None
    columns = {
        "patient_ref": pseudonym(plan.patient_id),
        "plan_id": plan.pk,
        "plan_status": plan.status,
        "session_date": plan.planned_for,
        "performed_on": timezone.localdate(outcome.completed_at) if outcome else None,
        "surgeon": plan.surgeon.username,
        "goal": plan.goal,
        "indications": " ".join(plan.indications or []),
        "combination": plan.combination,
        "rule_set_version": plan.rule_set.version if plan.rule_set_id else None,
    }
    if identifiable:
        columns |= {"patient_name": plan.patient.name, "chart_number": plan.patient.chart_number}
    return columns


def _findings(plan: TreatmentPlan, outcome) -> list[dict]:
    """The findings as recorded at completion, or the rules run now on the plan."""
    if outcome is not None:
        return list(outcome.findings or [])
    try:
        snapshot = engine.snapshot_for(engine.rule_set_for(plan))
        found = rules.evaluate(engine.plan_input(plan, list(plan.injections.all())), snapshot)
    except Exception:  # a plan the engine cannot read is still exported, without findings
        return []
    return [finding.as_dict() for finding in found]


def _follow_up_columns(follow_up: FollowUp) -> dict:
    totals = follow_up.totals
    values = {
        "follow_up": follow_up.label,
        "due_on": follow_up.due_on,
        "follow_up_status": follow_up.status,
        "visited_on": follow_up.visited_on,
        "posas_patient_total": totals["posas_patient"],
        "posas_observer_total": totals["posas_observer"],
        "vss_total": totals["vss"],
        "vss_version": follow_up.vss_version,
        "faceq_scale_licensed": follow_up.faceq_scale,
        "faceq_total_licensed": follow_up.faceq_total,
    }
    for item in scores.ALL_ITEMS:
        if item.field != "faceq_total":
            values[item.field] = getattr(follow_up, item.field)
    return values


def write_csv(plans: Iterable[TreatmentPlan], *, identifiable: bool) -> tuple[str, int]:
    """The CSV text and its number of data rows."""
    header = columns(identifiable=identifiable)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, extrasaction="raise", lineterminator="\r\n")
    writer.writeheader()
    count = 0
    for row in rows(plans, identifiable=identifiable):
        writer.writerow({name: safe_cell(row.get(name)) for name in header})
        count += 1
    return buffer.getvalue(), count

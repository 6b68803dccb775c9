"""Reads for the plan builder: everything a page or a partial shows, computed once."""

import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property

from django.template.defaultfilters import pluralize

from . import rules
from .engine import Review, review_plan
from .models import (
    PlannedInjection,
    RuleSet,
    TreatmentPlan,
    TreatmentZone,
    WarningAcknowledgement,
)

SEVERITY_SYMBOL = {"error": "✖", "warning": "!", "info": "i", None: ""}
SEVERITY_LABEL = {"error": "error", "warning": "warning", "info": "information", None: "no finding"}


@dataclass
class FindingView:
    finding: rules.Finding
    key: str
    injection: PlannedInjection | None
    acknowledgement: WarningAcknowledgement | None = None
    #: An acknowledgement given for other values (the finding's message changed since): it no
    #: longer counts, and its reason is offered again for the surgeon to confirm or rewrite.
    outdated: WarningAcknowledgement | None = None

    @property
    def needs_acknowledgement(self) -> bool:
        return self.finding.severity == rules.Severity.WARNING and self.acknowledgement is None

    @property
    def dom_id(self) -> str:
        """An element id that names this finding, the same in every answer that redraws it."""
        return "ack-" + re.sub(r"[^A-Za-z0-9_-]+", "-", self.key).strip("-")


@dataclass
class ZoneView:
    zone: TreatmentZone
    total: Decimal | None
    worst: str | None
    findings: list[rules.Finding] = field(default_factory=list)

    @property
    def symbol(self) -> str:
        return SEVERITY_SYMBOL[self.worst]

    @property
    def severity_label(self) -> str:
        return SEVERITY_LABEL[self.worst]


@dataclass
class RowView:
    injection: PlannedInjection
    findings: list[rules.Finding]

    @property
    def worst(self) -> str | None:
        worst = rules.worst_severity(self.findings)
        return worst.value if worst else None

    @property
    def symbol(self) -> str:
        return SEVERITY_SYMBOL[self.worst]


@dataclass
class BuilderState:
    plan: TreatmentPlan
    review: Review
    zones: list[TreatmentZone]
    acknowledgements: dict[str, WarningAcknowledgement]

    @cached_property
    def rows(self) -> list[RowView]:
        # A row shows its own findings and its zone's (a total above the maximum concerns every
        # injection of that zone).
        zone_level = defaultdict(list)
        for finding in self.review.findings:
            if finding.injection is None and finding.zone:
                zone_level[finding.zone].append(finding)
        return [
            RowView(i, [*self.review.by_injection.get(i.pk, []), *zone_level[i.zone.code]])
            for i in self.review.injections
        ]

    def row(self, injection_id: int) -> RowView:
        return next(row for row in self.rows if row.injection.pk == injection_id)

    @cached_property
    def zone_views(self) -> list[ZoneView]:
        return [self.zone_view(zone) for zone in self.zones]

    def zone_view(self, zone: TreatmentZone) -> ZoneView:
        findings = self.review.by_zone.get(zone.code, [])
        worst = rules.worst_severity(findings)
        return ZoneView(
            zone, self.review.zone_totals.get(zone.code), worst.value if worst else None, findings
        )

    @property
    def zone_totals(self) -> list[ZoneView]:
        return [view for view in self.zone_views if view.total is not None]

    @cached_property
    def findings(self) -> list[FindingView]:
        views = []
        for finding in self.review.findings:
            key = self.review.key(finding)
            stored = self.acknowledgements.get(key)
            current = stored if stored and stored.covers(finding.message) else None
            outdated = stored if current is None else None
            injection = self.review.injection_of(finding)
            views.append(FindingView(finding, key, injection, current, outdated))
        return views

    @cached_property
    def open_warnings(self) -> int:
        return sum(1 for view in self.findings if view.needs_acknowledgement)

    @property
    def steps_to_ready(self) -> list[str]:
        """What stands between this plan and "ready", as the builder says it."""
        errors, warnings = len(self.review.errors), self.open_warnings
        steps = []
        if not self.review.injections:
            steps.append("add at least one injection")
        if self.plan.harvest_volume_ml is None:
            steps.append("record the harvest volume in the session details")
        if errors:
            steps.append(f"resolve {errors} error{pluralize(errors)}")
        if warnings:
            steps.append(f"acknowledge {warnings} warning{pluralize(warnings)} with a reason")
        return steps

    @property
    def can_mark_ready(self) -> bool:
        return self.plan.status == "draft" and not self.steps_to_ready

    @property
    def rule_set_changed(self) -> bool:
        return self.plan.is_editable and self.plan.rule_set_id not in (
            None,
            self.review.rule_set.pk,
        )


@dataclass(frozen=True)
class PlanContents:
    """Every zone (the face map draws them all) and the plan's injections, each holding its
    zone: what the builder reads, loaded once so a view can also take an injection or a zone
    from it instead of asking the database again."""

    zones: dict[int, TreatmentZone]
    injections: list[PlannedInjection]

    def injection(self, injection_id: int) -> PlannedInjection | None:
        return next((row for row in self.injections if row.pk == injection_id), None)

    def active_zones_by_code(self) -> dict[str, TreatmentZone]:
        return {zone.code: zone for zone in self.zones.values() if zone.active}


def plan_contents(plan: TreatmentPlan) -> PlanContents:
    zones = {zone.pk: zone for zone in TreatmentZone.objects.all()}
    injections = list(plan.injections.all())
    for injection in injections:
        # The zones are loaded once for the face map: no join (and no copy) per injection.
        injection.zone = zones[injection.zone_id]
    return PlanContents(zones=zones, injections=injections)


def builder_state(
    plan: TreatmentPlan,
    review: Review | None = None,
    *,
    rule_set: RuleSet | None = None,
    contents: PlanContents | None = None,
) -> BuilderState:
    """What the builder shows of the plan: its review (made here unless given, against
    ``rule_set`` or the plan's own), zones and acknowledgements. ``contents``, when given, must
    be the plan's current injections and zones (``plan_contents``)."""
    if review is None:
        contents = contents or plan_contents(plan)
        review = review_plan(plan, contents.injections, rule_set=rule_set)
    all_zones = (
        contents.zones if contents else {zone.pk: zone for zone in TreatmentZone.objects.all()}
    )
    used_zone_ids = {injection.zone_id for injection in review.injections}
    zones = [zone for zone in all_zones.values() if zone.active or zone.pk in used_zone_ids]
    acknowledgements = {
        ack.finding_key: ack for ack in plan.acknowledgements.select_related("acknowledged_by")
    }
    return BuilderState(plan=plan, review=review, zones=zones, acknowledgements=acknowledgements)

"""The one adapter between the database and the pure rules module.

Views, the PDF and ``check_plan`` all call ``review_plan`` (or ``snapshot_for`` with
``rules.evaluate``), so a rule never fires differently in two places.
"""

import copy
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property, lru_cache

from . import rules
from .choices import Combination, ReferenceKey
from .models import PlannedInjection, ReferenceValue, RuleSet, TreatmentPlan


class ReferenceDataMissing(RuntimeError):
    """The database has no rule set (``manage.py load_reference_data`` was not run)."""


def current_rule_set(plan: TreatmentPlan | None = None) -> RuleSet:
    """The rule set in force. A plan loaded by ``access.get_plan_for_user`` carries its id, read
    with the plan in the same query, so no second query asks which version is newest; the rule
    set itself then comes from this process's copy of that version."""
    known = getattr(plan, "current_rule_set_id", None)
    if known is not None:
        return copy.copy(_rule_set(known))  # a copy: callers may attach things to it
    rule_set = RuleSet.current()
    if rule_set is None:
        raise ReferenceDataMissing("No reference values loaded: run manage.py load_reference_data.")
    return rule_set


@lru_cache(maxsize=32)
def _rule_set(rule_set_id: int) -> RuleSet:
    # A rule-set version never changes once written (the admin makes a new one), so it can be
    # kept per process; which version is in force is still read from the database every time.
    return RuleSet.objects.get(pk=rule_set_id)


def snapshot_for(rule_set: RuleSet) -> rules.ReferenceSnapshot:
    # A rule-set version never changes once written, so its snapshot can be kept per process.
    return _snapshot(rule_set.pk, rule_set.version)


@lru_cache(maxsize=32)
def _snapshot(rule_set_id: int, version: int) -> rules.ReferenceSnapshot:
    values = {value.key: value for value in ReferenceValue.objects.filter(rule_set_id=rule_set_id)}
    missing = set(ReferenceKey.values) - set(values)
    if missing:
        raise ReferenceDataMissing(f"Rule set v{version} lacks {', '.join(sorted(missing))}.")

    def as_range(key: str) -> rules.Range:
        value = values[key]
        return rules.Range(
            minimum=value.minimum,
            maximum=value.maximum,
            unit=value.unit,
            sources=value.source_numbers,
        )

    def as_choice(key: str) -> rules.Choice:
        value = values[key]
        return rules.Choice(values=value.code_set, sources=value.source_numbers)

    return rules.ReferenceSnapshot(
        version=version,
        zone_volume_ml=as_range(ReferenceKey.ZONE_VOLUME_ML),
        needle_gauge=as_range(ReferenceKey.NEEDLE_GAUGE),
        cannula_gauge=as_range(ReferenceKey.CANNULA_GAUGE),
        allowed_depths=as_choice(ReferenceKey.ALLOWED_DEPTHS),
        perioral_forbidden_depths=as_choice(ReferenceKey.PERIORAL_FORBIDDEN_DEPTHS),
        recommended_techniques=as_choice(ReferenceKey.RECOMMENDED_TECHNIQUES),
        documented_indications=as_choice(ReferenceKey.DOCUMENTED_INDICATIONS),
        volume_effect_months=as_range(ReferenceKey.VOLUME_EFFECT_MONTHS),
    )


def injection_input(injection: PlannedInjection) -> rules.InjectionInput:
    return rules.InjectionInput(
        zone=injection.zone.code,
        region=injection.zone.region,
        volume_ml=Decimal(injection.volume_ml),
        instrument=injection.instrument,
        gauge=int(injection.gauge),
        depth=injection.depth,
        technique=injection.technique,
    )


def stored_injection_inputs(
    plan: TreatmentPlan, *, exclude: int | None = None, zone_id: int | None = None
) -> tuple[rules.InjectionInput, ...]:
    """The plan's saved injections (or those of one zone) as the rules read them, straight
    from the database: the live check runs on every keystroke and needs no model instance."""
    rows = plan.injections.exclude(pk=exclude) if exclude else plan.injections.all()
    if zone_id is not None:
        rows = rows.filter(zone_id=zone_id)
    values = rows.values_list(
        "zone__code", "zone__region", "volume_ml", "instrument", "gauge", "depth", "technique"
    )
    return tuple(
        rules.InjectionInput(
            zone, region, Decimal(volume), instrument, int(gauge), depth, technique
        )
        for zone, region, volume, instrument, gauge, depth, technique in values
    )


def plan_input(
    plan: TreatmentPlan,
    injections: Iterable[PlannedInjection | rules.InjectionInput],
    *,
    finalising: bool = False,
) -> rules.PlanInput:
    combined = () if plan.combination == Combination.NONE else (plan.combination,)
    return rules.PlanInput(
        goal=plan.goal,
        indications=tuple(plan.indications or ()),
        combined_with=combined,
        injections=tuple(
            item if isinstance(item, rules.InjectionInput) else injection_input(item)
            for item in injections
        ),
        finalising=finalising,
    )


def rule_set_for(plan: TreatmentPlan) -> RuleSet:
    """Editable plans follow the rule set in force; consented and later plans keep theirs."""
    if not plan.is_editable and plan.rule_set_id is not None:
        return plan.rule_set
    return current_rule_set(plan)


@dataclass(frozen=True)
class Review:
    """A plan's findings together with the injections they point at."""

    rule_set: RuleSet
    injections: tuple[PlannedInjection, ...]
    findings: tuple[rules.Finding, ...]

    def key(self, finding: rules.Finding) -> str:
        """The acknowledgement key: injection findings name the injection's id, not its index,
        so deleting another row does not move an acknowledgement onto the wrong injection."""
        if finding.injection is None:
            return finding.key
        injection_id = self.injections[finding.injection].pk
        subject = f":{finding.subject}" if finding.subject else ""
        return f"{finding.rule}:{finding.zone or ''}:#{injection_id}{subject}"

    def injection_of(self, finding: rules.Finding) -> PlannedInjection | None:
        return None if finding.injection is None else self.injections[finding.injection]

    @cached_property
    def by_injection(self) -> dict[int, list[rules.Finding]]:
        grouped: dict[int, list[rules.Finding]] = defaultdict(list)
        for finding in self.findings:
            if finding.injection is not None:
                grouped[self.injections[finding.injection].pk].append(finding)
        return grouped

    @cached_property
    def by_zone(self) -> dict[str, list[rules.Finding]]:
        grouped: dict[str, list[rules.Finding]] = defaultdict(list)
        for finding in self.findings:
            if finding.zone:
                grouped[finding.zone].append(finding)
        return grouped

    @cached_property
    def zone_totals(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for injection in self.injections:
            totals[injection.zone.code] += injection.volume_ml
        return dict(totals)

    @property
    def total_ml(self) -> Decimal:
        return sum(self.zone_totals.values(), Decimal(0))

    @property
    def errors(self) -> list[rules.Finding]:
        return [f for f in self.findings if f.severity == rules.Severity.ERROR]

    @property
    def warnings(self) -> list[rules.Finding]:
        return [f for f in self.findings if f.severity == rules.Severity.WARNING]


def review_plan(
    plan: TreatmentPlan,
    injections: Iterable[PlannedInjection] | None = None,
    *,
    finalising: bool = False,
    rule_set: RuleSet | None = None,
) -> Review:
    """Runs every rule on the plan (or on the injections given, e.g. an unsaved edit)."""
    if injections is None:
        injections = plan.injections.select_related("zone")
    injections = tuple(injections)
    rule_set = rule_set or rule_set_for(plan)
    findings = rules.evaluate(
        plan_input(plan, injections, finalising=finalising), snapshot_for(rule_set)
    )
    return Review(rule_set=rule_set, injections=injections, findings=tuple(findings))

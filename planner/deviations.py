"""Differences between the consented plan and what was performed, per treatment zone.

Pure Python like ``planner.rules``: it compares two lists of ``rules.InjectionInput`` and says,
for each zone, what changed. Each deviation needs a written reason before the session can be
completed.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from .rules import InjectionInput, format_decimal


@dataclass(frozen=True)
class Deviation:
    zone: str
    planned_ml: Decimal
    performed_ml: Decimal
    changes: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"zone:{self.zone}"

    @property
    def description(self) -> str:
        return f"{self.zone}: " + "; ".join(self.changes)


def _method(injection: InjectionInput) -> str:
    depth = injection.depth.replace("_", " ")
    return f"{injection.instrument} {injection.gauge} G, {depth}, {injection.technique}"


def _by_zone(injections: Iterable[InjectionInput]) -> dict[str, list[InjectionInput]]:
    grouped: dict[str, list[InjectionInput]] = defaultdict(list)
    for injection in injections:
        grouped[injection.zone].append(injection)
    return grouped


def _total(injections: Sequence[InjectionInput]) -> Decimal:
    return sum((injection.volume_ml for injection in injections), Decimal(0))


def deviations(
    planned: Iterable[InjectionInput], performed: Iterable[InjectionInput]
) -> list[Deviation]:
    """One deviation per zone whose volume or method differs, in zone-code order."""
    planned_by_zone, performed_by_zone = _by_zone(planned), _by_zone(performed)
    found = []
    for zone in sorted(planned_by_zone.keys() | performed_by_zone.keys()):
        before, after = planned_by_zone.get(zone, []), performed_by_zone.get(zone, [])
        changes = _zone_changes(before, after)
        if changes:
            found.append(Deviation(zone, _total(before), _total(after), tuple(changes)))
    return found


def _zone_changes(before: Sequence[InjectionInput], after: Sequence[InjectionInput]) -> list[str]:
    if not after:
        return [f"planned {format_decimal(_total(before))} mL, not injected"]
    if not before:
        return [f"not in the consented plan, {format_decimal(_total(after))} mL injected"]
    changes = []
    planned_ml, performed_ml = _total(before), _total(after)
    if planned_ml != performed_ml:
        changes.append(
            f"{format_decimal(planned_ml)} mL planned, {format_decimal(performed_ml)} mL injected"
        )
    planned_methods = sorted({_method(i) for i in before})
    performed_methods = sorted({_method(i) for i in after})
    if planned_methods != performed_methods:
        changes.append(
            f"method changed from {' + '.join(planned_methods)} to {' + '.join(performed_methods)}"
        )
    return changes

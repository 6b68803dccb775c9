"""The clinical rules of a nanofat session plan.

Pure Python (standard library only, no Django, no I/O): it takes a plan and the reference values
and returns findings. Django meets it at exactly one adapter, which builds a `PlanInput` from the
models (or `plan_from_dict` from the `check_plan` JSON) and a `ReferenceSnapshot` from the
reference ranges in the database.

Every reference value comes from the clinical summary (`seed/000_e91e23af4d217b5b.txt`); the
numbers in `sources` are the summary's own reference numbers, shown as "clinical summary, ref 5".
The rule table and the reading of ambiguous sentences are documented in `docs/rules.md`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class InvalidPlan(ValueError):
    """The plan is not a valid plan. `field` names the bad field, e.g. `injections[2].gauge`."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# Vocabularies (the values a plan may use; which of them are *documented* is reference data).
DEPTHS = (
    "superficial_dermis",
    "dermis",
    "subdermis",
    "subcutaneous",
    "intramuscular",
    "supraperiosteal",
)  # ordered shallow -> deep
INSTRUMENTS = ("needle", "cannula")
TECHNIQUES = ("retrograde", "anterograde", "bolus", "fanning")
GOALS = ("rejuvenation", "scar", "volumization")
COMBINATIONS = ("prf", "prp")
DOCUMENTED_INDICATIONS = (
    "skin_quality",
    "fine_lines",
    "scars",
    "dark_lower_eyelids",
    "sun_damage",
    "chronic_wound",
    "alopecia",
)
PERIORAL = "perioral"  # the region name of perioral zones

# Sanity bounds on input (not clinical bounds: a plan outside the documented ranges is still a
# plan, it just gets findings). The same numbers as the models' CHECK constraints and fields
# (PlannedInjection.volume_ml: 2 decimal places, at most 20 mL; gauge 10-34), so that a plan
# check_plan accepts can also be entered and saved.
GAUGE_MIN = 10
GAUGE_MAX = 34
VOLUME_MAX_ML = Decimal("20")
VOLUME_DECIMAL_PLACES = 2

# Human wording of the vocabulary, for messages.
DEPTH_LABELS = {
    "superficial_dermis": "superficial dermis",
    "dermis": "dermis",
    "subdermis": "immediate subdermis",
    "subcutaneous": "subcutaneous",
    "intramuscular": "intramuscular",
    "supraperiosteal": "supraperiosteal",
}
INDICATION_LABELS = {
    "skin_quality": "skin quality",
    "fine_lines": "fine lines and wrinkles",
    "scars": "scars",
    "dark_lower_eyelids": "dark lower eyelids",
    "sun_damage": "sun-damaged skin",
    "chronic_wound": "chronic wounds",
    "alopecia": "alopecia",
}
COMBINATION_LABELS = {"prf": "PRF", "prp": "PRP"}


class Severity(StrEnum):
    ERROR = "error"  # blocks finalising and consent
    WARNING = "warning"  # needs an acknowledgement with a reason
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is worse: error 2 > warning 1 > info 0."""
        return _RANK[self]


_RANK = {Severity.ERROR: 2, Severity.WARNING: 1, Severity.INFO: 0}


@dataclass(frozen=True)
class Range:
    minimum: Decimal
    maximum: Decimal
    unit: str
    sources: tuple[int, ...]

    def contains(self, value: Decimal | int) -> bool:
        return self.minimum <= value <= self.maximum


@dataclass(frozen=True)
class Choice:
    values: frozenset[str]
    sources: tuple[int, ...]


@dataclass(frozen=True)
class ReferenceSnapshot:
    """Every value the rules use, as one versioned, immutable set."""

    version: int
    zone_volume_ml: Range
    needle_gauge: Range
    cannula_gauge: Range
    allowed_depths: Choice
    perioral_forbidden_depths: Choice
    recommended_techniques: Choice
    documented_indications: Choice
    volume_effect_months: Range

    @classmethod
    def default(cls) -> ReferenceSnapshot:
        """The clinical summary's values, as version 0."""
        return cls(
            version=0,
            # "Typical dosing: 0.2-0.5 mL per treatment quadrant 5"
            zone_volume_ml=Range(Decimal("0.2"), Decimal("0.5"), "mL", (5,)),
            # "using 27-30 gauge needles or 25 gauge cannula 5, 3"
            needle_gauge=Range(Decimal("27"), Decimal("30"), "G", (5, 3)),
            cannula_gauge=Range(Decimal("25"), Decimal("25"), "G", (5, 3)),
            # "Injected into dermis and immediate subdermis layers 1"; "into superficial dermal
            # layers 5, 3"
            allowed_depths=Choice(
                frozenset({"superficial_dermis", "dermis", "subdermis"}), (1, 5, 3)
            ),
            # "Injection depth should be above the orbicularis oris muscle in perioral
            # applications to avoid vascular complications 5"
            perioral_forbidden_depths=Choice(frozenset({"intramuscular", "supraperiosteal"}), (5,)),
            # "Retrograde injection fashion recommended 5"
            recommended_techniques=Choice(frozenset({"retrograde"}), (5,)),
            # "Primary Indications" (refs 1, 2, 3, 4, 6)
            documented_indications=Choice(frozenset(DOCUMENTED_INDICATIONS), (1, 2, 3, 4, 6)),
            # "no durable volume enhancement beyond 3 months 5, 3"
            volume_effect_months=Range(Decimal("0"), Decimal("3"), "months", (5, 3)),
        )


@dataclass(frozen=True)
class InjectionInput:
    zone: str
    region: str
    volume_ml: Decimal
    instrument: str
    gauge: int
    depth: str
    technique: str


@dataclass(frozen=True)
class PlanInput:
    goal: str
    indications: tuple[str, ...]
    combined_with: tuple[str, ...]
    injections: tuple[InjectionInput, ...]
    finalising: bool = False


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    sources: tuple[int, ...]
    zone: str | None = None
    injection: int | None = None  # index into plan.injections
    # What the finding is about when rule, zone and injection do not say it (the indication of
    # INDICATION_NOT_DOCUMENTED), so that two such findings keep distinct keys.
    subject: str | None = None

    @property
    def citation(self) -> str:
        return citation(self.sources)

    @property
    def key(self) -> str:
        """A stable identity, used to record the acknowledgement of a warning."""
        injection = "" if self.injection is None else str(self.injection)
        base = f"{self.rule}:{self.zone or ''}:{injection}"
        return base if self.subject is None else f"{base}:{self.subject}"

    def as_dict(self) -> dict:
        """The finding as `check_plan` prints it."""
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "zone": self.zone,
            "injection": self.injection,
            "message": self.message,
            "sources": list(self.sources),
        }


def citation(sources: Iterable[int]) -> str:
    """ "clinical summary, ref 5", "clinical summary, refs 5, 3", or "" without sources."""
    sources = tuple(sources)
    if not sources:
        return ""
    label = "ref" if len(sources) == 1 else "refs"
    return f"clinical summary, {label} {', '.join(str(s) for s in sources)}"


def format_decimal(value: Decimal | int) -> str:
    """A number as a person writes it: 0.50 -> "0.5", 1E+1 -> "10", never an exponent."""
    if isinstance(value, int):
        return str(value)
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


_EN_DASH = "\u2013"  # ranges read "0.2\u20130.5 mL", as in print


def format_range(r: Range) -> str:
    """ "0.2-0.5 mL" (with an en dash), or "25 G" when the range is a single value."""
    if r.minimum == r.maximum:
        return f"{format_decimal(r.minimum)} {r.unit}"
    return f"{format_decimal(r.minimum)}{_EN_DASH}{format_decimal(r.maximum)} {r.unit}"


# Rule codes (a contract: the app stores acknowledgements under them).
ZONE_VOLUME_ABOVE_MAX = "ZONE_VOLUME_ABOVE_MAX"
ZONE_VOLUME_BELOW_MIN = "ZONE_VOLUME_BELOW_MIN"
GAUGE_TOO_LARGE_BORE = "GAUGE_TOO_LARGE_BORE"
GAUGE_FINER_THAN_RANGE = "GAUGE_FINER_THAN_RANGE"
DEPTH_NOT_ALLOWED = "DEPTH_NOT_ALLOWED"
PERIORAL_BELOW_ORBICULARIS = "PERIORAL_BELOW_ORBICULARIS"
PERIORAL_TOO_SUPERFICIAL = "PERIORAL_TOO_SUPERFICIAL"
TECHNIQUE_NOT_RETROGRADE = "TECHNIQUE_NOT_RETROGRADE"
VOLUMIZATION_GOAL = "VOLUMIZATION_GOAL"
INDICATION_NOT_DOCUMENTED = "INDICATION_NOT_DOCUMENTED"
NO_INJECTIONS = "NO_INJECTIONS"
YIELD_BELOW_PLANNED = "YIELD_BELOW_PLANNED"
RULES = (
    ZONE_VOLUME_ABOVE_MAX,
    ZONE_VOLUME_BELOW_MIN,
    GAUGE_TOO_LARGE_BORE,
    GAUGE_FINER_THAN_RANGE,
    DEPTH_NOT_ALLOWED,
    PERIORAL_BELOW_ORBICULARIS,
    PERIORAL_TOO_SUPERFICIAL,
    TECHNIQUE_NOT_RETROGRADE,
    VOLUMIZATION_GOAL,
    INDICATION_NOT_DOCUMENTED,
    NO_INJECTIONS,
    YIELD_BELOW_PLANNED,
)

# What each rule is about, in words a patient reads on the consent sheet (the codes stay for
# the surgeon's screens, the audit and check_plan).
RULE_TITLES = {
    ZONE_VOLUME_ABOVE_MAX: "More volume in one zone than documented",
    ZONE_VOLUME_BELOW_MIN: "Less volume in one zone than documented",
    GAUGE_TOO_LARGE_BORE: "A wider needle or cannula than documented",
    GAUGE_FINER_THAN_RANGE: "A finer needle or cannula than documented",
    DEPTH_NOT_ALLOWED: "An injection depth other than the documented ones",
    PERIORAL_BELOW_ORBICULARIS: "A deep injection around the mouth",
    PERIORAL_TOO_SUPERFICIAL: "A very superficial injection around the mouth",
    TECHNIQUE_NOT_RETROGRADE: "An injection technique other than the documented one",
    VOLUMIZATION_GOAL: "Volume restoration as the goal",
    INDICATION_NOT_DOCUMENTED: "A reason for treatment outside the documented indications",
    NO_INJECTIONS: "No injections planned",
    YIELD_BELOW_PLANNED: "Less fat harvested than planned",
}


def in_plain_words(finding: Finding, zone_names: Mapping[str, str]) -> tuple[str, str]:
    """The finding's title and message for a patient: the zone's name where the message opens
    with its code ("TEMPLE_R: ..." reads "Temple (right): ...")."""
    title = RULE_TITLES.get(finding.rule, finding.rule)
    prefix = f"{finding.zone}: "
    if not finding.zone or not finding.message.startswith(prefix):
        return title, finding.message
    name = zone_names.get(finding.zone, finding.zone)
    return title, f"{name}: {finding.message.removeprefix(prefix)}"


# Advice codes (plan-level information for the consent sheet, from `advice()`).
NO_DURABLE_VOLUME = "NO_DURABLE_VOLUME"
COMBINATION_THERAPY = "COMBINATION_THERAPY"
EXPECTED_COURSE = "EXPECTED_COURSE"

# The summary's sentence for the perioral rules and the expected course (ref 5).
_PERIORAL_SOURCES = (5,)
_COURSE_SOURCES = (5,)
_COMBINATION_SOURCES = (1,)


def _sort_key(f: Finding) -> tuple:
    # Worst first; then plan-level findings, zone-level ones by zone, injections by index.
    return (
        -_RANK[f.severity],
        -1 if f.injection is None else f.injection,
        f.zone or "",
        f.rule,
        f.subject or "",
    )


def _join(values: Iterable[str], vocabulary: Iterable[str], labels: Mapping[str, str]) -> str:
    """Values in vocabulary order (then any others alphabetically), with their labels."""
    values = set(values)
    ordered = [v for v in vocabulary if v in values] + sorted(values - set(vocabulary))
    return ", ".join(labels.get(v, v) for v in ordered)


def zone_totals(plan: PlanInput) -> dict[str, Decimal]:
    """Planned volume per zone, in the order zones first appear in the plan."""
    totals: dict[str, Decimal] = {}
    for injection in plan.injections:
        totals[injection.zone] = totals.get(injection.zone, 0) + injection.volume_ml
    return totals


def evaluate(plan: PlanInput, ref: ReferenceSnapshot) -> list[Finding]:
    """Every rule finding of the plan, worst first, in a deterministic order.

    Rule findings only (errors and warnings); the consent sheet's plan-level information comes
    from `advice()`. One pass over the injections; messages are built only when a rule fires.
    """
    findings: list[Finding] = []
    add = findings.append

    # Plan-level rules.
    if plan.goal == "volumization":
        add(_volumization_goal(ref))
    documented = ref.documented_indications.values
    seen: set[str] = set()
    for indication in plan.indications:
        if indication not in documented and indication not in seen:
            seen.add(indication)
            add(_indication_not_documented(indication, ref))
    if plan.finalising and not plan.injections:
        add(
            Finding(
                NO_INJECTIONS,
                Severity.ERROR,
                "The plan has no injections. Add at least one planned injection before "
                "finalising it.",
                (),
            )
        )

    # Injection rules, in one pass; the bounds are read once.
    gauges = {"needle": ref.needle_gauge, "cannula": ref.cannula_gauge}
    bounds = {name: (r.minimum, r.maximum) for name, r in gauges.items()}
    allowed = ref.allowed_depths.values
    forbidden = ref.perioral_forbidden_depths.values
    recommended = ref.recommended_techniques.values
    totals: dict[str, Decimal] = {}
    for index, injection in enumerate(plan.injections):
        zone = injection.zone
        totals[zone] = totals.get(zone, 0) + injection.volume_ml

        try:
            low, high = bounds[injection.instrument]
        except KeyError:
            raise InvalidPlan(
                f"injections[{index}].instrument",
                f"unknown instrument {injection.instrument!r}; expected one of "
                f"{', '.join(INSTRUMENTS)}",
            ) from None
        gauge = injection.gauge
        if gauge < low:
            add(_gauge_too_large_bore(index, injection, gauges[injection.instrument]))
        elif gauge > high:
            add(_gauge_finer_than_range(index, injection, gauges[injection.instrument]))

        depth = injection.depth
        if depth not in allowed:
            add(_depth_not_allowed(index, injection, ref))
        if injection.region == PERIORAL:
            if depth in forbidden:
                add(_perioral_below_orbicularis(index, injection, ref))
            elif depth == "superficial_dermis":
                add(_perioral_too_superficial(index, injection))

        if injection.technique not in recommended:
            add(_technique_not_retrograde(index, injection, ref))

    # Zone rules, on the totals.
    volume = ref.zone_volume_ml
    for zone, total in totals.items():
        if total > volume.maximum:
            add(_zone_volume_above_max(zone, total, volume))
        elif total < volume.minimum:
            add(_zone_volume_below_min(zone, total, volume))

    findings.sort(key=_sort_key)
    return findings


def advice(plan: PlanInput, ref: ReferenceSnapshot) -> list[Finding]:
    """Plan-level information the patient must hear (consent sheet), all of severity info."""
    months = format_decimal(ref.volume_effect_months.maximum)
    notes = [
        Finding(
            NO_DURABLE_VOLUME,
            Severity.INFO,
            "Nanofat improves skin quality; it does not restore volume. Any volumizing effect "
            f"does not last beyond {months} months.",
            ref.volume_effect_months.sources,
        )
    ]
    if plan.combined_with:
        names = _join(plan.combined_with, COMBINATIONS, COMBINATION_LABELS)
        notes.append(
            Finding(
                COMBINATION_THERAPY,
                Severity.INFO,
                f"Combined with {names}: nanofat is frequently combined with platelet-rich "
                "fibrin (PRF) or platelet-rich plasma (PRP) for facial rejuvenation.",
                _COMBINATION_SOURCES,
            )
        )
    notes.append(
        Finding(
            EXPECTED_COURSE,
            Severity.INFO,
            "Expect mild to moderate bruising, swelling and tenderness, usually resolving "
            "within days to weeks, and mild pain or discomfort during injection.",
            _COURSE_SOURCES,
        )
    )
    return notes


def check_yield(planned_total_ml: Decimal, nanofat_yield_ml: Decimal) -> list[Finding]:
    """The processing record's yield against the plan: less nanofat than planned is an error.

    Not a summary rule (no source): the session cannot deliver the consented volumes.
    """
    if nanofat_yield_ml >= planned_total_ml:
        return []
    return [
        Finding(
            YIELD_BELOW_PLANNED,
            Severity.ERROR,
            f"The nanofat yield of {format_decimal(nanofat_yield_ml)} mL is below the "
            f"{format_decimal(planned_total_ml)} mL planned in total. Harvest and process more "
            "fat, or record a reduced volume per zone with a reason for each deviation.",
            (),
        )
    ]


def worst_severity(findings: Iterable[Finding]) -> Severity | None:
    worst: Severity | None = None
    for finding in findings:
        if worst is None or _RANK[finding.severity] > _RANK[worst]:
            worst = finding.severity
    return worst


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(finding.severity is Severity.ERROR for finding in findings)


# Findings. Each message says the value found, the documented value and what to do instead; every
# documented number in it comes from the snapshot.


def _zone_volume_above_max(zone: str, total: Decimal, volume: Range) -> Finding:
    return Finding(
        ZONE_VOLUME_ABOVE_MAX,
        Severity.ERROR,
        f"{zone}: {format_decimal(total)} {volume.unit} planned in total, above the documented "
        f"{format_range(volume)} per treatment zone. Reduce the volume or split it over another "
        "session.",
        volume.sources,
        zone=zone,
    )


def _zone_volume_below_min(zone: str, total: Decimal, volume: Range) -> Finding:
    return Finding(
        ZONE_VOLUME_BELOW_MIN,
        Severity.WARNING,
        f"{zone}: {format_decimal(total)} {volume.unit} planned in total, below the documented "
        f"{format_range(volume)} per treatment zone. Increase the volume, or record why less "
        "is enough.",
        volume.sources,
        zone=zone,
    )


def _gauge_too_large_bore(index: int, injection: InjectionInput, gauge: Range) -> Finding:
    instrument = injection.instrument
    return Finding(
        GAUGE_TOO_LARGE_BORE,
        Severity.ERROR,
        f"{injection.zone}: {injection.gauge} G {instrument}, a larger bore than the documented "
        f"{format_range(gauge)} for a {instrument}. Use a {format_range(gauge)} {instrument}.",
        gauge.sources,
        zone=injection.zone,
        injection=index,
    )


def _gauge_finer_than_range(index: int, injection: InjectionInput, gauge: Range) -> Finding:
    instrument = injection.instrument
    return Finding(
        GAUGE_FINER_THAN_RANGE,
        Severity.WARNING,
        f"{injection.zone}: {injection.gauge} G {instrument}, finer than the documented "
        f"{format_range(gauge)} for a {instrument}. Use a {format_range(gauge)} {instrument}, "
        "or record why a finer one suits this patient.",
        gauge.sources,
        zone=injection.zone,
        injection=index,
    )


def _depth_not_allowed(index: int, injection: InjectionInput, ref: ReferenceSnapshot) -> Finding:
    allowed = _join(ref.allowed_depths.values, DEPTHS, DEPTH_LABELS)
    depth = DEPTH_LABELS.get(injection.depth, injection.depth)
    return Finding(
        DEPTH_NOT_ALLOWED,
        Severity.ERROR,
        f"{injection.zone}: {depth} injection is outside the documented depths ({allowed}). "
        "Inject at one of those depths.",
        ref.allowed_depths.sources,
        zone=injection.zone,
        injection=index,
    )


def _perioral_below_orbicularis(
    index: int, injection: InjectionInput, ref: ReferenceSnapshot
) -> Finding:
    depth = DEPTH_LABELS.get(injection.depth, injection.depth)
    return Finding(
        PERIORAL_BELOW_ORBICULARIS,
        Severity.ERROR,
        f"{injection.zone}: {depth} injection in a perioral zone is at or below the orbicularis "
        "oris muscle. Stay above the muscle, in the dermis or immediate subdermis, to avoid "
        "vascular injury.",
        ref.perioral_forbidden_depths.sources,
        zone=injection.zone,
        injection=index,
    )


def _perioral_too_superficial(index: int, injection: InjectionInput) -> Finding:
    return Finding(
        PERIORAL_TOO_SUPERFICIAL,
        Severity.WARNING,
        f"{injection.zone}: superficial dermis injection in a delicate perioral zone, where "
        "superficial injection is to be avoided. Prefer the dermis or immediate subdermis, "
        "above the orbicularis oris muscle.",
        _PERIORAL_SOURCES,
        zone=injection.zone,
        injection=index,
    )


def _technique_not_retrograde(
    index: int, injection: InjectionInput, ref: ReferenceSnapshot
) -> Finding:
    recommended = _join(ref.recommended_techniques.values, TECHNIQUES, {})
    return Finding(
        TECHNIQUE_NOT_RETROGRADE,
        Severity.WARNING,
        f"{injection.zone}: {injection.technique} technique; the documented technique is "
        f"{recommended} injection. Inject {recommended}, or record why not.",
        ref.recommended_techniques.sources,
        zone=injection.zone,
        injection=index,
    )


def _volumization_goal(ref: ReferenceSnapshot) -> Finding:
    months = format_decimal(ref.volume_effect_months.maximum)
    return Finding(
        VOLUMIZATION_GOAL,
        Severity.ERROR,
        "The primary goal is volume restoration, which nanofat does not provide: any "
        f"volumizing effect does not last beyond {months} months. Use hyaluronic acid fillers "
        "or microfat/macrofat grafting for volume, or change the goal.",
        ref.volume_effect_months.sources,
    )


def _indication_not_documented(indication: str, ref: ReferenceSnapshot) -> Finding:
    documented = _join(ref.documented_indications.values, DOCUMENTED_INDICATIONS, INDICATION_LABELS)
    return Finding(
        INDICATION_NOT_DOCUMENTED,
        Severity.WARNING,
        f"Indication {indication!r} is not among the documented indications ({documented}). "
        "Record why nanofat is indicated for it.",
        ref.documented_indications.sources,
        subject=indication,
    )


# Parsing the check_plan JSON.

# Plain decimal notation, optionally signed and with an exponent; no underscores, no NaN/Infinity.
_NUMBER = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*")


class _Bad(Exception):
    """A bad value, before its field's path is known. Never leaves this module: the caller
    re-raises it as InvalidPlan with the path, so paths are only formatted when input is bad."""


def _shown(value: object) -> str:
    """How a bad input value is quoted back: JSON names for JSON values, short."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "\u2026")
    text = repr(value) if isinstance(value, float) else str(value)
    return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}.get(text, text)


def _one_of(value: object, vocabulary: tuple[str, ...], kind: str) -> str:
    if value.__class__ is not str or value not in vocabulary:
        raise _Bad(f"unknown {kind} {_shown(value)}; expected one of {', '.join(vocabulary)}")
    return value


def _volume(value: object) -> Decimal:
    if isinstance(value, str):
        if not _NUMBER.fullmatch(value):
            raise _Bad(f"must be a positive number of mL, got {_shown(value)}")
        number = Decimal(value)
    elif isinstance(value, bool) or value is None:
        raise _Bad(f"must be a positive number of mL, got {_shown(value)}")
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _Bad(f"must be a positive number of mL, got {_shown(value)}")
        # A float's shortest repr is the decimal its writer meant (0.1, not 0.1000000000000000055).
        number = Decimal(repr(value))
    elif isinstance(value, Decimal):
        number = value
    else:
        raise _Bad(f"must be a positive number of mL, got {_shown(value)}")
    if not number.is_finite() or number <= 0:
        raise _Bad(f"must be a positive number of mL, got {_shown(value)}")
    if number > VOLUME_MAX_ML:
        raise _Bad(f"must be at most {format_decimal(VOLUME_MAX_ML)} mL, got {_shown(value)}")
    if _decimal_places(number) > VOLUME_DECIMAL_PLACES:
        raise _Bad(f"must have at most {VOLUME_DECIMAL_PLACES} decimal places, got {_shown(value)}")
    return number


def _decimal_places(number: Decimal) -> int:
    """Decimal places that carry a digit: 0.300 has 1. Integer arithmetic, no context."""
    _, digits, exponent = number.as_tuple()
    if exponent >= -VOLUME_DECIMAL_PLACES:
        return max(0, -exponent)
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -exponent - trailing)


def _gauge(value: object) -> int:
    if value.__class__ is int:
        number = value
    elif isinstance(value, bool):
        raise _Bad(f"must be a whole number, got {_shown(value)}")
    elif isinstance(value, str):
        # The JSON contract writes gauges as numbers; a quoted one is a mistake in the export.
        raise _Bad(f"must be a whole number (a JSON number, not a string), got {_shown(value)}")
    elif isinstance(value, float):
        # 27.0 is the number 27 in JSON; 27.5 is not a gauge.
        if not value.is_integer():
            raise _Bad(f"must be a whole number, got {_shown(value)}")
        number = int(value)
    elif isinstance(value, Decimal):
        if not (value.is_finite() and value == value.to_integral_value()):
            raise _Bad(f"must be a whole number, got {_shown(value)}")
        number = int(value)
    elif isinstance(value, int):  # an int subclass other than bool
        number = int(value)
    else:
        raise _Bad(f"must be a whole number, got {_shown(value)}")
    if not GAUGE_MIN <= number <= GAUGE_MAX:
        raise _Bad(f"must be between {GAUGE_MIN} and {GAUGE_MAX}, got {_shown(value)}")
    return number


def _strings(value: object) -> tuple[str, ...]:
    """A list of non-empty strings, stripped, duplicates dropped (first occurrence kept).

    A bad item raises `_Bad` with its index as `args[1]`."""
    if not isinstance(value, list):
        raise _Bad(f"must be a list, got {_shown(value)}")
    items: dict[str, None] = {}
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise _Bad(f"must be a non-empty string, got {_shown(item)}", i)
        items[item.strip()] = None
    return tuple(items)


def _field(data: dict, name: str, parse, path: str) -> object:
    """A plan-level field, parsed, or InvalidPlan naming it."""
    if name not in data:
        raise InvalidPlan(path, "missing")
    try:
        return parse(data[name])
    except _Bad as bad:
        message, *index = bad.args
        raise InvalidPlan(f"{path}[{index[0]}]" if index else path, message) from None


_INJECTION_FIELDS = ("zone", "volume_ml", "instrument", "gauge", "depth", "technique")


def _injection(data: object, index: int, zone_regions: Mapping[str, str]) -> InjectionInput:
    if not isinstance(data, dict):
        raise InvalidPlan(f"injections[{index}]", f"must be an object, got {_shown(data)}")
    name = "zone"  # the field being read, for the error's path
    try:
        zone = data["zone"]
        if zone.__class__ is not str or zone not in zone_regions:
            raise _Bad(f"unknown zone code {_shown(zone)}")
        name = "volume_ml"
        volume = _volume(data["volume_ml"])
        name = "instrument"
        instrument = _one_of(data["instrument"], INSTRUMENTS, "instrument")
        name = "gauge"
        gauge = _gauge(data["gauge"])
        name = "depth"
        depth = _one_of(data["depth"], DEPTHS, "depth")
        name = "technique"
        technique = _one_of(data["technique"], TECHNIQUES, "technique")
    except KeyError:
        raise InvalidPlan(f"injections[{index}].{name}", "missing") from None
    except _Bad as bad:
        raise InvalidPlan(f"injections[{index}].{name}", bad.args[0]) from None
    return InjectionInput(
        zone=zone,
        region=zone_regions[zone],
        volume_ml=volume,
        instrument=instrument,
        gauge=gauge,
        depth=depth,
        technique=technique,
    )


def _combinations(value: object) -> tuple[str, ...]:
    combined_with = _strings(value)
    for i, combination in enumerate(value):
        if combination.strip() not in COMBINATIONS:
            hint = (
                "leave the list empty for no combination therapy"
                if combination.strip().lower() == "none"
                else f"expected one of {', '.join(COMBINATIONS)}"
            )
            raise _Bad(f"unknown combination {_shown(combination)}; {hint}", i)
    return combined_with


def plan_from_dict(data: object, zone_regions: Mapping[str, str]) -> PlanInput:
    """Parse and strictly validate a plan given as decoded JSON (the `check_plan` format).

    `zone_regions` maps each known zone code to its region. Raises `InvalidPlan` naming the first
    bad field, e.g. "injections[1].gauge: must be a whole number, got 27.5". Keys the format does
    not define (notes, donor site...) are ignored.
    """
    if not isinstance(data, dict):
        raise InvalidPlan("plan", f"must be a JSON object, got {_shown(data)}")
    goal = _field(data, "goal", lambda v: _one_of(v, GOALS, "goal"), "goal")
    indications = _field(data, "indications", _strings, "indications")
    combined_with = (
        _field(data, "combined_with", _combinations, "combined_with")
        if "combined_with" in data
        else ()
    )
    raw_injections = _field(data, "injections", _list, "injections")
    finalising = data.get("finalising", False)
    if not isinstance(finalising, bool):
        raise InvalidPlan("finalising", f"must be true or false, got {_shown(finalising)}")
    injections = tuple(
        _injection(item, index, zone_regions) for index, item in enumerate(raw_injections)
    )
    return PlanInput(
        goal=goal,
        indications=indications,
        combined_with=combined_with,
        injections=injections,
        finalising=finalising,
    )


def _list(value: object) -> list:
    if not isinstance(value, list):
        raise _Bad(f"must be a list, got {_shown(value)}")
    return value

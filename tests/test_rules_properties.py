"""Properties of the rules engine that hold for any plan and any reference snapshot.

Pure: no Django import, no database. Runs under `pytest -p no:django` and under pytest-django.
"""

import itertools
from collections import Counter
from decimal import Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from planner.rules import (
    DEPTHS,
    DOCUMENTED_INDICATIONS,
    GOALS,
    INSTRUMENTS,
    PERIORAL,
    TECHNIQUES,
    Choice,
    InjectionInput,
    PlanInput,
    Range,
    ReferenceSnapshot,
    Severity,
    evaluate,
    has_errors,
    plan_from_dict,
    zone_totals,
)

DEFAULT = ReferenceSnapshot.default()
DEFAULT_FORBIDDEN = DEFAULT.perioral_forbidden_depths.values

ZONE_REGIONS = {
    "FOREHEAD": "upper_face",
    "GLABELLA": "upper_face",
    "TEMPLE_L": "upper_face",
    "LOWER_EYELID_L": "periorbital",
    "CHEEK_L": "midface",
    "NASOLABIAL_L": "midface",
    "UPPER_LIP": PERIORAL,
    "LOWER_LIP": PERIORAL,
    "MARIONETTE_L": PERIORAL,
    "MARIONETTE_R": PERIORAL,
    "CHIN": "lower_face",
    "NECK": "neck",
}
ZONES = sorted(ZONE_REGIONS)
CENTI = Decimal("0.01")  # volumes are entered in hundredths of a mL
EXAMPLES = settings(max_examples=200, deadline=None)


def ml(hundredths: int) -> Decimal:
    return hundredths * CENTI


@st.composite
def snapshots(draw) -> ReferenceSnapshot:
    """The default snapshot, or one with other (consistent) reference values."""
    if draw(st.booleans()):
        return DEFAULT
    low = draw(st.integers(5, 50))
    high = draw(st.integers(low, 150))
    needle_low = draw(st.integers(20, 32))
    needle_high = draw(st.integers(needle_low, 34))
    cannula_low = draw(st.integers(18, 30))
    cannula_high = draw(st.integers(cannula_low, 30))
    allowed = draw(st.sets(st.sampled_from(DEPTHS), min_size=1))
    return ReferenceSnapshot(
        version=draw(st.integers(1, 99)),
        zone_volume_ml=Range(ml(low), ml(high), "mL", (5,)),
        needle_gauge=Range(Decimal(needle_low), Decimal(needle_high), "G", (5, 3)),
        cannula_gauge=Range(Decimal(cannula_low), Decimal(cannula_high), "G", (5, 3)),
        allowed_depths=Choice(frozenset(allowed), (1, 5, 3)),
        perioral_forbidden_depths=DEFAULT.perioral_forbidden_depths,
        recommended_techniques=DEFAULT.recommended_techniques,
        documented_indications=DEFAULT.documented_indications,
        volume_effect_months=DEFAULT.volume_effect_months,
    )


def split(draw, total: int) -> list[int]:
    """A total (in hundredths of a mL) split into 1-4 positive parts."""
    cuts = draw(
        st.lists(st.integers(1, total - 1), unique=True, max_size=min(3, total - 1))
        if total > 1
        else st.just([])
    )
    points = [0, *sorted(cuts), total]
    return [b - a for a, b in itertools.pairwise(points)]


def gauge_within(draw, ref: ReferenceSnapshot, instrument: str) -> int:
    r = ref.needle_gauge if instrument == "needle" else ref.cannula_gauge
    return draw(st.integers(int(r.minimum), int(r.maximum)))


@st.composite
def documented_plans(draw, ref: ReferenceSnapshot) -> PlanInput:
    """A plan whose every value lies inside the snapshot's documented ranges.

    Techniques and indications vary freely: off-recommendation ones are warnings, not errors.
    """
    vol = ref.zone_volume_ml
    low, high = int(vol.minimum / CENTI), int(vol.maximum / CENTI)
    allowed = sorted(ref.allowed_depths.values)
    perioral_ok = [d for d in allowed if d not in DEFAULT_FORBIDDEN]
    # Perioral zones only when some allowed depth lies above the orbicularis oris.
    candidates = [z for z in ZONES if perioral_ok or ZONE_REGIONS[z] != PERIORAL]
    zones = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=6, unique=True))
    injections = []
    for zone in zones:
        region = ZONE_REGIONS[zone]
        depths = perioral_ok if region == PERIORAL else allowed
        for part in split(draw, draw(st.integers(low, high))):
            instrument = draw(st.sampled_from(INSTRUMENTS))
            injections.append(
                InjectionInput(
                    zone=zone,
                    region=region,
                    volume_ml=ml(part),
                    instrument=instrument,
                    gauge=gauge_within(draw, ref, instrument),
                    depth=draw(st.sampled_from(depths)),
                    technique=draw(st.sampled_from(TECHNIQUES)),
                )
            )
    return PlanInput(
        goal=draw(st.sampled_from(["rejuvenation", "scar"])),
        indications=tuple(
            draw(st.lists(st.sampled_from([*DOCUMENTED_INDICATIONS, "rosacea", "acne"])))
        ),
        combined_with=tuple(draw(st.sets(st.sampled_from(["prf", "prp"])))),
        injections=tuple(draw(st.permutations(injections))),
        finalising=draw(st.booleans()),
    )


@st.composite
def any_injections(draw) -> InjectionInput:
    """Any injection the vocabulary allows, inside or outside the documented ranges."""
    zone = draw(st.sampled_from([*ZONES[:5], "UPPER_LIP", "LOWER_LIP"]))
    return InjectionInput(
        zone=zone,
        region=ZONE_REGIONS[zone],
        volume_ml=ml(draw(st.integers(1, 80))),
        instrument=draw(st.sampled_from(INSTRUMENTS)),
        gauge=draw(st.integers(10, 34)),
        depth=draw(st.sampled_from(DEPTHS)),
        technique=draw(st.sampled_from(TECHNIQUES)),
    )


@st.composite
def any_plans(draw) -> PlanInput:
    return PlanInput(
        goal=draw(st.sampled_from(GOALS)),
        indications=tuple(
            draw(st.lists(st.sampled_from([*DOCUMENTED_INDICATIONS, "rosacea", "acne"])))
        ),
        combined_with=(),
        injections=tuple(draw(st.lists(any_injections(), max_size=12))),
        finalising=draw(st.booleans()),
    )


@EXAMPLES
@given(data=st.data())
def test_a_plan_inside_every_documented_range_has_no_error(data):
    ref = data.draw(snapshots())
    plan = data.draw(documented_plans(ref))
    findings = evaluate(plan, ref)
    assert not has_errors(findings), findings
    # Nor any zone volume, gauge or depth finding: only off-recommendation choices may warn.
    assert {f.rule for f in findings} <= {
        "TECHNIQUE_NOT_RETROGRADE",
        "INDICATION_NOT_DOCUMENTED",
        "PERIORAL_TOO_SUPERFICIAL",
    }


@EXAMPLES
@given(data=st.data())
def test_raising_one_zone_above_the_maximum_flags_that_zone_and_only_it(data):
    ref = data.draw(snapshots())
    plan = data.draw(documented_plans(ref))
    totals = zone_totals(plan)
    zone = data.draw(st.sampled_from(sorted(totals)))
    excess = ml(data.draw(st.integers(1, 100)))
    extra = InjectionInput(
        zone=zone,
        region=ZONE_REGIONS[zone],
        volume_ml=ref.zone_volume_ml.maximum - totals[zone] + excess,
        instrument="needle",
        gauge=int(ref.needle_gauge.minimum),
        depth="dermis",
        technique="retrograde",
    )
    at = data.draw(st.integers(0, len(plan.injections)))
    injections = (*plan.injections[:at], extra, *plan.injections[at:])
    raised = PlanInput(plan.goal, plan.indications, plan.combined_with, injections)

    findings = evaluate(raised, ref)
    over = [f for f in findings if f.rule == "ZONE_VOLUME_ABOVE_MAX"]
    assert [(f.zone, f.injection, f.severity) for f in over] == [(zone, None, Severity.ERROR)]
    assert not [f for f in findings if f.rule == "ZONE_VOLUME_BELOW_MIN" and f.zone == zone]


def signature(plan: PlanInput, ref: ReferenceSnapshot) -> Counter:
    """The findings with each injection index replaced by the injection it points at."""
    return Counter(
        (
            f.rule,
            f.severity,
            f.zone,
            f.subject,
            f.message,
            f.sources,
            None if f.injection is None else plan.injections[f.injection],
        )
        for f in evaluate(plan, ref)
    )


@EXAMPLES
@given(plan=any_plans(), ref=snapshots(), data=st.data())
def test_findings_do_not_depend_on_the_order_of_injections(plan, ref, data):
    shuffled = data.draw(st.permutations(plan.injections))
    reordered = PlanInput(
        plan.goal, plan.indications, plan.combined_with, tuple(shuffled), plan.finalising
    )
    assert signature(reordered, ref) == signature(plan, ref)
    assert Counter((f.rule, f.zone) for f in evaluate(reordered, ref)) == Counter(
        (f.rule, f.zone) for f in evaluate(plan, ref)
    )


@EXAMPLES
@given(plan=any_plans(), ref=snapshots())
def test_findings_are_sorted_worst_first_and_then_by_position(plan, ref):
    findings = evaluate(plan, ref)
    keys = [
        (-f.severity.rank, -1 if f.injection is None else f.injection, f.zone or "", f.rule)
        for f in findings
    ]
    assert keys == sorted(keys)
    assert len({f.key for f in findings}) == len(findings)
    assert evaluate(plan, ref) == findings


@EXAMPLES
@given(plan=any_plans(), ref=snapshots())
def test_zone_findings_agree_with_the_zone_totals(plan, ref):
    vol = ref.zone_volume_ml
    expected = {
        (zone, "ZONE_VOLUME_ABOVE_MAX" if total > vol.maximum else "ZONE_VOLUME_BELOW_MIN")
        for zone, total in zone_totals(plan).items()
        if not vol.minimum <= total <= vol.maximum
    }
    found = {(f.zone, f.rule) for f in evaluate(plan, ref) if f.rule.startswith("ZONE_VOLUME")}
    assert found == expected


@EXAMPLES
@given(hundredths=st.integers(1, 2_000), form=st.sampled_from(["str", "float", "int"]))
def test_plan_from_dict_reads_any_two_decimal_volume_exactly(hundredths, form):
    volume = ml(hundredths)
    if form == "int":
        assume(volume == volume.to_integral_value())
        written = int(volume)
    else:
        written = str(volume) if form == "str" else float(volume)
    data = {
        "goal": "rejuvenation",
        "indications": [],
        "injections": [
            {
                "zone": "CHEEK_L",
                "volume_ml": written,
                "instrument": "needle",
                "gauge": 27,
                "depth": "dermis",
                "technique": "retrograde",
            }
        ],
    }
    assert plan_from_dict(data, ZONE_REGIONS).injections[0].volume_ml == volume


def concerning(findings, index: int, zone: str) -> Counter:
    """The findings about one injection or about its zone's total, as the live check shows them."""
    return Counter(
        (f.rule, f.severity, f.message, f.sources)
        for f in findings
        if f.injection == index or (f.injection is None and f.zone == zone)
    )


@EXAMPLES
@given(plan=any_plans(), ref=snapshots(), data=st.data())
def test_an_injections_findings_need_only_the_injections_of_its_zone(plan, ref, data):
    # The live check evaluates a candidate with the other injections of its zone only.
    assume(plan.injections)
    index = data.draw(st.integers(0, len(plan.injections) - 1))
    zone = plan.injections[index].zone
    same_zone = [i for i, injection in enumerate(plan.injections) if injection.zone == zone]
    subset = PlanInput(
        goal=plan.goal,
        indications=plan.indications,
        combined_with=plan.combined_with,
        injections=tuple(plan.injections[i] for i in same_zone),
        finalising=plan.finalising,
    )
    assert concerning(evaluate(subset, ref), same_zone.index(index), zone) == concerning(
        evaluate(plan, ref), index, zone
    )

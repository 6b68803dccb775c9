"""The clinical rules engine, rule by rule, at and just beyond each documented boundary.

Pure: no Django import, no database. Runs under `pytest -p no:django` and under pytest-django.
"""

import copy
import dataclasses
import json
from decimal import Decimal

import pytest

from planner.rules import (
    COMBINATION_THERAPY,
    DEPTHS,
    DOCUMENTED_INDICATIONS,
    EXPECTED_COURSE,
    NO_DURABLE_VOLUME,
    PERIORAL,
    RULE_TITLES,
    RULES,
    TECHNIQUES,
    Choice,
    Finding,
    InjectionInput,
    InvalidPlan,
    PlanInput,
    Range,
    ReferenceSnapshot,
    Severity,
    advice,
    evaluate,
    format_decimal,
    has_errors,
    in_plain_words,
    plan_from_dict,
    worst_severity,
    zone_totals,
)

REF = ReferenceSnapshot.default()

ZONE_REGIONS = {
    "FOREHEAD": "upper_face",
    "GLABELLA": "upper_face",
    "CHEEK_L": "midface",
    "CHEEK_R": "midface",
    "LOWER_EYELID_L": "periorbital",
    "UPPER_LIP": PERIORAL,
    "LOWER_LIP": PERIORAL,
    "MARIONETTE_L": PERIORAL,
}


def inj(
    zone: str = "CHEEK_L",
    volume: str = "0.3",
    instrument: str = "needle",
    gauge: int = 27,
    depth: str = "dermis",
    technique: str = "retrograde",
) -> InjectionInput:
    return InjectionInput(
        zone=zone,
        region=ZONE_REGIONS[zone],
        volume_ml=Decimal(volume),
        instrument=instrument,
        gauge=gauge,
        depth=depth,
        technique=technique,
    )


def plan(
    *injections: InjectionInput,
    goal: str = "rejuvenation",
    indications: tuple[str, ...] = ("skin_quality",),
    combined_with: tuple[str, ...] = (),
    finalising: bool = False,
) -> PlanInput:
    return PlanInput(
        goal=goal,
        indications=indications,
        combined_with=combined_with,
        injections=tuple(injections),
        finalising=finalising,
    )


def fired(findings: list[Finding]) -> list[tuple[str, str, str | None, int | None]]:
    return [(f.rule, f.severity.value, f.zone, f.injection) for f in findings]


def rules_fired(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings}


def test_a_plan_inside_every_documented_range_has_no_findings():
    findings = evaluate(plan(inj(), inj("UPPER_LIP", volume="0.5", gauge=30)), REF)
    assert findings == []


# ZONE_VOLUME_ABOVE_MAX / ZONE_VOLUME_BELOW_MIN (0.2-0.5 mL per zone, ref 5)


@pytest.mark.parametrize(
    ("volume", "expected"),
    [
        ("0.1", [("ZONE_VOLUME_BELOW_MIN", "warning", "CHEEK_L", None)]),
        ("0.19", [("ZONE_VOLUME_BELOW_MIN", "warning", "CHEEK_L", None)]),
        ("0.199", [("ZONE_VOLUME_BELOW_MIN", "warning", "CHEEK_L", None)]),
        ("0.2", []),
        ("0.20", []),
        ("0.35", []),
        ("0.5", []),
        ("0.500", []),
        ("0.501", [("ZONE_VOLUME_ABOVE_MAX", "error", "CHEEK_L", None)]),
        ("0.51", [("ZONE_VOLUME_ABOVE_MAX", "error", "CHEEK_L", None)]),
        ("2", [("ZONE_VOLUME_ABOVE_MAX", "error", "CHEEK_L", None)]),
    ],
)
def test_it_checks_the_zone_volume_at_each_boundary(volume, expected):
    assert fired(evaluate(plan(inj(volume=volume)), REF)) == expected


def test_it_adds_up_every_injection_of_a_zone_and_reports_the_zone_once():
    findings = evaluate(
        plan(inj(volume="0.3"), inj("FOREHEAD", volume="0.3"), inj(volume="0.30")), REF
    )
    assert fired(findings) == [("ZONE_VOLUME_ABOVE_MAX", "error", "CHEEK_L", None)]
    assert findings[0].message == (
        "CHEEK_L: 0.6 mL planned in total, above the documented 0.2\u20130.5 mL per treatment "
        "zone. Reduce the volume or split it over another session."
    )
    assert findings[0].sources == (5,)


def test_two_small_injections_in_one_zone_are_not_each_below_the_minimum():
    assert evaluate(plan(inj(volume="0.1"), inj(volume="0.1")), REF) == []


def test_it_reports_each_zone_outside_the_range_separately():
    findings = evaluate(
        plan(inj("FOREHEAD", volume="0.6"), inj("CHEEK_L", volume="0.1"), inj("GLABELLA")), REF
    )
    assert fired(findings) == [
        ("ZONE_VOLUME_ABOVE_MAX", "error", "FOREHEAD", None),
        ("ZONE_VOLUME_BELOW_MIN", "warning", "CHEEK_L", None),
    ]
    assert findings[1].message == (
        "CHEEK_L: 0.1 mL planned in total, below the documented 0.2\u20130.5 mL per treatment "
        "zone. Increase the volume, or record why less is enough."
    )


def test_volumes_add_up_exactly_in_decimal():
    assert evaluate(plan(inj(volume="0.1"), inj(volume="0.2"), inj(volume="0.2")), REF) == []
    assert zone_totals(plan(inj(volume="0.1"), inj(volume="0.2"), inj(volume="0.2"))) == {
        "CHEEK_L": Decimal("0.5")
    }


@pytest.mark.parametrize("volumes", [("0.17", "0.28", "0.05"), ("0.02", "0.18")])
def test_sums_that_binary_floats_get_wrong_land_exactly_on_the_boundary(volumes):
    # As floats, 0.17 + 0.28 + 0.05 > 0.5 and 0.02 + 0.18 < 0.2: both would fire wrongly.
    total = 0.0
    for v in volumes:
        total += float(v)  # not sum(): since Python 3.12 it compensates the rounding
    assert total not in (0.2, 0.5)
    assert evaluate(plan(*(inj(volume=v) for v in volumes)), REF) == []


def test_zone_totals_follow_the_order_zones_first_appear_in():
    totals = zone_totals(
        plan(inj("FOREHEAD", volume="0.25"), inj("CHEEK_L"), inj("FOREHEAD", volume="0.125"))
    )
    assert list(totals.items()) == [("FOREHEAD", Decimal("0.375")), ("CHEEK_L", Decimal("0.3"))]


# GAUGE_TOO_LARGE_BORE / GAUGE_FINER_THAN_RANGE (27-30 G needle, 25 G cannula, refs 5, 3)


@pytest.mark.parametrize(
    ("instrument", "gauge", "expected"),
    [
        ("needle", 18, [("GAUGE_TOO_LARGE_BORE", "error", "CHEEK_L", 0)]),
        ("needle", 26, [("GAUGE_TOO_LARGE_BORE", "error", "CHEEK_L", 0)]),
        ("needle", 27, []),
        ("needle", 28, []),
        ("needle", 30, []),
        ("needle", 31, [("GAUGE_FINER_THAN_RANGE", "warning", "CHEEK_L", 0)]),
        ("needle", 34, [("GAUGE_FINER_THAN_RANGE", "warning", "CHEEK_L", 0)]),
        ("cannula", 22, [("GAUGE_TOO_LARGE_BORE", "error", "CHEEK_L", 0)]),
        ("cannula", 24, [("GAUGE_TOO_LARGE_BORE", "error", "CHEEK_L", 0)]),
        ("cannula", 25, []),
        ("cannula", 26, [("GAUGE_FINER_THAN_RANGE", "warning", "CHEEK_L", 0)]),
        ("cannula", 27, [("GAUGE_FINER_THAN_RANGE", "warning", "CHEEK_L", 0)]),
    ],
)
def test_it_checks_the_gauge_against_the_range_for_the_instrument(instrument, gauge, expected):
    findings = evaluate(plan(inj(instrument=instrument, gauge=gauge)), REF)
    assert fired(findings) == expected
    for finding in findings:
        assert finding.sources == (5, 3)
        assert finding.citation == "clinical summary, refs 5, 3"


def test_gauge_messages_give_the_gauge_found_and_the_documented_range():
    [needle] = evaluate(plan(inj(gauge=26)), REF)
    assert needle.message == (
        "CHEEK_L: 26 G needle, a larger bore than the documented 27\u201330 G for a needle. "
        "Use a 27\u201330 G needle."
    )
    [cannula] = evaluate(plan(inj(instrument="cannula", gauge=26)), REF)
    assert cannula.message == (
        "CHEEK_L: 26 G cannula, finer than the documented 25 G for a cannula. Use a 25 G "
        "cannula, or record why a finer one suits this patient."
    )


def test_a_needle_gauge_valid_for_a_cannula_is_still_checked_as_a_needle():
    assert rules_fired(evaluate(plan(inj(instrument="needle", gauge=25)), REF)) == {
        "GAUGE_TOO_LARGE_BORE"
    }
    assert rules_fired(evaluate(plan(inj(instrument="cannula", gauge=27)), REF)) == {
        "GAUGE_FINER_THAN_RANGE"
    }


def test_an_unknown_instrument_is_an_invalid_plan_not_a_silent_pass():
    with pytest.raises(InvalidPlan) as raised:
        evaluate(plan(inj(), inj(instrument="trocar")), REF)
    assert raised.value.field == "injections[1].instrument"


# DEPTH_NOT_ALLOWED, PERIORAL_BELOW_ORBICULARIS, PERIORAL_TOO_SUPERFICIAL


@pytest.mark.parametrize(
    ("depth", "expected"),
    [
        ("superficial_dermis", set()),
        ("dermis", set()),
        ("subdermis", set()),
        ("subcutaneous", {"DEPTH_NOT_ALLOWED"}),
        ("intramuscular", {"DEPTH_NOT_ALLOWED"}),
        ("supraperiosteal", {"DEPTH_NOT_ALLOWED"}),
    ],
)
def test_outside_the_perioral_zones_only_dermis_and_immediate_subdermis_are_allowed(
    depth, expected
):
    findings = evaluate(plan(inj("CHEEK_L", depth=depth)), REF)
    assert rules_fired(findings) == expected
    assert all(f.severity is Severity.ERROR and f.injection == 0 for f in findings)


@pytest.mark.parametrize(
    ("depth", "expected"),
    [
        ("superficial_dermis", [("PERIORAL_TOO_SUPERFICIAL", "warning", "UPPER_LIP", 0)]),
        ("dermis", []),
        ("subdermis", []),
        # Subcutaneous fat lies above the orbicularis oris: outside the documented depths, but
        # not below the muscle.
        ("subcutaneous", [("DEPTH_NOT_ALLOWED", "error", "UPPER_LIP", 0)]),
        (
            "intramuscular",
            [
                ("DEPTH_NOT_ALLOWED", "error", "UPPER_LIP", 0),
                ("PERIORAL_BELOW_ORBICULARIS", "error", "UPPER_LIP", 0),
            ],
        ),
        (
            "supraperiosteal",
            [
                ("DEPTH_NOT_ALLOWED", "error", "UPPER_LIP", 0),
                ("PERIORAL_BELOW_ORBICULARIS", "error", "UPPER_LIP", 0),
            ],
        ),
    ],
)
def test_in_a_perioral_zone_it_also_keeps_the_depth_above_the_orbicularis_oris(depth, expected):
    assert fired(evaluate(plan(inj("UPPER_LIP", depth=depth)), REF)) == expected


def test_every_depth_of_the_vocabulary_is_covered_by_the_depth_tests():
    assert set(DEPTHS) == {
        "superficial_dermis",
        "dermis",
        "subdermis",
        "subcutaneous",
        "intramuscular",
        "supraperiosteal",
    }


def test_perioral_rules_follow_the_region_not_the_zone_name():
    lip_elsewhere = dataclasses.replace(inj("UPPER_LIP", depth="intramuscular"), region="midface")
    assert rules_fired(evaluate(plan(lip_elsewhere), REF)) == {"DEPTH_NOT_ALLOWED"}
    cheek_perioral = dataclasses.replace(
        inj("CHEEK_L", depth="superficial_dermis"), region=PERIORAL
    )
    assert rules_fired(evaluate(plan(cheek_perioral), REF)) == {"PERIORAL_TOO_SUPERFICIAL"}


def test_depth_messages_name_the_depth_and_cite_their_sources():
    deep, below = evaluate(plan(inj("LOWER_LIP", depth="intramuscular")), REF)
    assert deep.message == (
        "LOWER_LIP: intramuscular injection is outside the documented depths (superficial "
        "dermis, dermis, immediate subdermis). Inject at one of those depths."
    )
    assert deep.citation == "clinical summary, refs 1, 5, 3"
    assert below.message == (
        "LOWER_LIP: intramuscular injection in a perioral zone is at or below the orbicularis "
        "oris muscle. Stay above the muscle, in the dermis or immediate subdermis, to avoid "
        "vascular injury."
    )
    assert below.citation == "clinical summary, ref 5"
    [superficial] = evaluate(plan(inj("MARIONETTE_L", depth="superficial_dermis")), REF)
    assert superficial.citation == "clinical summary, ref 5"
    assert superficial.message.startswith("MARIONETTE_L: superficial dermis injection")


# TECHNIQUE_NOT_RETROGRADE (ref 5)


@pytest.mark.parametrize("technique", TECHNIQUES)
def test_only_retrograde_injection_passes_without_a_warning(technique):
    findings = evaluate(plan(inj(technique=technique)), REF)
    if technique == "retrograde":
        assert findings == []
    else:
        assert fired(findings) == [("TECHNIQUE_NOT_RETROGRADE", "warning", "CHEEK_L", 0)]
        assert findings[0].message == (
            f"CHEEK_L: {technique} technique; the documented technique is retrograde "
            "injection. Inject retrograde, or record why not."
        )
        assert findings[0].citation == "clinical summary, ref 5"


# VOLUMIZATION_GOAL (refs 5, 3)


@pytest.mark.parametrize(
    ("goal", "expected"),
    [("rejuvenation", []), ("scar", []), ("volumization", [("VOLUMIZATION_GOAL", "error")])],
)
def test_volume_restoration_as_the_primary_goal_is_an_error(goal, expected):
    findings = evaluate(plan(inj(), goal=goal), REF)
    assert [(f.rule, f.severity.value) for f in findings] == expected
    if findings:
        assert findings[0].zone is None
        assert findings[0].injection is None
        assert findings[0].citation == "clinical summary, refs 5, 3"
        assert "does not last beyond 3 months" in findings[0].message
        assert "hyaluronic acid" in findings[0].message


# INDICATION_NOT_DOCUMENTED (refs 1, 2, 3, 4, 6)


@pytest.mark.parametrize("indication", DOCUMENTED_INDICATIONS)
def test_each_documented_indication_passes(indication):
    assert evaluate(plan(inj(), indications=(indication,)), REF) == []


def test_each_undocumented_indication_is_a_warning_of_its_own():
    findings = evaluate(
        plan(inj(), indications=("rosacea", "skin_quality", "acne", "rosacea")), REF
    )
    assert [(f.rule, f.severity.value, f.zone, f.injection, f.subject) for f in findings] == [
        ("INDICATION_NOT_DOCUMENTED", "warning", None, None, "acne"),
        ("INDICATION_NOT_DOCUMENTED", "warning", None, None, "rosacea"),
    ]
    assert findings[0].key != findings[1].key
    assert findings[1].message.startswith("Indication 'rosacea' is not among the documented")
    assert findings[1].citation == "clinical summary, refs 1, 2, 3, 4, 6"


def test_a_plan_without_indications_has_no_indication_finding():
    assert evaluate(plan(inj(), indications=()), REF) == []


# NO_INJECTIONS


@pytest.mark.parametrize(
    ("finalising", "injections", "expected"),
    [
        (True, (), [("NO_INJECTIONS", "error", None, None)]),
        (False, (), []),
        (True, (inj(),), []),
    ],
)
def test_only_finalising_a_plan_without_injections_is_an_error(finalising, injections, expected):
    findings = evaluate(plan(*injections, finalising=finalising), REF)
    assert fired(findings) == expected
    if findings:
        assert findings[0].sources == ()
        assert findings[0].citation == ""


# The reference snapshot drives every rule.


def test_changing_the_maximum_volume_in_the_snapshot_changes_the_verdict():
    generous = dataclasses.replace(
        REF, zone_volume_ml=Range(Decimal("0.2"), Decimal("0.6"), "mL", (5,))
    )
    at_new_max = plan(inj(volume="0.6"))
    assert fired(evaluate(at_new_max, REF)) == [("ZONE_VOLUME_ABOVE_MAX", "error", "CHEEK_L", None)]
    assert evaluate(at_new_max, generous) == []
    [above] = evaluate(plan(inj(volume="0.65")), generous)
    assert "documented 0.2\u20130.6 mL per treatment zone" in above.message


def test_changing_the_other_reference_values_changes_the_rules_and_their_messages():
    ref = dataclasses.replace(
        REF,
        needle_gauge=Range(Decimal("25"), Decimal("32"), "G", (9,)),
        cannula_gauge=Range(Decimal("22"), Decimal("27"), "G", (9,)),
        allowed_depths=Choice(frozenset({"dermis", "subcutaneous"}), (7,)),
        recommended_techniques=Choice(frozenset({"retrograde", "fanning"}), (8,)),
        documented_indications=Choice(frozenset({"rosacea"}), (2,)),
        volume_effect_months=Range(Decimal("0"), Decimal("6"), "months", (5,)),
    )
    quiet = plan(
        inj(gauge=32, depth="subcutaneous", technique="fanning"),
        inj("FOREHEAD", instrument="cannula", gauge=22),
        indications=("rosacea",),
    )
    assert evaluate(quiet, ref) == []
    [gauge] = evaluate(plan(inj(gauge=33), indications=("rosacea",)), ref)
    assert "documented 25\u201332 G for a needle" in gauge.message
    assert gauge.sources == (9,)
    [depth] = evaluate(plan(inj(depth="subdermis"), indications=("rosacea",)), ref)
    assert "(dermis, subcutaneous)" in depth.message
    assert depth.citation == "clinical summary, ref 7"
    [goal] = evaluate(plan(inj(), goal="volumization", indications=("rosacea",)), ref)
    assert "does not last beyond 6 months" in goal.message


# Ordering, keys, citations, output format.


def test_findings_come_worst_first_then_plan_zone_and_injection_order():
    findings = evaluate(
        plan(
            inj("UPPER_LIP", volume="0.1", gauge=31, technique="bolus"),
            inj("FOREHEAD", volume="0.6", gauge=26, depth="intramuscular"),
            inj("CHEEK_L", volume="0.3", depth="superficial_dermis"),
            goal="volumization",
            indications=("rosacea",),
        ),
        REF,
    )
    assert fired(findings) == [
        ("VOLUMIZATION_GOAL", "error", None, None),
        ("ZONE_VOLUME_ABOVE_MAX", "error", "FOREHEAD", None),
        ("DEPTH_NOT_ALLOWED", "error", "FOREHEAD", 1),
        ("GAUGE_TOO_LARGE_BORE", "error", "FOREHEAD", 1),
        ("INDICATION_NOT_DOCUMENTED", "warning", None, None),
        ("ZONE_VOLUME_BELOW_MIN", "warning", "UPPER_LIP", None),
        ("GAUGE_FINER_THAN_RANGE", "warning", "UPPER_LIP", 0),
        ("TECHNIQUE_NOT_RETROGRADE", "warning", "UPPER_LIP", 0),
    ]
    assert worst_severity(findings) is Severity.ERROR
    assert has_errors(findings)


def test_worst_severity_and_has_errors():
    warning = Finding("TECHNIQUE_NOT_RETROGRADE", Severity.WARNING, "m", (5,))
    info = Finding("NOTE", Severity.INFO, "m", ())
    error = Finding("NO_INJECTIONS", Severity.ERROR, "m", ())
    assert worst_severity([]) is None
    assert worst_severity([info]) is Severity.INFO
    assert worst_severity([info, warning, info]) is Severity.WARNING
    assert worst_severity([warning, error, info]) is Severity.ERROR
    assert not has_errors([info, warning])
    assert has_errors([info, error])
    assert Severity.ERROR.rank > Severity.WARNING.rank > Severity.INFO.rank


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        ((5,), "clinical summary, ref 5"),
        ((5, 3), "clinical summary, refs 5, 3"),
        ((1, 2, 3, 4, 6), "clinical summary, refs 1, 2, 3, 4, 6"),
        ((), ""),
    ],
)
def test_citations_read_like_the_design_asks(sources, expected):
    assert Finding("R", Severity.WARNING, "m", sources).citation == expected


def test_keys_identify_a_finding_by_rule_zone_and_injection():
    assert Finding("R", Severity.WARNING, "m", (), zone="CHEEK_L", injection=2).key == "R:CHEEK_L:2"
    assert Finding("R", Severity.WARNING, "m", (), zone="CHEEK_L", injection=0).key == "R:CHEEK_L:0"
    assert Finding("R", Severity.WARNING, "m", (), zone="CHEEK_L").key == "R:CHEEK_L:"
    assert Finding("R", Severity.WARNING, "m", ()).key == "R::"
    assert Finding("R", Severity.WARNING, "m", (), subject="acne").key == "R:::acne"


def test_findings_serialise_exactly_as_check_plan_prints_them():
    [finding] = evaluate(plan(inj("UPPER_LIP", technique="bolus")), REF)
    as_dict = finding.as_dict()
    assert list(as_dict) == ["rule", "severity", "zone", "injection", "message", "sources"]
    assert as_dict == {
        "rule": "TECHNIQUE_NOT_RETROGRADE",
        "severity": "warning",
        "zone": "UPPER_LIP",
        "injection": 0,
        "message": "UPPER_LIP: bolus technique; the documented technique is retrograde "
        "injection. Inject retrograde, or record why not.",
        "sources": [5],
    }
    json.dumps(as_dict)  # plain JSON types only


DESIGN_EXAMPLE = """
{"goal": "rejuvenation", "indications": ["fine_lines"], "combined_with": ["prf"],
 "injections": [{"zone": "UPPER_LIP", "volume_ml": "0.3", "instrument": "needle",
                 "gauge": 27, "depth": "subdermis", "technique": "retrograde"}]}
"""


def check_plan_output(data: object) -> dict:
    """What `check_plan` prints, built the way the command builds it."""
    findings = evaluate(plan_from_dict(data, ZONE_REGIONS), REF)
    return {"ok": not has_errors(findings), "findings": [f.as_dict() for f in findings]}


def test_the_design_contract_example_is_a_valid_plan_without_findings():
    data = json.loads(DESIGN_EXAMPLE)
    parsed = plan_from_dict(data, ZONE_REGIONS)
    assert parsed == PlanInput(
        goal="rejuvenation",
        indications=("fine_lines",),
        combined_with=("prf",),
        injections=(
            InjectionInput(
                zone="UPPER_LIP",
                region=PERIORAL,
                volume_ml=Decimal("0.3"),
                instrument="needle",
                gauge=27,
                depth="subdermis",
                technique="retrograde",
            ),
        ),
    )
    assert check_plan_output(data) == {"ok": True, "findings": []}


def test_the_design_contract_example_made_intramuscular_gives_the_documented_output_shape():
    data = json.loads(DESIGN_EXAMPLE)
    data["injections"][0]["depth"] = "intramuscular"
    assert json.loads(json.dumps(check_plan_output(data))) == {
        "ok": False,
        "findings": [
            {
                "rule": "DEPTH_NOT_ALLOWED",
                "severity": "error",
                "zone": "UPPER_LIP",
                "injection": 0,
                "message": "UPPER_LIP: intramuscular injection is outside the documented depths "
                "(superficial dermis, dermis, immediate subdermis). Inject at one of those depths.",
                "sources": [1, 5, 3],
            },
            {
                "rule": "PERIORAL_BELOW_ORBICULARIS",
                "severity": "error",
                "zone": "UPPER_LIP",
                "injection": 0,
                "message": "UPPER_LIP: intramuscular injection in a perioral zone is at or below "
                "the orbicularis oris muscle. Stay above the muscle, in the dermis or immediate "
                "subdermis, to avoid vascular injury.",
                "sources": [5],
            },
        ],
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0.50"), "0.5"),
        (Decimal("0.500"), "0.5"),
        (Decimal("1E+1"), "10"),
        (Decimal("1E-3"), "0.001"),
        (Decimal("0.000"), "0"),
        (Decimal("27"), "27"),
        (Decimal("3.0"), "3"),
        (27, "27"),
    ],
)
def test_numbers_are_written_without_exponent_or_trailing_zeros(value, expected):
    assert format_decimal(value) == expected


# advice(): the consent sheet's information, separate from the rule findings.


def test_advice_always_explains_the_lack_of_durable_volume_and_the_expected_course():
    notes = advice(plan(inj()), REF)
    assert [(n.rule, n.severity.value, n.citation) for n in notes] == [
        (NO_DURABLE_VOLUME, "info", "clinical summary, refs 5, 3"),
        (EXPECTED_COURSE, "info", "clinical summary, ref 5"),
    ]
    assert "does not last beyond 3 months" in notes[0].message
    assert "bruising, swelling and tenderness" in notes[1].message
    assert "days to weeks" in notes[1].message
    assert "mild pain" in notes[1].message


def test_advice_mentions_the_combination_therapy_when_one_is_planned():
    notes = advice(plan(inj(), combined_with=("prp", "prf")), REF)
    [combination] = [n for n in notes if n.rule == COMBINATION_THERAPY]
    assert combination.message.startswith("Combined with PRF, PRP:")
    assert combination.citation == "clinical summary, ref 1"


def test_evaluate_does_not_include_the_advice():
    assert evaluate(plan(inj(), combined_with=("prf",)), REF) == []


def test_advice_takes_the_duration_from_the_snapshot():
    ref = dataclasses.replace(
        REF, volume_effect_months=Range(Decimal("0"), Decimal("4"), "months", (5, 3))
    )
    assert "does not last beyond 4 months" in advice(plan(), ref)[0].message


# plan_from_dict: strict parsing of the check_plan JSON.


MISSING = object()  # marks a key to delete


def valid_data() -> dict:
    return {
        "goal": "rejuvenation",
        "indications": ["fine_lines"],
        "combined_with": ["prf"],
        "injections": [
            {
                "zone": "CHEEK_L",
                "volume_ml": "0.3",
                "instrument": "needle",
                "gauge": 27,
                "depth": "dermis",
                "technique": "retrograde",
            },
            {
                "zone": "UPPER_LIP",
                "volume_ml": "0.3",
                "instrument": "cannula",
                "gauge": 25,
                "depth": "subdermis",
                "technique": "retrograde",
            },
        ],
    }


def with_plan(**changes) -> dict:
    data = valid_data()
    for key, value in changes.items():
        if value is MISSING:
            del data[key]
        else:
            data[key] = value
    return data


def with_second_injection(**changes) -> dict:
    data = valid_data()
    for key, value in changes.items():
        if value is MISSING:
            del data["injections"][1][key]
        else:
            data["injections"][1][key] = value
    return data


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ([], "plan: must be a JSON object, got a list"),
        ("plan", "plan: must be a JSON object, got 'plan'"),
        (None, "plan: must be a JSON object, got null"),
        (with_plan(goal=MISSING), "goal: missing"),
        (
            with_plan(goal="volume"),
            "goal: unknown goal 'volume'; expected one of rejuvenation, scar, volumization",
        ),
        (with_plan(indications=MISSING), "indications: missing"),
        (with_plan(indications="fine_lines"), "indications: must be a list, got 'fine_lines'"),
        (
            with_plan(indications=["fine_lines", ""]),
            "indications[1]: must be a non-empty string, got ''",
        ),
        (
            with_plan(indications=["fine_lines", 3]),
            "indications[1]: must be a non-empty string, got 3",
        ),
        (with_plan(combined_with="prf"), "combined_with: must be a list, got 'prf'"),
        (
            with_plan(combined_with=["prf", "none"]),
            "combined_with[1]: unknown combination 'none'; leave the list empty for no "
            "combination therapy",
        ),
        (
            with_plan(combined_with=["botox"]),
            "combined_with[0]: unknown combination 'botox'; expected one of prf, prp",
        ),
        (with_plan(injections=MISSING), "injections: missing"),
        (with_plan(injections={"zone": "CHEEK_L"}), "injections: must be a list, got an object"),
        (with_plan(injections="none"), "injections: must be a list, got 'none'"),
        (with_plan(finalising="yes"), "finalising: must be true or false, got 'yes'"),
        (
            with_plan(injections=[valid_data()["injections"][0], 3]),
            "injections[1]: must be an object, got 3",
        ),
        (with_second_injection(zone=MISSING), "injections[1].zone: missing"),
        (with_second_injection(zone="FOO"), "injections[1].zone: unknown zone code 'FOO'"),
        (
            with_second_injection(zone="upper_lip"),
            "injections[1].zone: unknown zone code 'upper_lip'",
        ),
        (with_second_injection(zone=7), "injections[1].zone: unknown zone code 7"),
        (with_second_injection(volume_ml=MISSING), "injections[1].volume_ml: missing"),
        (
            with_second_injection(volume_ml="abc"),
            "injections[1].volume_ml: must be a positive number of mL, got 'abc'",
        ),
        (
            with_second_injection(volume_ml="-0.3"),
            "injections[1].volume_ml: must be a positive number of mL, got '-0.3'",
        ),
        (
            with_second_injection(volume_ml=-0.3),
            "injections[1].volume_ml: must be a positive number of mL, got -0.3",
        ),
        (
            with_second_injection(volume_ml=0),
            "injections[1].volume_ml: must be a positive number of mL, got 0",
        ),
        (
            with_second_injection(volume_ml="0.000"),
            "injections[1].volume_ml: must be a positive number of mL, got '0.000'",
        ),
        (
            with_second_injection(volume_ml="NaN"),
            "injections[1].volume_ml: must be a positive number of mL, got 'NaN'",
        ),
        (
            with_second_injection(volume_ml=float("nan")),
            "injections[1].volume_ml: must be a positive number of mL, got NaN",
        ),
        (
            with_second_injection(volume_ml="Infinity"),
            "injections[1].volume_ml: must be a positive number of mL, got 'Infinity'",
        ),
        (
            with_second_injection(volume_ml=float("inf")),
            "injections[1].volume_ml: must be a positive number of mL, got Infinity",
        ),
        (
            with_second_injection(volume_ml="1e309"),
            "injections[1].volume_ml: must be at most 20 mL, got '1e309'",
        ),
        (
            with_second_injection(volume_ml=20.01),
            "injections[1].volume_ml: must be at most 20 mL, got 20.01",
        ),
        (
            with_second_injection(volume_ml="0.125"),
            "injections[1].volume_ml: must have at most 2 decimal places, got '0.125'",
        ),
        (
            with_second_injection(volume_ml=0.001),
            "injections[1].volume_ml: must have at most 2 decimal places, got 0.001",
        ),
        (
            with_second_injection(volume_ml=True),
            "injections[1].volume_ml: must be a positive number of mL, got true",
        ),
        (
            with_second_injection(volume_ml=None),
            "injections[1].volume_ml: must be a positive number of mL, got null",
        ),
        (
            with_second_injection(volume_ml="1_0"),
            "injections[1].volume_ml: must be a positive number of mL, got '1_0'",
        ),
        (
            with_second_injection(volume_ml=["0.3"]),
            "injections[1].volume_ml: must be a positive number of mL, got a list",
        ),
        (with_second_injection(gauge=MISSING), "injections[1].gauge: missing"),
        (
            with_second_injection(gauge=True),
            "injections[1].gauge: must be a whole number, got true",
        ),
        (
            with_second_injection(gauge=27.5),
            "injections[1].gauge: must be a whole number, got 27.5",
        ),
        (
            with_second_injection(gauge="27"),
            "injections[1].gauge: must be a whole number (a JSON number, not a string), got '27'",
        ),
        (
            with_second_injection(gauge=None),
            "injections[1].gauge: must be a whole number, got null",
        ),
        (
            with_second_injection(gauge=9),
            "injections[1].gauge: must be between 10 and 34, got 9",
        ),
        (
            with_second_injection(gauge=35),
            "injections[1].gauge: must be between 10 and 34, got 35",
        ),
        (
            with_second_injection(gauge=-27),
            "injections[1].gauge: must be between 10 and 34, got -27",
        ),
        (with_second_injection(instrument=MISSING), "injections[1].instrument: missing"),
        (
            with_second_injection(instrument="trocar"),
            "injections[1].instrument: unknown instrument 'trocar'; expected one of needle, "
            "cannula",
        ),
        (with_second_injection(depth=MISSING), "injections[1].depth: missing"),
        (
            with_second_injection(depth="deep"),
            "injections[1].depth: unknown depth 'deep'; expected one of superficial_dermis, "
            "dermis, subdermis, subcutaneous, intramuscular, supraperiosteal",
        ),
        (with_second_injection(technique=MISSING), "injections[1].technique: missing"),
        (
            with_second_injection(technique="linear"),
            "injections[1].technique: unknown technique 'linear'; expected one of retrograde, "
            "anterograde, bolus, fanning",
        ),
    ],
)
def test_plan_from_dict_names_the_bad_field(data, error):
    with pytest.raises(InvalidPlan) as raised:
        plan_from_dict(data, ZONE_REGIONS)
    assert str(raised.value) == error
    assert raised.value.field == error.split(":")[0]
    assert isinstance(raised.value, ValueError)


def test_plan_from_dict_does_not_change_its_input():
    data = valid_data()
    before = copy.deepcopy(data)
    plan_from_dict(data, ZONE_REGIONS)
    assert data == before


@pytest.mark.parametrize(
    ("volume", "expected"),
    [
        ("0.3", Decimal("0.3")),
        (" 0.3 ", Decimal("0.3")),
        ("0.300", Decimal("0.3")),
        (".25", Decimal("0.25")),
        ("3e-1", Decimal("0.3")),
        (0.1, Decimal("0.1")),
        (0.15, Decimal("0.15")),
        ("0.2500", Decimal("0.25")),
        (1, Decimal("1")),
        (Decimal("0.45"), Decimal("0.45")),
        (20, Decimal("20")),
        ("20.00", Decimal("20")),
    ],
)
def test_plan_from_dict_reads_volumes_exactly(volume, expected):
    parsed = plan_from_dict(with_second_injection(volume_ml=volume), ZONE_REGIONS)
    assert parsed.injections[1].volume_ml == expected
    assert isinstance(parsed.injections[1].volume_ml, Decimal)


def test_float_volumes_add_up_as_the_decimals_they_were_written_as():
    data = valid_data()
    data["injections"] = [dict(data["injections"][0], volume_ml=v) for v in (0.1, 0.2, 0.2)]
    assert evaluate(plan_from_dict(data, ZONE_REGIONS), REF) == []


@pytest.mark.parametrize(("gauge", "expected"), [(27, 27), (30, 30), (27.0, 27), (Decimal(25), 25)])
def test_plan_from_dict_reads_whole_gauges(gauge, expected):
    parsed = plan_from_dict(with_second_injection(instrument="needle", gauge=gauge), ZONE_REGIONS)
    assert parsed.injections[1].gauge == expected


def test_plan_from_dict_defaults_and_tolerances():
    data = with_plan(combined_with=MISSING, indications=[" rosacea ", "fine_lines", "rosacea"])
    data["donor_site"] = "abdomen"  # keys the format does not define are ignored
    data["injections"][0]["notes"] = "slowly"
    parsed = plan_from_dict(data, ZONE_REGIONS)
    assert parsed.combined_with == ()
    assert parsed.indications == ("rosacea", "fine_lines")
    assert parsed.finalising is False
    assert [i.region for i in parsed.injections] == ["midface", PERIORAL]
    assert plan_from_dict(with_plan(combined_with=[]), ZONE_REGIONS).combined_with == ()
    assert plan_from_dict(with_plan(injections=[]), ZONE_REGIONS).injections == ()


def test_plan_from_dict_reads_finalising():
    parsed = plan_from_dict(with_plan(injections=[], finalising=True), ZONE_REGIONS)
    assert parsed.finalising is True
    assert [f.rule for f in evaluate(parsed, REF)] == ["NO_INJECTIONS"]


def test_invalid_plan_carries_its_field_and_message():
    error = InvalidPlan("injections[2].volume_ml", "must be a positive number of mL, got 'abc'")
    assert str(error) == "injections[2].volume_ml: must be a positive number of mL, got 'abc'"
    assert error.field == "injections[2].volume_ml"


def test_a_yield_below_the_planned_total_is_an_error_naming_both_volumes():
    from planner.rules import YIELD_BELOW_PLANNED, Severity, check_yield

    (finding,) = check_yield(Decimal("1.5"), Decimal("1.49"))
    assert (finding.rule, finding.severity) == (YIELD_BELOW_PLANNED, Severity.ERROR)
    assert "1.49 mL" in finding.message
    assert "1.5 mL planned" in finding.message


def test_a_yield_equal_to_or_above_the_planned_total_is_fine():
    from planner.rules import check_yield

    assert check_yield(Decimal("1.5"), Decimal("1.5")) == []
    assert check_yield(Decimal("1.5"), Decimal("4")) == []


# The consent sheet's words for findings


def test_every_rule_has_a_title_in_plain_words():
    assert set(RULE_TITLES) == set(RULES)
    assert all("_" not in title and title[0].isupper() for title in RULE_TITLES.values())


def test_the_patients_words_name_the_zone_instead_of_its_code():
    finding = evaluate(plan(inj(zone="CHEEK_L", technique="fanning")), REF)[0]

    title, message = in_plain_words(finding, {"CHEEK_L": "Cheek (left)"})

    assert title == "An injection technique other than the documented one"
    assert message.startswith("Cheek (left): fanning technique; ")
    assert "CHEEK_L" not in message


def test_a_zone_level_finding_is_named_too_and_a_plan_level_one_is_left_as_it_is():
    findings = evaluate(
        plan(inj(zone="FOREHEAD", volume="0.6"), goal="volumization"),
        REF,
    )
    names = {"FOREHEAD": "Forehead"}
    by_rule = {f.rule: in_plain_words(f, names) for f in findings}

    assert by_rule["ZONE_VOLUME_ABOVE_MAX"][1].startswith("Forehead: 0.6 mL planned in total")
    assert by_rule["VOLUMIZATION_GOAL"][1] == next(
        f.message for f in findings if f.rule == "VOLUMIZATION_GOAL"
    )


def test_a_zone_without_a_known_name_keeps_its_code():
    finding = evaluate(plan(inj(zone="CHEEK_L", technique="bolus")), REF)[0]
    assert in_plain_words(finding, {})[1].startswith("CHEEK_L: bolus technique")

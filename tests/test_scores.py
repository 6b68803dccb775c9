"""The pure score and interval modules: every bound, at and beyond it (no Django, no database).

Runs under ``pytest -p no:django`` too.
"""

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner import intervals, scores

BOUNDED = [pytest.param(item, id=item.field) for item in scores.ALL_ITEMS]


@pytest.mark.parametrize("item", BOUNDED)
def test_each_item_accepts_its_lowest_and_highest_score(item):
    assert scores.check_item(item, item.low) == item.low
    assert scores.check_item(item, str(item.high)) == item.high


@pytest.mark.parametrize("item", BOUNDED)
def test_each_item_refuses_one_below_its_range_with_the_range_in_the_message(item):
    with pytest.raises(scores.ScoreError) as refused:
        scores.check_item(item, item.low - 1)
    message = refused.value.errors[item.field][0]
    assert f"{item.low} to {item.high}" in message
    assert "below the scale" in message
    assert item.label in message


@pytest.mark.parametrize("item", BOUNDED)
def test_each_item_refuses_one_above_its_range(item):
    with pytest.raises(scores.ScoreError) as refused:
        scores.check_item(item, str(item.high + 1))
    assert "above the scale" in refused.value.errors[item.field][0]


@pytest.mark.parametrize("raw", ["3.5", "three", "1e3", True, 2.5, [], "0x3"])
def test_it_refuses_anything_but_a_whole_number(raw):
    with pytest.raises(scores.ScoreError) as refused:
        scores.check_item(scores.GAIS_SURGEON, raw)
    assert "whole number" in str(refused.value)


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_blank_means_not_scored(raw):
    assert scores.check_item(scores.GAIS_SURGEON, raw) is None


def test_the_documented_ranges():
    assert scores.POSAS_PATIENT.total_range == (6, 60)
    assert scores.POSAS_OBSERVER.total_range == (6, 60)
    assert scores.VSS.total_range == (0, 13)
    assert [(i.low, i.high) for i in scores.VSS.items] == [(0, 3), (0, 2), (0, 5), (0, 3)]
    assert len(scores.POSAS_PATIENT.items) == len(scores.POSAS_OBSERVER.items) == 6
    assert (scores.GAIS_SURGEON.low, scores.GAIS_SURGEON.high) == (1, 5)
    assert len(scores.GAIS_LABELS) == 5


def test_the_overall_opinion_is_not_part_of_the_posas_total():
    values = {field: 1 for field in scores.POSAS_PATIENT.fields}
    values["posas_patient_overall"] = 10
    assert scores.total(scores.POSAS_PATIENT, values) == 6
    assert "posas_patient_overall" not in scores.POSAS_PATIENT.fields


def test_a_partly_scored_scale_is_refused_naming_the_missing_items():
    raw = {field: "3" for field in scores.POSAS_OBSERVER.fields[:4]}
    with pytest.raises(scores.ScoreError) as refused:
        scores.validate(raw)
    message = refused.value.errors["posas_observer"][0]
    assert "all 6 items" in message
    assert "Pliability" in message
    assert "Surface area" in message


def test_vancouver_scores_need_the_version_used():
    raw = {field: "1" for field in scores.VSS.fields}
    with pytest.raises(scores.ScoreError) as refused:
        scores.validate(raw)
    assert "version" in refused.value.errors["vss_version"][0]
    cleaned = scores.validate(raw | {"vss_version": "mvss_1995"})
    assert scores.totals(cleaned)["vss"] == 4


def test_a_face_q_score_needs_its_scale_name():
    with pytest.raises(scores.ScoreError) as refused:
        scores.validate({"faceq_total": "70"})
    assert "FACE-Q" in refused.value.errors["faceq_scale"][0]
    assert (
        scores.validate({"faceq_total": "70", "faceq_scale": "Satisfaction with Skin"})[
            "faceq_total"
        ]
        == 70
    )


def test_validate_names_every_problem_at_once():
    with pytest.raises(scores.ScoreError) as refused:
        scores.validate({"gais_surgeon": "0", "satisfaction": "6", "vss_height": "4"})
    assert {"gais_surgeon", "satisfaction", "vss_height"} <= set(refused.value.errors)


@given(st.lists(st.integers(min_value=1, max_value=10), min_size=6, max_size=6))
def test_any_complete_posas_scale_totals_within_6_to_60(values):
    raw = dict(zip(scores.POSAS_PATIENT.fields, values, strict=True))
    total = scores.totals(scores.validate(raw))["posas_patient"]
    assert total == sum(values)
    assert 6 <= total <= 60


@given(
    st.sampled_from(scores.ALL_ITEMS),
    st.one_of(st.integers(max_value=-1), st.integers(min_value=101)),
)
def test_any_value_outside_every_scale_is_refused(item, value):
    with pytest.raises(scores.ScoreError):
        scores.check_item(item, value)


@given(st.data())
def test_any_complete_vss_totals_within_0_to_13(data):
    raw = {
        item.field: data.draw(st.integers(min_value=item.low, max_value=item.high))
        for item in scores.VSS.items
    }
    total = scores.totals(scores.validate(raw | {"vss_version": "vss_1990"}))["vss"]
    assert 0 <= total <= 13


# --- intervals ---------------------------------------------------------------------------------


def test_the_default_schedule_is_one_week_and_one_three_six_twelve_months():
    start = datetime.date(2026, 1, 31)
    due = [(i.label, d) for i, d in intervals.schedule(start, intervals.DEFAULT_INTERVALS)]
    assert due == [
        ("1 week", datetime.date(2026, 2, 7)),
        ("1 month", datetime.date(2026, 2, 28)),  # no 31 February: the last day of the month
        ("3 months", datetime.date(2026, 4, 30)),
        ("6 months", datetime.date(2026, 7, 31)),
        ("12 months", datetime.date(2027, 1, 31)),
    ]


def test_a_leap_day_plus_twelve_months_is_the_28th_of_february():
    assert intervals.add_months(datetime.date(2028, 2, 29), 12) == datetime.date(2029, 2, 28)


def test_an_interval_needs_a_known_unit_and_a_positive_amount():
    with pytest.raises(ValueError, match="unit"):
        intervals.Interval(1, "year")
    with pytest.raises(ValueError, match="at least 1"):
        intervals.Interval(0, "month")


@given(
    st.dates(min_value=datetime.date(2000, 1, 1), max_value=datetime.date(2090, 12, 31)),
    st.integers(min_value=1, max_value=60),
)
def test_months_later_is_always_later_and_within_the_target_month(start, months):
    due = intervals.add_months(start, months)
    assert due > start
    assert (due.year - start.year) * 12 + due.month - start.month == months
    assert due.day <= start.day

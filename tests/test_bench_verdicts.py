"""bench/load.py's verdicts: each target is judged on the median of its paired rounds."""

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "load.py"


@pytest.fixture(scope="module")
def load():
    spec = importlib.util.spec_from_file_location("bench_load", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(load, endpoint, connections, rps, cpu_ms=0.0, p50_ms=1.0):
    requests = int(rps * 3)
    return load.Run(
        endpoint, connections, requests, 3.0, p50_ms, p50_ms * 2, 0, sent=requests,
        cpu_ms=cpu_ms * requests,
    )  # fmt: skip


def a_round(load, bare_rps, validate_rps, *, bare_cpu=1.0, validate_cpu=10.0, growth=None):
    runs = {
        ("bare", 8): run(load, "bare", 8, bare_rps, bare_cpu),
        ("bare", 32): run(load, "bare", 32, bare_rps * 0.9, bare_cpu),
        ("validate", 8): run(load, "validate", 8, validate_rps, validate_cpu),
        ("validate", 32): run(load, "validate", 32, validate_rps * 0.5, validate_cpu),
    }
    if growth is not None:
        runs[("builder5", 1)] = run(load, "builder5", 1, 50, p50_ms=10.0)
        runs[("builder40", 1)] = run(load, "builder40", 1, 40, p50_ms=10.0 * (1 + growth))
    return runs


def checks_named(load, results, words):
    found = [check for check in load.verdicts(results) if all(w in check[0] for w in words)]
    assert len(found) == 1, found
    return found[0]


def test_a_ratio_target_is_judged_on_the_median_of_the_rounds_peak_against_peak(load):
    main = load.BackendResult("PostgreSQL")
    # Peaks: bare 1,000 req/s at 8 connections in each round; validation 100, 160 and 200.
    main.rounds = [a_round(load, 1000, 100), a_round(load, 1000, 200), a_round(load, 1000, 160)]
    target, measured, met = checks_named(load, {"PostgreSQL": main}, ["live validation", "peak"])
    assert "median of 3 rounds" in target
    assert measured == "16.0% (rounds: 10.0%, 20.0%, 16.0%)"
    assert met
    main.rounds[2] = a_round(load, 1000, 140)
    assert not checks_named(load, {"PostgreSQL": main}, ["live validation", "peak"])[2]


def test_one_slow_round_does_not_decide_a_cpu_verdict(load):
    main = load.BackendResult("PostgreSQL")
    main.rounds = [
        a_round(load, 1000, 150, validate_cpu=6.0),
        a_round(load, 1000, 150, validate_cpu=12.0),  # a slow minute of the machine
        a_round(load, 1000, 150, validate_cpu=6.2),
    ]
    _, measured, met = checks_named(load, {"PostgreSQL": main}, ["live validation", "CPU"])
    assert measured.startswith("16.1%")
    assert met


def test_postgresql_against_sqlite_pairs_each_round_with_its_own(load):
    pg, lite = load.BackendResult("PostgreSQL"), load.BackendResult("SQLite")
    pg.rounds = [a_round(load, 1000, v) for v in (80, 90, 100)]
    lite.rounds = [a_round(load, 1000, v) for v in (100, 100, 100)]
    results = {"PostgreSQL": pg, "SQLite": lite}
    _, measured, met = checks_named(load, results, ["SQLite: live validation"])
    assert measured == "0.90 (rounds: 0.80, 0.90, 1.00)"
    assert met
    lite.rounds[1] = a_round(load, 1000, 120)
    assert not checks_named(load, results, ["SQLite: live validation"])[2]


def test_the_builder_growth_is_the_median_of_the_rounds(load):
    main = load.BackendResult("PostgreSQL")
    main.rounds = [a_round(load, 1000, 150, growth=g) for g in (0.2, 0.7, 0.3)]
    _, measured, met = checks_named(load, {"PostgreSQL": main}, ["grows"])
    assert measured == "+30% (rounds: +20%, +70%, +30%)"
    assert met


def test_the_median_of_an_even_number_of_rounds_is_the_mean_of_the_middle_two(load):
    assert load.median_of([3.0, 1.0, 4.0, 2.0]) == 2.5
    assert load.median_of([5.0]) == 5.0


def test_a_target_with_no_round_measuring_it_gives_no_verdict(load):
    main = load.BackendResult("PostgreSQL")
    main.rounds = [{("bare", 8): run(load, "bare", 8, 1000, 1.0)}]
    names = [check[0] for check in load.verdicts({"PostgreSQL": main})]
    assert not [name for name in names if "live validation" in name]
    assert names[-1] == "zero failed requests"

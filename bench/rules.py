"""Benchmark of the rules engine: microseconds per injection for plans of growing size.

Run from the project root: `python bench/rules.py`. It validates plans of 10, 100, 1,000 and
10,000 injections (one in ten of them breaking a rule) and prints, for each size, the time
per injection of `evaluate` alone and of `plan_from_dict` + `evaluate` (the `check_plan` path),
with the ratio to the 10-injection figure: a flat ratio means the cost grows linearly.
Target: under 20 microseconds per injection at every size.
"""

import random
import sys
import timeit
from pathlib import Path

# The project root, so that `planner` imports when run as `python bench/rules.py`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from planner.rules import (
    PERIORAL,
    ReferenceSnapshot,
    evaluate,
    plan_from_dict,
)

SIZES = (10, 100, 1_000, 10_000)
TARGET_US = 20.0
INJECTIONS_PER_MEASURE = 100_000  # each timing covers about this many injections
REPEATS = 5  # best of


def make_plan(size: int, rng: random.Random) -> tuple[dict, dict[str, str]]:
    """A check_plan JSON document of `size` injections and its zone -> region map.

    Two injections per zone keep zone totals in a realistic range; one zone in five is perioral.
    """
    zone_regions = {f"ZONE_{i:05d}": PERIORAL if i % 5 == 0 else "midface" for i in range(size)}
    zones = list(zone_regions)
    injections = []
    for i in range(size):
        injection = {
            "zone": zones[i // 2],
            "volume_ml": rng.choice(["0.1", "0.15", "0.2", "0.25"]),
            "instrument": "needle",
            "gauge": rng.choice([27, 28, 30]),
            "depth": rng.choice(["dermis", "subdermis"]),
            "technique": "retrograde",
        }
        if i % 10 == 5:  # one injection in ten breaks a rule
            injection.update(
                rng.choice(
                    [
                        {"technique": "bolus"},
                        {"gauge": 31},
                        {"instrument": "cannula", "gauge": 23},
                        {"depth": "subcutaneous"},
                        {"depth": "superficial_dermis"},
                        {"volume_ml": "0.6"},
                    ]
                )
            )
        injections.append(injection)
    data = {
        "goal": "rejuvenation",
        "indications": ["skin_quality", "fine_lines"],
        "combined_with": ["prf"],
        "injections": injections,
    }
    return data, zone_regions


def best_us_per_injection(run, size: int) -> float:
    number = max(1, INJECTIONS_PER_MEASURE // size)
    best = min(timeit.repeat(run, number=number, repeat=REPEATS))
    return best / number / size * 1e6


def main() -> int:
    rng = random.Random(20240501)
    ref = ReferenceSnapshot.default()
    rows = []
    for size in SIZES:
        data, zone_regions = make_plan(size, rng)
        plan = plan_from_dict(data, zone_regions)
        findings = len(evaluate(plan, ref))
        evaluate_us = best_us_per_injection(lambda p=plan: evaluate(p, ref), size)
        full_us = best_us_per_injection(
            lambda d=data, z=zone_regions: evaluate(plan_from_dict(d, z), ref), size
        )
        rows.append((size, findings, evaluate_us, full_us))

    base_evaluate, base_full = rows[0][2], rows[0][3]
    print(f"rules engine, Python {sys.version.split()[0]}; target < {TARGET_US:g} us per injection")
    print(
        f"{'injections':>10}  {'findings':>8}  {'evaluate us/inj':>15}  {'ratio':>5}  "
        f"{'parse+evaluate us/inj':>21}  {'ratio':>5}"
    )
    worst = 0.0
    for size, findings, evaluate_us, full_us in rows:
        worst = max(worst, evaluate_us, full_us)
        evaluate_ratio, full_ratio = evaluate_us / base_evaluate, full_us / base_full
        print(
            f"{size:>10,}  {findings:>8,}  {evaluate_us:>15.2f}  {evaluate_ratio:>5.2f}  "
            f"{full_us:>21.2f}  {full_ratio:>5.2f}"
        )
    verdict = "within" if worst < TARGET_US else "OVER"
    print(f"worst: {worst:.2f} us per injection, {verdict} the {TARGET_US:g} us target")
    return 0


if __name__ == "__main__":
    sys.exit(main())

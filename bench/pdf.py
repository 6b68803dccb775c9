"""Benchmark of the PDF renderer: a minimal one-page document against the consent sheet.

Run from the project root: `python bench/pdf.py`. In one process it builds a throwaway SQLite
database (migrations, reference data, a clinic, a patient and a ready 40-injection plan), then
renders, warm and with the bundled fonts, a minimal one-page document and the plan's consent
sheet, REPEATS times each, and prints both medians, their ratio and the PDF sizes.

Besides the wall-clock medians (the targets) it prints the medians of the process's CPU time,
which waiting for a CPU that other jobs hold does not inflate.

Both renders run in this process (``planner.pdf.render_here``, WeasyPrint with the one
FontConfiguration of the process), which is what a render child does for a request, and take
turns, so a machine that changes speed during the run moves both alike. The same sheet sent
through a render service, as gunicorn's workers send it, is printed too, for the record.
Targets: the consent sheet within 10 times the minimal document; the consent PDF under 100 KB.
"""

import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REPEATS = 15
TARGET_RATIO = 10.0
TARGET_KB = 100
INJECTIONS = 40


def setup_django(database: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "nanofat.test_settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("load_reference_data", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115


def forty_injection_plan():
    """A ready plan of 40 documented injections over 20 zones (0.15 mL each, 0.3 mL a zone)."""
    import datetime

    from django.contrib.auth.models import Group

    from planner.choices import PlanStatus
    from planner.models import (
        Clinic,
        Patient,
        PlannedInjection,
        RuleSet,
        TreatmentPlan,
        TreatmentZone,
        User,
    )

    clinic = Clinic.objects.create(name="Clinique Saint-Éloi")
    surgeon = User.objects.create(
        username="surgeon", first_name="Hélène", last_name="Marchetti", clinic=clinic
    )
    surgeon.groups.add(Group.objects.get(name="surgeon"))
    patient = Patient.objects.create(
        clinic=clinic,
        chart_number="B-2041",
        name="Joséphine Van der Berg-Müller",
        date_of_birth=datetime.date(1971, 4, 9),
        notes="Previous filler treatment of the nasolabial folds in 2024.",
    )
    plan = TreatmentPlan.objects.create(
        patient=patient,
        surgeon=surgeon,
        planned_for=datetime.date(2026, 12, 3),
        indications=["skin_quality", "fine_lines"],
        combination="prf",
        harvest_volume_ml=Decimal("40"),
        rule_set=RuleSet.current(),
        status=PlanStatus.READY,
    )
    zones = list(TreatmentZone.objects.exclude(region="perioral").order_by("sort_order"))[:20]
    PlannedInjection.objects.bulk_create(
        PlannedInjection(
            plan=plan,
            zone=zones[index % len(zones)],
            volume_ml=Decimal("0.15"),
            instrument="needle",
            gauge=27 + index % 4,
            depth="dermis" if index % 2 else "subdermis",
            technique="retrograde",
            notes="Microdroplets, 1 cm apart" if index % 5 == 0 else "",
            position=index,
        )
        for index in range(INJECTIONS)
    )
    return plan


def interleaved_medians(render, documents: dict[str, str], roots) -> dict[str, tuple]:
    """Per document: the median wall-clock and CPU seconds of REPEATS warm renders, and the
    PDF's bytes. The documents take turns (one of each, REPEATS times), so a machine that slows
    down or speeds up during the run weighs on both medians alike, not on the ratio."""
    results = {name: render(html, roots) for name, html in documents.items()}  # warm
    times = {name: ([], []) for name in documents}
    for _ in range(REPEATS):
        for name, html in documents.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            results[name] = render(html, roots)
            times[name][0].append(time.perf_counter() - start)
            times[name][1].append(time.process_time() - start_cpu)
    return {
        name: (statistics.median(wall), statistics.median(cpu), len(results[name].pdf))
        for name, (wall, cpu) in times.items()
    }


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        setup_django(Path(folder) / "bench.sqlite3")
        from planner import consent, pdf

        plan = forty_injection_plan()
        state = consent.sheet_state(plan)
        if not state.signable:
            print("The bench plan is not signable:", state.blockers)
            return 1
        sheet_html, _ = consent.render_html(state, for_pdf=True)
        roots = pdf.static_roots()

        medians = interleaved_medians(
            pdf.render_here, {"minimal": pdf.MINIMAL_DOCUMENT, "sheet": sheet_html}, roots
        )
        minimal_s, minimal_cpu, minimal_size = medians["minimal"]
        sheet_s, sheet_cpu, sheet_size = medians["sheet"]
        pages = sheet_pdf_pages(pdf.render_here(sheet_html, roots).pdf)
        service = through_render_service(sheet_html)

    ratio = sheet_s / minimal_s
    print(
        f"minimal one-page document: median {minimal_s * 1000:7.1f} ms "
        f"(CPU {minimal_cpu * 1000:6.1f} ms), {minimal_size:7,} bytes"
    )
    print(
        f"consent sheet, {INJECTIONS} injections: median {sheet_s * 1000:7.1f} ms "
        f"(CPU {sheet_cpu * 1000:6.1f} ms), {sheet_size:7,} bytes, {pages} pages"
    )
    print(
        f"ratio sheet / minimal: {ratio:.1f} (target at most {TARGET_RATIO:g}); "
        f"by CPU time {sheet_cpu / minimal_cpu:.1f}"
    )
    print(f"consent PDF size: {sheet_size / 1024:.1f} KB (target under {TARGET_KB} KB)")
    print(
        f"through the app server's render service (what a request waits for): median "
        f"{service * 1000:.1f} ms"
    )
    ok = ratio <= TARGET_RATIO and sheet_size < TARGET_KB * 1024
    print(
        "targets met" if ok else "TARGETS MISSED (see README.md, Consent sheet (PDF), Performance)"
    )
    return 0


def through_render_service(html: str) -> float:
    """The median of 5 renders of ``html`` sent to a render service, as gunicorn's workers send
    them (planner/render_service.py): the hand-over to its child and back included."""
    from planner import pdf, render_service

    render_service.start(pdf.static_roots())
    try:
        pdf.render_pdf(html)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            pdf.render_pdf(html)
            times.append(time.perf_counter() - start)
    finally:
        render_service.stop()
    return statistics.median(times)


def sheet_pdf_pages(data: bytes) -> int:
    import io

    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(data)).pages)


if __name__ == "__main__":
    sys.exit(main())

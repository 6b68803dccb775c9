"""The procedure day in real headless Chromium: a surgeon opens the consented plan, records the
harvest and processing with its lots, records what was injected (one volume changed), gives the
reason for the deviation, completes the session and downloads the operative record."""

import pytest

from tests.browser_support import ARTIFACTS, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_surgeon_records_and_completes_the_procedure_day(demo, context):
    from playwright.sync_api import expect

    from planner.models import TreatmentPlan

    plan = TreatmentPlan.objects.get(patient__chart_number="DEMO-0001")
    TreatmentPlan.objects.filter(pk=plan.pk).update(status="consented")  # signed by staff
    page = context.new_page()
    log_in(page, demo)

    page.goto(f"{demo}/plans/{plan.pk}/")
    page.get_by_role("link", name="Procedure day record").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Procedure record")
    # The planned total (2 x 0.3 mL) and the harvest suggested from the clinic's yield ratio.
    expect(page.locator("#processing-title + p")).to_contain_text("Planned nanofat: 0.6 mL")

    page.get_by_label("Nanofat yield (mL)").fill("4")
    page.get_by_label("Kit lot number").fill("KIT-2026-118")
    page.get_by_label("Filter lot number").fill("FLT-77")
    page.get_by_role("button", name="Save processing record").click()
    expect(page.locator(".messages")).to_contain_text("Harvest and processing record saved.")

    # Pre-filled from the consented plan; the left lower eyelid received less.
    volume = page.locator("#id_done-0-volume_ml")
    expect(volume).to_have_value("0.30")
    volume.fill("0.2")
    page.get_by_role("button", name="Save what was injected").click()
    expect(page.locator(".deviations")).to_contain_text(
        "LOWER_EYELID_L: 0.3 mL planned, 0.2 mL injected"
    )

    page.get_by_role("button", name="Complete session").click()
    expect(page.locator(".errorlist").first).to_contain_text(
        "Give a reason for the deviation in LOWER_EYELID_L."
    )
    page.get_by_label("Adverse events during the session").fill("Mild bruising, left eyelid")
    page.get_by_label("Reason: LOWER_EYELID_L: 0.3 mL planned, 0.2 mL injected").fill(
        "Thin skin: volume reduced on the table"
    )
    page.get_by_role("button", name="Complete session").click()
    expect(page.locator(".messages")).to_contain_text("the plan is now performed and closed")
    expect(page.locator("h1 .status")).to_have_text("Performed")
    expect(page.get_by_role("button", name="Complete session")).to_have_count(0)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "procedure-day.png"), full_page=True)
    response = context.request.get(f"{demo}/plans/{plan.pk}/operative-record.pdf")
    assert response.status == 200
    assert response.body().startswith(b"%PDF")
    plan.refresh_from_db()
    assert plan.status == "performed"

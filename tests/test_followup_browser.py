"""Recording a follow-up visit in real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright): a surgeon logs in, opens the scar plan's follow-up, records GAIS, POSAS 2.0 and
Vancouver scores, is refused an out-of-range score with the scale's message (nothing lost), then
saves, and sees the score chart drawn. Screenshots go to test-artifacts/followup-*.png."""

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django would otherwise refuse the
# test's own (synchronous) database calls as "called from an async context".
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TIMEOUT_MS = 10_000


@pytest.fixture
def browser_page():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1300, "height": 1000})
        context.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda message: (
                errors.append(message.text)
                if message.type == "error" and "Content Security Policy" in message.text
                else None
            ),
        )
        yield page
        context.close()
        browser.close()
        assert not errors, f"Errors in the page: {errors}"


@pytest.fixture
def scar_plan(transactional_db, tmp_path, settings):
    from planner.models import RuleSet, TreatmentPlan
    from tests.factories import (
        ClinicFactory,
        PatientFactory,
        PlannedInjectionFactory,
        TreatmentPlanFactory,
        UserFactory,
    )
    from tests.followup_support import perform

    settings.PHOTO_ROOT = tmp_path / "photos"
    clinic = ClinicFactory(name="Browser Clinic")
    surgeon = UserFactory(username="browser-surgeon", clinic=clinic, role="surgeon")
    patient = PatientFactory(clinic=clinic, name="Brenda Browser", chart_number="BR-1")
    plan = TreatmentPlanFactory(patient=patient, surgeon=surgeon, rule_set=RuleSet.current())
    PlannedInjectionFactory(plan=plan, zone_code="CHEEK_L")
    TreatmentPlan.objects.filter(pk=plan.pk).update(goal="scar", indications=["scars"])
    plan.refresh_from_db()
    return perform(plan, surgeon)


def test_a_surgeon_records_a_follow_up_visit_with_scores(live_server, browser_page, scar_plan):
    from playwright.sync_api import expect

    from planner.models import FollowUp
    from tests.factories import PASSWORD

    page = browser_page
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill("browser-surgeon")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}/patients/")

    # The dashboard names what is due; the procedure record links to the follow-up.
    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Performed this month")).to_be_visible()
    page.goto(f"{base}/plans/{scar_plan.pk}/procedure/")
    page.get_by_role("link", name="Follow-up: schedule, visits and scores").click()
    expect(page.get_by_role("heading", name="Schedule and visits")).to_be_visible()
    page.locator("#follow-up-{} a".format(scar_plan.follow_ups.order_by("due_on")[0].pk)).click()
    expect(page.get_by_role("heading", name="Follow-up visit: 1 week")).to_be_visible()

    page.get_by_label("GAIS, surgeon's rating").select_option("2")
    page.get_by_label("GAIS, patient's rating").select_option("1")
    page.get_by_label("Patient satisfaction").select_option("5")
    patient_scale = page.locator("#posas-patient")
    for label, value in [
        ("Pain", "11"),  # out of the 1-10 scale: refused
        ("Itching", "3"),
        ("Colour", "4"),
        ("Stiffness", "3"),
        ("Thickness", "2"),
        ("Irregularity", "5"),
    ]:
        patient_scale.get_by_label(label).fill(value)
    observer_scale = page.locator("#posas-observer")
    for label, value in [
        ("Vascularity", "3"),
        ("Pigmentation", "2"),
        ("Thickness", "4"),
        ("Relief", "3"),
        ("Pliability", "2"),
        ("Surface area", "2"),
    ]:
        observer_scale.get_by_label(label).fill(value)
    vss = page.locator("#vss")
    vss.get_by_label("Vascularity").select_option("1")
    vss.get_by_label("Pigmentation").select_option("2")
    vss.get_by_label("Pliability").select_option("3")
    vss.get_by_label("Height").select_option("1")
    vss.get_by_label("VSS version used").select_option("vss_1990")
    page.locator("#id_ae-bruising-present").check()
    page.locator("#id_ae-bruising-severity").select_option("mild")
    page.get_by_role("button", name="Save visit").click()

    expect(
        page.get_by_text("Pain (POSAS 2.0 patient scale) is scored 1 to 10; 11 is above")
    ).to_be_visible()
    expect(patient_scale.get_by_label("Itching")).to_have_value("3")  # kept
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "followup-refused.png"), full_page=True)
    assert FollowUp.objects.filter(plan=scar_plan, status="done").count() == 0

    patient_scale.get_by_label("Pain").fill("2")
    page.get_by_role("button", name="Save visit").click()
    expect(page.get_by_text("Follow-up visit (1 week) saved.")).to_be_visible()

    saved = FollowUp.objects.get(plan=scar_plan, status="done")
    assert (saved.posas_patient_total, saved.posas_observer_total, saved.vss_total) == (19, 16, 7)
    assert (saved.gais_surgeon, saved.gais_patient, saved.satisfaction) == (2, 1, 5)
    assert saved.adverse_events.get().kind == "bruising"

    page.get_by_role("link", name="follow-up of the session").click()
    chart = page.locator("img.chart")
    expect(chart).to_be_visible()
    chart.scroll_into_view_if_needed()
    # (wait_for_function would evaluate a string in the page, which the CSP rightly refuses)
    width = 0
    for _ in range(50):
        width = chart.evaluate("img => img.complete ? img.naturalWidth : 0")
        if width:
            break
        page.wait_for_timeout(100)
    assert width > 300  # the SVG loaded and was drawn as an image
    expect(page.get_by_role("cell", name="Much improved").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "followup-plan.png"), full_page=True)


def test_photos_upload_and_compare_side_by_side(live_server, browser_page, scar_plan):
    from playwright.sync_api import expect

    from planner.models import Photo
    from tests.factories import PASSWORD
    from tests.followup_support import gps_exif, jpeg_bytes

    page = browser_page
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill("browser-surgeon")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}/patients/")

    first = scar_plan.follow_ups.order_by("due_on")[0]
    page.goto(f"{base}/plans/{scar_plan.pk}/photos/")
    for timepoint, label, colour in (
        ("baseline", "Baseline", "red"),
        (str(first.pk), first.label, "green"),
    ):
        page.get_by_label("Time point").select_option(timepoint)
        page.get_by_label("View:", exact=True).select_option("front")
        page.get_by_label("Photo:", exact=True).set_input_files(
            files=[
                {
                    "name": "face.jpg",
                    "mimeType": "image/jpeg",
                    "buffer": jpeg_bytes(size=(640, 480), colour=colour, exif=gps_exif()),
                }
            ]
        )
        page.get_by_role("button", name="Upload photo").click()
        # The message names the time point: the first upload's message cannot satisfy the second.
        expect(page.get_by_text(f"Photo saved ({label}, Front).")).to_be_visible()
    assert Photo.objects.filter(plan=scar_plan).count() == 2

    page.get_by_role("link", name="Compare baseline and follow-up").click()
    images = page.locator(".compare-grid img")
    expect(images).to_have_count(2)
    for index in range(2):
        image = images.nth(index)
        width = 0
        for _ in range(50):
            width = image.evaluate("img => img.complete ? img.naturalWidth : 0")
            if width:
                break
            page.wait_for_timeout(100)
        assert width == 640  # served through the clinic-checked view
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "followup-compare.png"), full_page=True)

    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Follow-ups due")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "followup-dashboard.png"), full_page=True)

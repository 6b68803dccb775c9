"""The plan builder in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

A surgeon logs in through the login form, plans on the face map and sees the rules fire while
typing, without a page reload; a second test opens the builder in two tabs and checks that the
stale one is refused with the fresh state. A screenshot of the finished builder is saved to
test-artifacts/builder.png.
"""

from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.browser_support import ARTIFACTS, log_in, settle

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PATIENT = "Eleanor Whitfield"  # a seed_demo patient of the surgeon's clinic
NO_RELOAD = "window.__builderNoReload"  # set once; a full page load would wipe it


def mark_page(page) -> None:
    page.evaluate(f"{NO_RELOAD} = true")


def assert_not_reloaded(page, step: str) -> None:
    assert page.evaluate(f"{NO_RELOAD} === true"), f"the page reloaded during: {step}"


def type_value(page, field, value: str) -> None:
    """Types into a field, leaves it (the change event validates at once) and waits for that."""
    field.fill(value)
    field.press("Tab")
    settle(page)


def add_injection(page, zone: str, volume: str, *, technique: str | None = None) -> None:
    """Clicks the zone on the face map, fills the add form and adds the injection."""
    from playwright.sync_api import expect

    page.locator(f"#zone-{zone}").click()
    expect(page.locator("#id_new-zone"), f"clicking {zone} did not choose it").to_have_value(zone)
    type_value(page, page.locator("#id_new-volume_ml"), volume)
    if technique:
        page.locator("#id_new-technique").select_option(technique)
        settle(page)
    page.get_by_role("button", name="Add injection").click()
    settle(page)


def rows(page):
    return page.locator("#injection-rows tr[id^='injection-']")


def test_a_surgeon_plans_a_session_and_marks_it_ready(demo, context):
    from playwright.sync_api import expect

    from planner.models import TreatmentPlan

    page = context.new_page()
    log_in(page, demo)

    # Patient page -> "New plan" -> the builder of a fresh draft.
    page.get_by_role("link", name=PATIENT).click()
    page.get_by_role("button", name="New plan", exact=True).click()
    expect(page.locator("#builder"), "New plan did not open the builder").to_be_visible()
    plan = TreatmentPlan.objects.filter(patient__name=PATIENT).latest("pk")
    assert page.url == f"{demo}/plans/{plan.pk}/", page.url
    mark_page(page)

    # First zone: the upper lip. 0.6 mL is above the documented maximum per zone; the rule and
    # its citation appear next to the volume while typing, before anything is saved.
    page.locator("#zone-UPPER_LIP").click()
    expect(page.locator("#id_new-zone")).to_have_value("UPPER_LIP")
    # Typed key by key: the debounced "input" trigger validates without leaving the field.
    page.locator("#id_new-volume_ml").press_sequentially("0.6", delay=30)
    volume_feedback = page.locator("#feedback-new-volume_ml")
    expect(volume_feedback, "no live rule feedback next to the volume").to_contain_text(
        "ZONE_VOLUME_ABOVE_MAX"
    )
    expect(volume_feedback).to_contain_text("clinical summary, ref 5")
    assert plan.injections.count() == 0, "live validation saved an injection"
    assert_not_reloaded(page, "typing the volume")

    page.locator("#id_new-volume_ml").press("Tab")
    settle(page)
    page.get_by_role("button", name="Add injection").click()
    findings = page.locator("#findings")
    expect(findings, "the findings panel did not show the error").to_contain_text(
        "ZONE_VOLUME_ABOVE_MAX"
    )
    expect(rows(page)).to_have_count(1)
    expect(page.locator("#zone-UPPER_LIP")).to_have_class("zone planned sev-error")
    expect(page.locator("#overall-total")).to_have_text("0.6")
    assert_not_reloaded(page, "adding the upper lip")

    # Second zone: the left cheek, injected fanning (a warning to acknowledge).
    add_injection(page, "CHEEK_L", "0.3", technique="fanning")
    expect(rows(page)).to_have_count(2)
    expect(findings).to_contain_text("TECHNIQUE_NOT_RETROGRADE")
    expect(page.locator("#overall-total")).to_have_text("0.9")

    # Correct the upper lip in place: 0.4 mL.
    zones = page.locator("#face-map .zone").count()
    upper_lip = rows(page).filter(has_text="Upper lip")
    upper_lip.get_by_role("link", name="Edit").click()
    edit_volume = page.locator("#injection-rows input[name$='-volume_ml']")
    expect(edit_volume, "the edit row did not open").to_have_value("0.60")
    type_value(page, edit_volume, "0.4")
    page.get_by_role("button", name="Save injection").click()
    expect(findings, "the error did not go away after the correction").not_to_contain_text(
        "ZONE_VOLUME_ABOVE_MAX"
    )
    expect(rows(page).filter(has_text="Upper lip")).to_contain_text("0.4")
    expect(page.locator("#overall-total")).to_have_text("0.7")
    # Of the face map, the answer redrew the upper lip alone: an SVG link again, with its new
    # total and no error mark, that still opens the add form for its zone.
    upper_lip_zone = page.locator("#zone-UPPER_LIP")
    expect(upper_lip_zone).to_have_class("zone planned")
    expect(upper_lip_zone.locator(".zone-total")).to_have_text("0.4")
    assert upper_lip_zone.evaluate("zone => zone.namespaceURI") == "http://www.w3.org/2000/svg"
    expect(page.locator("#face-map .zone"), "a zone was lost or doubled").to_have_count(zones)
    upper_lip_zone.click()
    expect(page.locator("#id_new-zone")).to_have_value("UPPER_LIP")
    # The page head's version follows the writes made without a reload (three so far).
    expect(page.locator(".plan-version-number")).to_have_text(str(plan.version + 3))
    assert_not_reloaded(page, "editing the upper lip")

    # Marking ready is refused while the warning is unacknowledged (the button is only
    # aria-disabled, so it still submits: the server must say no)...
    ready = page.get_by_role("button", name="Mark ready for consent")
    expect(ready).to_have_attribute("aria-disabled", "true")
    ready.click(force=True)
    expect(page.locator("#builder .message.error")).to_contain_text(
        "Acknowledge each warning with a reason first"
    )
    # ...so acknowledge it with a reason.
    findings.get_by_label("Reason for going ahead").fill("Fanning spreads the graft over a scar.")
    findings.get_by_role("button", name="Acknowledge warning").click()
    expect(findings, "the acknowledgement was not recorded").to_contain_text(
        "Acknowledged by Ada Lindqvist"
    )
    expect(findings).to_contain_text("Fanning spreads the graft over a scar.")
    assert_not_reloaded(page, "acknowledging the warning")

    # The consent sheet states the harvest: the plan is ready once its volume is recorded.
    expect(page.locator("#workflow")).to_contain_text("record the harvest volume")
    page.locator("#id_plan-harvest_volume_ml").fill("20")
    page.get_by_role("button", name="Save details").click()
    expect(page.locator("#plan-details")).to_contain_text("Session details saved")
    expect(page.locator("#workflow")).to_contain_text("The plan can go to consent")

    page.get_by_role("button", name="Mark ready for consent").click()
    expect(page.locator("#workflow .status"), "the plan did not become ready").to_have_text(
        "Ready for consent"
    )
    plan.refresh_from_db()
    assert plan.status == "ready"
    volumes = sorted(plan.injections.values_list("zone__code", "volume_ml"))
    assert volumes == [("CHEEK_L", Decimal("0.30")), ("UPPER_LIP", Decimal("0.40"))]

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "builder.png"), full_page=True)


def test_a_stale_tab_is_refused_and_shown_the_fresh_plan(demo, context):
    from playwright.sync_api import expect

    from planner.models import TreatmentPlan

    tab_a = context.new_page()
    log_in(tab_a, demo)
    plan = TreatmentPlan.objects.get(patient__name="Karim Benali")  # CHEEK_L and CHEEK_R
    builder = f"{demo}/plans/{plan.pk}/"
    tab_a.goto(builder)
    tab_b = context.new_page()
    tab_b.goto(builder)
    expect(rows(tab_b)).to_have_count(2)

    add_injection(tab_a, "CHIN", "0.3")
    expect(rows(tab_a), "tab A could not add its injection").to_have_count(3)

    # Tab B still carries the version it loaded: its change must not be applied.
    add_injection(tab_b, "FOREHEAD", "0.25")
    builder_b = tab_b.locator("#builder")
    expect(builder_b, "the stale tab was not told").to_contain_text("changed in another window")
    expect(builder_b).to_contain_text("Your change was not saved")
    expect(rows(tab_b), "the stale tab did not get the fresh plan").to_have_count(3)
    expect(rows(tab_b).filter(has_text="Chin")).to_have_count(1)
    expect(rows(tab_b).filter(has_text="Forehead")).to_have_count(0)
    codes = set(plan.injections.values_list("zone__code", flat=True))
    assert codes == {"CHEEK_L", "CHEEK_R", "CHIN"}, f"the stale write was applied: {codes}"

    # What tab B typed is still in its form, ready to be sent again.
    expect(tab_b.locator("#id_new-zone"), "the stale tab lost its zone").to_have_value("FOREHEAD")
    volume_b = tab_b.locator("#id_new-volume_ml")
    expect(volume_b, "the stale tab lost its volume").to_have_value("0.25")

    # With the fresh state in front of it, tab B sends what it typed again, as it stands.
    tab_b.get_by_role("button", name="Add injection").click()
    settle(tab_b)
    expect(rows(tab_b), "the refreshed tab could not add its injection").to_have_count(4)
    assert plan.injections.filter(zone__code="FOREHEAD").exists()


def test_acknowledging_one_warning_keeps_the_reason_typed_for_another(demo, context):
    from playwright.sync_api import expect

    from planner.models import TreatmentPlan

    plan = TreatmentPlan.objects.get(patient__name="Karim Benali")  # CHEEK_L and CHEEK_R
    plan.injections.update(technique="fanning")  # a TECHNIQUE_NOT_RETROGRADE warning each
    page = context.new_page()
    log_in(page, demo)
    page.goto(f"{demo}/plans/{plan.pk}/")
    reasons = page.locator("#findings textarea")
    expect(reasons).to_have_count(2)

    reasons.nth(1).fill("Second reason, not sent yet")
    reasons.nth(0).fill("Scar tissue: fanning spreads it evenly.")
    page.locator("#findings .ack-form").first.get_by_role("button").click()
    settle(page)

    expect(page.locator("#findings")).to_contain_text("Scar tissue: fanning spreads it evenly.")
    expect(reasons, "the acknowledged warning still asks for a reason").to_have_count(1)
    expect(reasons.first, "the other reason was wiped").to_have_value("Second reason, not sent yet")


def test_the_pages_fit_a_phone_and_the_row_actions_a_laptop(demo, context):
    from playwright.sync_api import expect

    from planner.models import Patient, TreatmentPlan

    plan = TreatmentPlan.objects.get(patient__name="Karim Benali")
    page = context.new_page()
    log_in(page, demo)
    page.set_viewport_size({"width": 390, "height": 844})
    for path in (
        f"/plans/{plan.pk}/",
        "/patients/",
        f"/patients/{plan.patient_id}/",
        "/dashboard/",
    ):
        page.goto(demo + path)
        # Wide tables scroll inside their card; the page itself never scrolls sideways.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide on a 390 px screen"
    expect(page.get_by_role("button", name="Log out")).to_be_in_viewport()

    page.set_viewport_size({"width": 1280, "height": 900})
    # A 200-character name (the longest allowed) in one unbroken word wraps too.
    Patient.objects.filter(pk=plan.patient_id).update(name="W" * 200)
    for path in (f"/patients/{plan.patient_id}/", "/patients/", f"/plans/{plan.pk}/"):
        page.goto(demo + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1280, f"{path} is {width} px wide with a long name"
    page.goto(f"{demo}/plans/{plan.pk}/")
    card = page.locator("#injection-rows").locator("xpath=ancestor::section[1]").bounding_box()
    edit = page.locator("#injection-rows .row-actions a").first.bounding_box()
    assert edit["x"] + edit["width"] <= card["x"] + card["width"], "Edit is cut off at 1280 px"


def test_the_keyboard_focus_stays_where_the_change_happened(demo, context):
    from playwright.sync_api import expect

    from planner.models import TreatmentPlan

    plan = TreatmentPlan.objects.get(patient__name="Karim Benali")  # CHEEK_L and CHEEK_R
    first, second = plan.injections.order_by("position").values_list("pk", flat=True)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the delete confirmation
    log_in(page, demo)
    page.goto(f"{demo}/plans/{plan.pk}/")
    row = page.locator(f"#injection-{first}")

    # Edit opened with Enter: the first field of the edit row.
    row.get_by_role("link", name="Edit").press("Enter")
    expect(page.locator(f"#id_inj{first}-zone"), "Edit left the focus behind").to_be_focused()

    # Saved with an error: the field in error.
    page.locator(f"#id_inj{first}-volume_ml").fill("lots")
    settle(page)
    row.get_by_role("button", name="Save injection").press("Enter")
    expect(row.locator(".has-error")).not_to_have_count(0)
    expect(page.locator(f"#id_inj{first}-volume_ml"), "the error lost the focus").to_be_focused()

    # Cancelled: the row's Edit link.
    row.get_by_role("link", name="Cancel").press("Enter")
    expect(row.get_by_role("link", name="Edit"), "Cancel lost the focus").to_be_focused()

    # Deleted: the next row's Edit link.
    row.get_by_role("button", name="Delete").press("Enter")
    expect(rows(page)).to_have_count(1)
    next_edit = page.locator(f"#injection-{second}").get_by_role("link", name="Edit")
    expect(next_edit, "the delete lost the focus").to_be_focused()

    # The add form sent without a volume: the field in error.
    page.locator("#id_new-zone").select_option("CHIN")
    settle(page)
    page.get_by_role("button", name="Add injection").press("Enter")
    expect(page.locator("#id_new-volume_ml"), "the add form lost the focus").to_be_focused()

    # The last warning acknowledged: the findings' heading (no reason box is left).
    plan.injections.update(technique="fanning")
    page.reload()
    page.locator("#findings textarea").fill("Scar tissue: fanning spreads it evenly.")
    page.locator("#findings").get_by_role("button", name="Acknowledge warning").press("Enter")
    expect(page.locator("#findings")).to_contain_text("Acknowledged by")
    expect(page.locator("#findings-title"), "acknowledging lost the focus").to_be_focused()

    # Session details saved: the page's heading follows the new date.
    page.locator("#id_plan-planned_for").fill("2030-05-04")
    page.locator("#plan-details").get_by_role("button", name="Save details").press("Enter")
    expect(page.locator("h1")).to_contain_text("Nanofat plan, 4 May 2030")
    expect(page.locator("#plan-details [role=status]")).to_be_focused()


def test_the_patient_search_survives_back_but_not_logging_out(demo, context):
    from playwright.sync_api import expect

    page = context.new_page()
    log_in(page, demo)
    page.goto(f"{demo}/patients/")
    results = page.locator("#patient-results tbody tr")
    everyone = results.count()
    page.locator("#id_q").press_sequentially("Benali", delay=20)
    expect(results).to_have_count(1)

    page.get_by_role("link", name="Karim Benali").click()
    page.go_back()
    expect(page.locator("#id_q"), "Back lost the search").to_have_value("Benali")
    expect(results, "Back showed every patient again").to_have_count(1)
    assert "Benali" not in page.url  # still out of the URL

    page.get_by_role("button", name="Log out").click()
    log_in(page, demo)
    page.goto(f"{demo}/patients/")
    expect(page.locator("#id_q"), "the search outlived the login").to_have_value("")
    expect(results).to_have_count(everyone)


@pytest.fixture(autouse=True)
def _time_limit(request) -> Iterator[None]:
    """Each browser test stays under 20 s; slower means something waits on a timeout."""
    import time

    started = time.monotonic()
    yield
    elapsed = time.monotonic() - started
    assert elapsed < 20, f"{request.node.name} took {elapsed:.1f} s (limit 20 s)"

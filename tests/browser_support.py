"""Shared pieces of the browser tests: Debian's Chromium driven by Playwright, the demo data
on pytest-django's live server, and logging in through the real form."""

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django would otherwise refuse the
# test's own (synchronous) database calls as "called from an async context".
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TIMEOUT_MS = 5_000  # every wait; a swap that does not come in 5 s is a failure, not slowness
SURGEON, SURGEON_PASSWORD = "surgeon", "demo-surgeon-2026"  # from seed_demo
PATIENT = "Eleanor Whitfield"  # a seed_demo patient of the surgeon's clinic


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium for this module's tests (launching it is the slow part).

    Module, not session, scope: only one Playwright sync API may be active in a thread, and
    other browser test modules start their own; this one must be stopped before they run.
    """
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def demo(live_server) -> str:
    """The demo clinic, its users and patients (what `make run` shows); the server's URL."""
    from django.core.management import call_command
    from django.test import override_settings

    with override_settings(DEBUG=True):  # seed_demo refuses to run without DEBUG
        call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    return live_server.url


@pytest.fixture
def context(chromium, request):
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    context.on("weberror", lambda error: errors.append(str(error.error)))
    failures_before = request.session.testsfailed
    yield context
    if request.session.testsfailed > failures_before:
        # The call phase failed (it is reported before teardown): keep what each tab showed.
        ARTIFACTS.mkdir(exist_ok=True)
        for index, page in enumerate(context.pages):
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-tab{index}-failure.png"))
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def log_in(page, base_url: str, username: str = SURGEON, password: str = SURGEON_PASSWORD) -> None:
    from playwright.sync_api import expect

    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page, "the login form did not lead to the patient list").to_have_url(
        f"{base_url}/patients/"
    )


def settle(page) -> None:
    """Waits until no htmx request is in flight (htmx marks a requesting element .htmx-request).

    The live server runs each request in a thread but, on in-memory SQLite, every thread shares
    the test's one database connection: two overlapping requests (a live validation still in
    flight when "Add" is clicked) can then trip over each other's transactions. A surgeon's
    browser may overlap them freely in production; the test keeps them apart.
    """
    page.wait_for_function("() => !document.querySelector('.htmx-request')")

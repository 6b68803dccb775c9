"""The app server's PDF render service: shared by the workers, keeps the time limit, and the
workers render for themselves whenever it is not there.

Each test starts a real service process (``python -m planner.render_service``) as gunicorn's
master does, and renders through ``planner.pdf.render_pdf`` as the views do. No database.
"""

import logging
import os
import runpy
import signal
import threading
import time
from pathlib import Path

import pytest

from planner import pdf, render_service
from tests.process_support import descendants

ROOT = Path(__file__).resolve().parent.parent
SLOW_DOCUMENT = "<p>" + "word " * 120_000 + "</p>"  # about 9 s of layout here


def render_in_background(html: str, timeout: float) -> threading.Thread:
    """A render in another thread (another worker); ``.outcome`` gets its exception's type."""

    def run():
        try:
            pdf.render_pdf(html, timeout=timeout)
            thread.outcome.append(None)
        except pdf.PdfError as error:
            thread.outcome.append(type(error))

    thread = threading.Thread(target=run)
    thread.outcome = []
    thread.start()
    return thread


@pytest.fixture
def service():
    assert render_service.start(pdf.static_roots()) is not None
    yield render_service._service
    render_service.stop()


@pytest.fixture
def no_local_renderer(monkeypatch):
    """Fails the test if the worker (this process) renders anything itself."""

    def refuse(*args, **kwargs):
        raise AssertionError("rendered in the worker, not in the service")

    monkeypatch.setattr(pdf._renderer, "render", refuse)


def test_the_service_is_warm_when_it_says_it_is_ready(service):
    # Its fork server and the render child that already rendered the warm-up document.
    assert len(descendants(service.process.pid)) >= 2


def test_a_worker_renders_through_the_service(service, no_local_renderer):
    result = pdf.render_pdf(pdf.MINIMAL_DOCUMENT)
    assert result.pdf.startswith(b"%PDF")
    assert result.refused == ()
    assert any(url.endswith("/planner/print.css") for url in result.requested)


def test_the_service_stops_a_render_at_the_time_limit_and_serves_the_next(
    service, no_local_renderer
):
    start = time.monotonic()
    with pytest.raises(pdf.PdfRenderTimeout, match=r"longer than 0\.3 seconds"):
        pdf.render_pdf(SLOW_DOCUMENT, timeout=0.3)
    assert time.monotonic() - start < 3
    assert pdf.render_pdf(pdf.MINIMAL_DOCUMENT).pdf.startswith(b"%PDF")


def test_a_render_waiting_for_a_busy_renderer_gives_up_at_its_own_deadline(
    service, no_local_renderer
):
    slow = render_in_background(SLOW_DOCUMENT, timeout=3)
    time.sleep(0.3)  # the slow one holds the only renderer
    start = time.monotonic()
    with pytest.raises(pdf.PdfRenderTimeout, match="Another PDF is being made"):
        pdf.render_pdf(pdf.MINIMAL_DOCUMENT, timeout=0.5)
    assert time.monotonic() - start < 2
    slow.join(timeout=15)
    assert slow.outcome == [pdf.PdfRenderTimeout]
    assert pdf.render_pdf(pdf.MINIMAL_DOCUMENT).pdf.startswith(b"%PDF")


def test_with_two_render_processes_two_pdfs_render_at_once(no_local_renderer):
    assert render_service.start(pdf.static_roots(), processes=2) is not None
    try:
        slow = render_in_background(SLOW_DOCUMENT, timeout=2)
        time.sleep(0.3)
        assert pdf.render_pdf(pdf.MINIMAL_DOCUMENT, timeout=1.5).pdf.startswith(b"%PDF")
        slow.join(timeout=15)
        assert slow.outcome == [pdf.PdfRenderTimeout]
    finally:
        render_service.stop()


def test_without_a_service_the_worker_renders_itself():
    assert render_service.address() is None
    assert pdf.render_pdf(pdf.MINIMAL_DOCUMENT).pdf.startswith(b"%PDF")
    assert pdf._renderer.child_pid is not None


def test_a_service_that_died_leaves_the_workers_rendering_themselves(service, caplog):
    os.kill(service.process.pid, signal.SIGKILL)
    service.process.wait(timeout=10)

    with caplog.at_level(logging.ERROR, logger="planner.render_service"):
        assert pdf.render_pdf(pdf.MINIMAL_DOCUMENT).pdf.startswith(b"%PDF")
    assert "cannot be reached" in caplog.text


def test_the_socket_lives_in_a_private_folder_removed_on_stop():
    address = render_service.start(pdf.static_roots())
    folder = Path(address).parent
    assert folder.stat().st_mode & 0o777 == 0o700
    process = render_service._service.process

    render_service.stop()

    assert not folder.exists()
    assert process.poll() is not None
    assert render_service.address() is None


def test_the_service_exits_when_the_master_goes_without_stopping_it(service):
    # A master killed outright never calls stop(): its end of the service's stdin closes.
    service.process.stdin.close()
    service.process.wait(timeout=10)
    assert service.process.returncode == 0


def test_a_bad_job_is_dropped_and_the_service_goes_on(service, no_local_renderer):
    from multiprocessing.connection import Client

    with Client(service.address, family="AF_UNIX") as connection:
        connection.send("not a job")
        with pytest.raises(EOFError):  # the service hangs up
            connection.recv()
    assert pdf.render_pdf(pdf.MINIMAL_DOCUMENT).pdf.startswith(b"%PDF")


def test_gunicorn_starts_the_service_before_forking_and_stops_it_on_exit(monkeypatch, settings):
    calls = []
    monkeypatch.setattr(
        render_service, "start", lambda roots, processes: calls.append(("start", roots, processes))
    )
    monkeypatch.setattr(render_service, "stop", lambda: calls.append(("stop",)))
    settings.PDF_RENDER_PROCESSES = 2
    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))

    hooks["when_ready"](object())
    hooks["on_exit"](object())

    assert calls == [("start", pdf.static_roots(), 2), ("stop",)]

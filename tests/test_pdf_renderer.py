"""The renderer's set-up: the trimmed user-agent stylesheet, the warm-up and the server hook.

No database: the documents are the module's own, rendered with the project's static folder; the
gunicorn hook is called with a stand-in worker and warm-up.
"""

import runpy
import threading
from pathlib import Path

from weasyprint.html import UA_STYLESHEET

from planner import pdf

ROOT = Path(__file__).resolve().parent.parent
PROJECT_STATIC = ROOT / "static"

LIST_AND_TABLE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Lists</title>'
    '<link rel="stylesheet" href="planner/print.css"></head><body><ul><li>One</li><li>Two'
    '</li></ul><ol><li>First</li></ol><table class="grid"><thead><tr><th>A</th></tr></thead>'
    "<tbody><tr><td>1</td></tr><tr><td>2</td></tr></tbody></table></body></html>"
)


def test_the_user_agent_stylesheet_is_trimmed_with_this_weasyprint():
    # A WeasyPrint upgrade that changes the trimmed rules falls back to the stock stylesheet
    # (correct, only slower): this test says so.
    assert pdf._USER_AGENT_STYLESHEET is not UA_STYLESHEET
    assert pdf._Html(string="<p>x</p>")._ua_stylesheets() == [pdf._USER_AGENT_STYLESHEET]


def test_the_trimmed_stylesheet_changes_no_byte_of_the_pdf(monkeypatch):
    trimmed = pdf.render_here(LIST_AND_TABLE, (PROJECT_STATIC,)).pdf
    monkeypatch.setattr(pdf, "_USER_AGENT_STYLESHEET", UA_STYLESHEET)
    stock = pdf.render_here(LIST_AND_TABLE, (PROJECT_STATIC,)).pdf
    assert trimmed == stock


def test_the_warm_up_document_renders_from_the_static_files_alone():
    result = pdf.render_here(pdf.WARM_UP_DOCUMENT, (PROJECT_STATIC,))
    assert result.pdf.startswith(b"%PDF")
    assert result.refused == ()
    assert any(url.endswith("/planner/print.css") for url in result.requested)


class _Log:
    def __init__(self):
        self.errors = []

    def exception(self, message, *args):
        self.errors.append(message % args)


class _Worker:
    def __init__(self):
        self.log = _Log()


def _post_worker_init():
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))["post_worker_init"]


def _run_hook(monkeypatch, warm_up, delay="0.01"):
    started = []
    real_timer = threading.Timer

    def timer(*args, **kwargs):
        started.append(real_timer(*args, **kwargs))
        return started[-1]

    monkeypatch.setenv("PDF_WARM_UP_DELAY_SECONDS", delay)
    monkeypatch.setattr(pdf, "warm_up", warm_up)
    monkeypatch.setattr(threading, "Timer", timer)
    worker = _Worker()
    _post_worker_init()(worker)
    for started_timer in started:
        started_timer.join(timeout=10)
    return worker, started


def test_each_gunicorn_worker_warms_its_pdf_renderer_after_the_delay(monkeypatch):
    calls = []
    worker, timers = _run_hook(monkeypatch, lambda: calls.append("warm"))
    assert calls == ["warm"]
    assert [timer.interval for timer in timers] == [0.01]
    assert [timer.daemon for timer in timers] == [True]  # never holds up a worker's exit
    assert worker.log.errors == []


def test_a_worker_replaced_before_the_delay_never_starts_a_renderer(monkeypatch):
    calls = []
    monkeypatch.setenv("PDF_WARM_UP_DELAY_SECONDS", "60")
    monkeypatch.setattr(pdf, "warm_up", lambda: calls.append("warm"))
    _post_worker_init()(_Worker())
    (timer,) = [thread for thread in threading.enumerate() if thread.name == "pdf-warm-up"]
    assert timer.interval == 60.0
    timer.cancel()  # as if the worker exited: the timer is a daemon and dies with it
    timer.join(timeout=5)
    assert calls == []


def test_a_failed_warm_up_is_logged_and_leaves_the_worker_running(monkeypatch):
    def fail():
        raise pdf.PdfError("no renderer")

    worker, _ = _run_hook(monkeypatch, fail)
    assert worker.log.errors == ["Warming the PDF renderer failed"]

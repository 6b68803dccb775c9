"""One PDF render service per app server, shared by all of its gunicorn workers.

Why
    Without it every gunicorn worker keeps a render child of its own (``planner.pdf._Renderer``)
    with a fork server behind it: two processes of 60-100 MB each per worker, about 1.3 s of CPU
    to start them again whenever ``max_requests`` replaces a worker, and as many PDFs rendering
    at once as there are workers, all competing with the planner's requests for the CPU. The
    service renders for every worker, at most ``PDF_RENDER_PROCESSES`` PDFs at a time (1 by
    default), at nice 10, in render children that start once per app server, not once per
    worker.

How
    gunicorn's master calls ``start`` (``when_ready`` in gunicorn.conf.py) before it forks the
    workers: the service is a fresh interpreter (``python -m planner.render_service``) that
    imports only the renderer (no Django, no database connection), listens on a Unix socket in
    a folder only this user can open (``mkdtemp``: mode 0700), warms its renderers and says it
    is ready. The socket's address stays in this module, so every worker forked afterwards
    inherits it, and ``planner.pdf.render_pdf`` sends each render there: one connection per
    render carrying the HTML, the static folders and the deadline. The service keeps the time
    limit itself (its ``_Renderer`` kills a child that runs past the deadline, so a
    pathological input still costs one failed request and never a hung render), and skips a
    job whose deadline passed while it waited for a free renderer. The master calls ``stop``
    (``on_exit``) as it exits; should the master die without it, the service sees its
    standard input close and exits too.

    Where no service runs (``manage.py runserver``, the tests, a shell) or it cannot be reached,
    ``render`` returns None and the caller renders in a child of its own process, as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path

from planner import pdf

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOCKET_NAME = "render.sock"
READY = b"ready\n"
#: Seconds the master waits for the service to listen before it goes on without it.
START_TIMEOUT_SECONDS = 60
#: How long a worker waits past the deadline for the service's answer (the hand-over of a
#: finished PDF); the service itself stops the render at the deadline.
ANSWER_GRACE_SECONDS = 5


class _Service:
    """The running service, as the master started it."""

    def __init__(self, process: subprocess.Popen, folder: str):
        self.process = process
        self.folder = folder
        self.address = os.path.join(folder, SOCKET_NAME)


_service: _Service | None = None


def address() -> str | None:
    """Where workers send their renders; None when no service runs."""
    return _service.address if _service else None


# --- In gunicorn's master ------------------------------------------------------------------------


def start(roots: tuple[Path, ...], processes: int = 1) -> str | None:
    """Starts the service and waits until it listens; returns its address, or None (logged)
    when it did not come up, in which case every worker renders for itself."""
    global _service
    stop()
    folder = tempfile.mkdtemp(prefix="nanofat-pdf-")
    command = [sys.executable, "-m", "planner.render_service", folder, str(processes)]
    process = subprocess.Popen(  # noqa: S603 (this interpreter, this module, our own folders)
        [*command, *(str(root) for root in roots)],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        close_fds=True,
    )
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_SECONDS)
    if not ready or process.stdout.readline() != READY:
        logger.error("The PDF render service did not start; each worker renders for itself")
        _end(process, folder)
        return None
    _service = _Service(process, folder)
    return _service.address


def stop() -> None:
    """Stops the service (closing its standard input tells it to go) and removes its socket."""
    global _service
    service, _service = _service, None
    if service is not None:
        _end(service.process, service.folder)


def _end(process: subprocess.Popen, folder: str) -> None:
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    shutil.rmtree(folder, ignore_errors=True)


# --- In a worker ---------------------------------------------------------------------------------


def render(html: str, roots: tuple[Path, ...], timeout: float) -> pdf.RenderResult | None:
    """Renders through the service within ``timeout`` seconds; None when there is no service
    to ask (the caller then renders itself)."""
    target = address()
    if target is None:
        return None
    # CLOCK_MONOTONIC is one clock for every process of the machine: the service can compare.
    deadline = time.monotonic() + timeout
    try:
        connection = Client(target, family="AF_UNIX")
    except OSError:
        logger.error("The PDF render service cannot be reached; this worker renders itself")
        return None
    with connection:
        try:
            connection.send((html, tuple(str(root) for root in roots), deadline))
            if connection.poll(timeout + ANSWER_GRACE_SECONDS):
                status, payload = connection.recv()
            else:
                status, payload = "timeout", None
        except (EOFError, OSError):
            raise pdf.PdfError(pdf.STOPPED_MESSAGE) from None
    if status == "ok":
        return payload
    if status == "busy":
        raise pdf.PdfRenderTimeout(pdf.BUSY_MESSAGE)
    if status == "timeout":
        raise pdf.timed_out(timeout)
    raise pdf.PdfError(payload)


# --- The service process -------------------------------------------------------------------------


def serve(folder: str, processes: int, roots: tuple[str, ...]) -> None:
    """Accepts render jobs until standard input closes (the master stopped or died)."""
    renderers: queue.SimpleQueue[pdf._Renderer] = queue.SimpleQueue()
    for _ in range(max(processes, 1)):
        renderers.put(pdf._Renderer())
    listener = Listener(os.path.join(folder, SOCKET_NAME), family="AF_UNIX")
    threading.Thread(target=_exit_when_stdin_closes, name="parent-watch", daemon=True).start()
    _warm_up(renderers, processes, roots)
    sys.stdout.buffer.write(READY)
    sys.stdout.buffer.flush()
    # Nobody reads the pipe after READY: anything printed later goes to the server's log.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    while True:
        try:
            connection = listener.accept()
        except OSError:
            continue
        threading.Thread(
            target=_serve_one, args=(connection, renderers), name="render-job", daemon=True
        ).start()


def _exit_when_stdin_closes() -> None:
    while sys.stdin.buffer.read(4096):
        pass
    os._exit(0)  # the render children are killed as their pipes close


def _warm_up(renderers: queue.SimpleQueue, processes: int, roots: tuple[str, ...]) -> None:
    """Starts every render child and renders a little of everything once, so the first real
    PDF is as fast as the next; a failure is logged and left to the first request."""
    taken = [renderers.get() for _ in range(max(processes, 1))]
    try:
        for renderer in taken:
            renderer.render(pdf.WARM_UP_DOCUMENT, roots, START_TIMEOUT_SECONDS)
    except pdf.PdfError:
        logger.exception("Warming the PDF renderer failed")
    finally:
        for renderer in taken:
            renderers.put(renderer)


def _serve_one(connection: Connection, renderers: queue.SimpleQueue) -> None:
    with connection:
        try:
            html, roots, deadline = connection.recv()
        except (EOFError, OSError, ValueError, TypeError):
            return
        answer = _render_job(renderers, html, roots, deadline)
        with contextlib.suppress(OSError):  # the worker may have given up waiting
            connection.send(answer)


def _render_job(renderers: queue.SimpleQueue, html: str, roots, deadline: float) -> tuple:
    try:
        renderer = renderers.get(timeout=max(deadline - time.monotonic(), 0))
    except queue.Empty:
        return "busy", None
    try:
        remaining = deadline - time.monotonic()
        if remaining <= 0:  # the worker has stopped waiting: do not render for nobody
            return "busy", None
        return "ok", renderer.render(html, roots, remaining)
    except pdf.PdfRenderTimeout:
        return "timeout", None
    except pdf.PdfError as error:
        return "error", str(error)
    finally:
        renderers.put(renderer)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), tuple(sys.argv[3:]))

"""HTML to PDF with WeasyPrint, hardened: a deny-by-default fetcher and a time limit.

What may be loaded
    ``StaticOnlyFetcher`` serves files under the project's static folders
    (``settings.STATICFILES_DIRS``) and ``data:`` URIs, nothing else. A ``file:`` URL must have
    no host (``file://otherhost/`` is refused), its percent-decoded path must contain no ``..``
    segment (so ``%2e%2e`` does not escape either), and the path resolved through every symlink
    must still lie inside a static folder and be a regular file (``/dev/urandom``, a FIFO or a
    symlink to ``/etc`` are refused). Every other scheme (``http(s):``, ``ftp:``, ...) is
    refused before any connection is made, so no redirect can ever be followed. A refusal is an
    exception; WeasyPrint then leaves the resource out and the refusal is logged. The fetcher
    records each URL it was asked for, and the render result carries that list, so tests can
    prove that patient text never made the renderer read a file or call a host.

    The template escapes every user value and never places one inside CSS, a ``style``
    attribute or a URL; the fetcher is the second line of defence. ``rel=attachment`` is never
    honoured: attachments found in the document (``<link rel=attachment>``, ``<a
    rel=attachment>``) are dropped before the PDF is written, and no ``attachments`` option is
    ever passed.

Time limit
    WeasyPrint cannot be interrupted inside a thread, so renders run in a child process
    (``_Renderer``: in the render service under gunicorn, else one child per server process)
    and the caller waits at most ``settings.PDF_RENDER_TIMEOUT_SECONDS``. When
    the limit passes, the child is killed (SIGKILL) and ``PdfRenderTimeout`` is raised; the view
    answers with an error page and the next render starts a fresh child. The server process
    itself never blocks for longer than the limit, so a pathological input (a 200 KB note, a
    20,000-character word) costs one failed request, not a hung worker. Renders in one server
    process are serialised by a lock (waiting for it counts against the same limit).

    Children come from a ``forkserver`` that imports this module (and WeasyPrint) once: a new
    child starts warm, inherits no database connection, and forking never happens in a
    multi-threaded server process. Each child keeps one ``FontConfiguration`` for its whole
    life, so the bundled fonts (``static/planner/fonts``) are read and registered once per
    child, not once per render.

Warm start
    WeasyPrint is imported when this module is imported, and ``planner.apps`` imports this
    module in ``ready()`` (gunicorn's ``preload_app`` then imports it in the master), so no
    request pays for the import. Under gunicorn the renders of all workers go to one render
    service (``planner.render_service``), whose children render ``WARM_UP_DOCUMENT``, a little
    of everything the real documents use, as the app server starts: the first PDF request is
    as fast as the next one, and a worker replaced by ``max_requests`` starts no renderer.

Style computation
    Documents are cascaded with WeasyPrint's HTML user-agent stylesheet less its rules for
    footnotes and notes, which match every element (``_trimmed_user_agent_stylesheet``): the same
    PDF, a sixth less style computation for a long document.

Output
    PDF/UA-1 (tagged, with the document title and language), fonts subset (never embedded
    whole; Debian's libharfbuzz-subset0 makes subsetting fast), no creation date, so the same
    HTML gives the same bytes.
"""

from __future__ import annotations

import logging
import mimetypes
import multiprocessing
import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib import request
from urllib.parse import unquote, urlsplit

import weasyprint
from weasyprint import CSS, HTML
from weasyprint.css.counters import CounterStyle
from weasyprint.html import UA, UA_STYLESHEET
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

logger = logging.getLogger(__name__)

#: The largest static file the renderer may read (the CJK font is about 4 MB).
MAX_STATIC_BYTES = 8 * 1024 * 1024

#: Rendering options: tagged PDF/UA-1; subset fonts without hinting.
PDF_OPTIONS = {
    "pdf_variant": "pdf/ua-1",
    "pdf_tags": True,
    "full_fonts": False,
    "hinting": False,
    "presentational_hints": False,
    "custom_metadata": False,
}


class PdfError(RuntimeError):
    """The PDF could not be made; the message is safe to show to a user."""


class PdfRenderTimeout(PdfError):
    """The render did not finish within the time limit (the child was killed)."""


BUSY_MESSAGE = "Another PDF is being made; try again in a moment."
STOPPED_MESSAGE = "The PDF renderer stopped unexpectedly; try again."


def timed_out(timeout: float) -> PdfRenderTimeout:
    """The error of a render stopped at the time limit of ``timeout`` seconds."""
    return PdfRenderTimeout(f"Making the PDF took longer than {timeout:g} seconds and was stopped.")


class FetchRefused(ValueError):
    """The renderer asked for something outside the static files and data: URIs."""


# --- The fetcher -----------------------------------------------------------------------------


def static_roots() -> tuple[Path, ...]:
    """The folders the renderer may read, resolved (Django settings are read in the parent)."""
    from django.conf import settings

    return tuple(Path(folder).resolve() for folder in settings.STATICFILES_DIRS)


class StaticOnlyFetcher(URLFetcher):
    """Serves files under ``roots`` and ``data:`` URIs; refuses everything else by raising."""

    def __init__(self, roots: tuple[Path | str, ...]):
        # URLFetcher.__init__ would install urllib's HTTP, HTTPS (an SSL context: 20-50 ms per
        # render), FTP, file and redirect handlers. None of them is wanted: the opener gets the
        # data: handler only, and fetch() below reads static files itself.
        request.OpenerDirector.__init__(self)
        self.add_handler(request.DataHandler())
        self._timeout = 10
        self._http_headers = {}
        self._allowed_protocols = ("data",)
        self._fail_on_errors = False
        self._request = None
        self.roots = tuple(Path(root).resolve() for root in roots)
        self.requested: list[str] = []
        self.refused: list[str] = []

    def fetch(self, url: str, headers=None) -> URLFetcherResponse:
        self.requested.append(url)
        try:
            scheme = url.split(":", 1)[0].lower() if ":" in url else ""
            if scheme == "data":
                return super().fetch(url, headers)
            if scheme == "file":
                return self._static_file(url)
            raise FetchRefused(f"scheme {scheme or '(none)'!r} is not allowed")
        except FetchRefused as refusal:
            self.refused.append(url)
            logger.warning("PDF renderer refused %.200s: %s", url, refusal)
            raise

    def _static_file(self, url: str) -> URLFetcherResponse:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise FetchRefused("file URLs on another host are not allowed")
        raw = unquote(parts.path)
        if "\x00" in raw or any(segment == ".." for segment in raw.split("/")):
            raise FetchRefused("'..' is not allowed in a path")
        try:
            path = Path(raw).resolve(strict=True)  # follows every symlink
        except (OSError, RuntimeError):
            raise FetchRefused("no such static file") from None
        if not any(path.is_relative_to(root) for root in self.roots):
            raise FetchRefused("outside the static files")
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise FetchRefused("not a regular file")
        if info.st_size > MAX_STATIC_BYTES:
            raise FetchRefused("static file too large")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(
            url=path.as_uri(), body=path.read_bytes(), headers={"Content-Type": content_type}
        )


# --- Rendering in this process (the child's work, and the benchmark's) --------------------------


@dataclass(frozen=True)
class RenderResult:
    pdf: bytes
    requested: tuple[str, ...]  # every URL the fetcher was asked for
    refused: tuple[str, ...]  # those it refused


def _trimmed_user_agent_stylesheet() -> CSS:
    """WeasyPrint's HTML user-agent stylesheet without the rules that match every element.

    The stock stylesheet gives every element of the document a ``::marker``, ``::footnote-call``,
    ``::footnote-marker``, ``::note-call``, ``::note-marker`` and ``::note-callback``
    pseudo-element style: six extra styles to cascade per element, about a sixth of the style
    computation of the consent sheet. These documents have no footnotes or notes (``float:
    footnote`` / ``note``), and only list items have markers. Should a WeasyPrint upgrade change
    these rules, the stock stylesheet is used as it is.
    """
    marker = "::marker {"
    notes = [
        line
        for line in UA.splitlines()
        if line.startswith(("::footnote-", "::note-")) and line.rstrip().endswith("}")
    ]
    if UA.count(marker) != 1 or len(notes) != 5:
        logger.warning("WeasyPrint's user-agent stylesheet changed; using it untrimmed")
        return UA_STYLESHEET
    trimmed = UA.replace(marker, "li::marker, summary::marker {")
    for line in notes:
        trimmed = trimmed.replace(line, "")
    # Its @counter-style rules are already in WeasyPrint's UA_COUNTER_STYLE: parse them aside.
    return CSS(string=trimmed, counter_style=CounterStyle())


_USER_AGENT_STYLESHEET = _trimmed_user_agent_stylesheet()


class _Html(HTML):
    """WeasyPrint's HTML document, cascaded with the trimmed user-agent stylesheet."""

    def _ua_stylesheets(self, forms=False):
        return [
            _USER_AGENT_STYLESHEET if sheet is UA_STYLESHEET else sheet
            for sheet in super()._ua_stylesheets(forms)
        ]


_font_config: FontConfiguration | None = None


def font_config() -> FontConfiguration:
    """One FontConfiguration per process: @font-face files are registered once, then reused."""
    global _font_config
    if _font_config is None:
        _font_config = FontConfiguration()
    return _font_config


def base_url_for(roots: tuple[Path, ...]) -> str:
    """Relative URLs in the template (``planner/print.css``) resolve inside the first root."""
    return roots[0].as_uri() + "/"


def render_here(html: str, roots: tuple[Path | str, ...]) -> RenderResult:
    """Renders ``html`` to PDF in the current process (no time limit: see ``render_pdf``)."""
    roots = tuple(Path(root) for root in roots)
    fetcher = StaticOnlyFetcher(roots)
    document = _Html(string=html, base_url=base_url_for(fetcher.roots), url_fetcher=fetcher).render(
        font_config=font_config(), **PDF_OPTIONS
    )
    # rel=attachment is never honoured: no embedded files, no file-attachment annotations.
    document.metadata.attachments = []
    for page in document.pages:
        page.links = [link for link in page.links if link[0] != "attachment"]
    pdf = document.write_pdf(**PDF_OPTIONS)
    return RenderResult(pdf=pdf, requested=tuple(fetcher.requested), refused=tuple(fetcher.refused))


# --- The child process and the time limit -------------------------------------------------------


def _child_main(connection) -> None:
    """Renders the jobs sent over ``connection`` until the parent closes it."""
    # Below the request handlers in the CPU scheduler: while the server is busy, a PDF waits a
    # little longer rather than slowing every page; on an idle server it renders at full speed.
    os.nice(10)
    while True:
        try:
            html, roots = connection.recv()
        except (EOFError, OSError):
            return
        try:
            result = render_here(html, roots)
        except Exception as error:  # reported to the parent, which raises PdfError
            connection.send(("error", f"{type(error).__name__}: {error}"[:500]))
        else:
            connection.send(("ok", result))


_context = multiprocessing.get_context("forkserver")
# The fork server imports this module once; every child forked from it starts with WeasyPrint
# loaded. (A no-op if the fork server already runs.)
_context.set_forkserver_preload([__name__])


class _Renderer:
    """One child process per server process, replaced after a timeout or a crash."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process = None
        self._connection = None
        self._pid = None  # the server process that owns the child (gunicorn forks after import)

    def render(self, html: str, roots: tuple[Path, ...], timeout: float) -> RenderResult:
        deadline = time.monotonic() + timeout
        if not self._lock.acquire(timeout=max(timeout, 0)):
            raise PdfRenderTimeout(BUSY_MESSAGE)
        try:
            self._ensure_child()
            try:
                self._connection.send((html, tuple(str(root) for root in roots)))
                ready = self._connection.poll(max(deadline - time.monotonic(), 0))
                if not ready:
                    self._stop_child()
                    raise timed_out(timeout)
                status, payload = self._connection.recv()
            except (EOFError, OSError, BrokenPipeError):
                self._stop_child()
                raise PdfError(STOPPED_MESSAGE) from None
        finally:
            self._lock.release()
        if status != "ok":
            logger.error("PDF render failed: %s", payload)
            raise PdfError("The PDF could not be made.")
        return payload

    def _ensure_child(self) -> None:
        if self._pid != os.getpid():  # inherited across a fork: not ours to use
            self._process = self._connection = None
            self._pid = os.getpid()
        if self._process is not None and self._process.is_alive():
            return
        self._stop_child()
        parent_end, child_end = _context.Pipe()
        process = _context.Process(
            target=_child_main, args=(child_end,), name="pdf-renderer", daemon=True
        )
        process.start()
        child_end.close()
        self._process, self._connection = process, parent_end

    def _stop_child(self) -> None:
        process, connection = self._process, self._connection
        self._process = self._connection = None
        if connection is not None:
            connection.close()
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(timeout=5)
            process.close()

    @property
    def child_pid(self) -> int | None:
        return self._process.pid if self._process is not None else None


_renderer = _Renderer()


def render_pdf(html: str, *, timeout: float | None = None) -> RenderResult:
    """Renders ``html`` (a complete document) within the time limit: through the app server's
    render service when gunicorn started one (``planner.render_service``), else in this
    process's own render child."""
    from django.conf import settings

    from planner import render_service

    if timeout is None:
        timeout = float(settings.PDF_RENDER_TIMEOUT_SECONDS)
    roots = static_roots()
    shared = render_service.render(html, roots, timeout)
    return shared if shared is not None else _renderer.render(html, roots, timeout)


MINIMAL_DOCUMENT = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Warm-up</title>'
    '<link rel="stylesheet" href="planner/print.css"></head><body><p>Nanofat planner</p>'
    "</body></html>"
)


#: What the render service renders as it starts: a little of everything the consent sheet and
#: the operative record use (regular and bold text, a paginated table, a list, an inline SVG with
#: text, the running header and the margin boxes), so the first real PDF of a child finds its
#: fonts loaded and WeasyPrint's code paths warm.
WARM_UP_DOCUMENT = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Warm-up</title>'
    '<link rel="stylesheet" href="planner/print.css"></head><body><div class="sheet">'
    '<header class="running-header"><table class="rh"><tbody><tr><td class="rh-clinic">'
    '<strong>Nanofat planner</strong><br>Warm-up</td><td class="rh-patient"><strong>Warm-up'
    '</strong><br><span class="rh-label">Chart</span> 0</td></tr></tbody></table></header>'
    '<main><h1>Warm-up</h1><p class="doc-line">Document <span class="docid">NF-WARM</span>'
    ' · <span class="ruleset">Rule set v0</span></p><h2>Warm-up</h2>'
    '<svg class="face-map" viewBox="0 0 400 560" width="400" height="560"'
    ' font-family="Nanofat Sans"><path d="M10 10h40v25h-40Z" fill="#ffffff" stroke="#000000"/>'
    '<g font-size="10" text-anchor="middle"><text x="30" y="20" font-weight="bold">WU</text>'
    '<text x="30" y="31">0.1</text></g></svg>'
    '<table class="grid"><caption>Warm-up</caption><thead><tr><th scope="col">#</th>'
    '<th scope="col">Zone</th></tr></thead><tbody><tr><td>1</td><td>Warm-up</td></tr>'
    "<tr><td>2</td><td>Warm-up</td></tr></tbody></table>"
    '<ul><li>Warm-up <span class="ref">(ref 1)</span></li></ul></main></div></body></html>'
)


__all__ = [
    "BUSY_MESSAGE",
    "PDF_OPTIONS",
    "STOPPED_MESSAGE",
    "WARM_UP_DOCUMENT",
    "FetchRefused",
    "PdfError",
    "PdfRenderTimeout",
    "RenderResult",
    "StaticOnlyFetcher",
    "render_here",
    "render_pdf",
    "timed_out",
    "weasyprint",
]

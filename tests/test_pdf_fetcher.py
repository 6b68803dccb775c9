"""The PDF renderer's URL fetcher: static files and data: URIs only, everything else refused.

Pure unit tests of ``planner.pdf.StaticOnlyFetcher`` and ``render_here`` (no database): a
temporary folder stands in for the static folder, so symlinks can be planted in it.
"""

import http.server
import io
import os
import threading
from pathlib import Path

import pytest
from pypdf import PdfReader

from planner import pdf

PROJECT_STATIC = Path(__file__).resolve().parent.parent / "static"


@pytest.fixture
def static_root(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    (root / "planner").mkdir(parents=True)
    (root / "planner" / "print.css").write_text("p { color: black }")
    (tmp_path / "secret.txt").write_text("outside the static folder")
    return root


@pytest.fixture
def fetcher(static_root: Path) -> pdf.StaticOnlyFetcher:
    return pdf.StaticOnlyFetcher((static_root,))


def test_it_serves_a_static_file(fetcher, static_root):
    response = fetcher.fetch((static_root / "planner" / "print.css").as_uri())
    assert response.read() == b"p { color: black }"
    assert response.content_type == "text/css"
    assert fetcher.refused == []


def test_it_serves_data_uris(fetcher):
    response = fetcher.fetch("data:text/plain;base64,aGVsbG8=")
    assert response.read() == b"hello"


@pytest.mark.parametrize(
    "path",
    [
        "/planner/../../secret.txt",
        "/planner/%2e%2e/%2e%2e/secret.txt",
        "/planner/%2E%2E/%2E%2E/secret.txt",
        "/planner/.%2e/.%2e/secret.txt",
        "/%2e%2e/secret.txt",
    ],
)
def test_it_refuses_dot_dot_escapes(fetcher, static_root, path):
    url = "file://" + str(static_root) + path
    with pytest.raises(pdf.FetchRefused):
        fetcher.fetch(url)
    assert fetcher.refused == [url]


def test_it_refuses_a_symlink_out_of_the_static_folder(fetcher, static_root):
    (static_root / "planner" / "link.txt").symlink_to(static_root.parent / "secret.txt")
    with pytest.raises(pdf.FetchRefused):
        fetcher.fetch((static_root / "planner" / "link.txt").as_uri())


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "file:///dev/urandom",
        "/dev/urandom",
        "file://otherhost/etc/passwd",
        "file://otherhost{root}/planner/print.css",
        "http://127.0.0.1:9/x.css",
        "https://example.org/x.css",
        "ftp://127.0.0.1/x.css",
        "gopher://127.0.0.1/",
        "javascript:alert(1)",
        "file:///proc/self/environ",
    ],
)
def test_it_refuses_everything_else(fetcher, static_root, url):
    url = url.format(root=static_root)
    with pytest.raises(pdf.FetchRefused):
        fetcher.fetch(url)
    assert fetcher.requested == [url]
    assert fetcher.refused == [url]


def test_it_refuses_a_device_or_folder_inside_the_static_folder(fetcher, static_root):
    fifo = static_root / "planner" / "pipe"
    os.mkfifo(fifo)
    for target in (fifo, static_root / "planner"):
        with pytest.raises(pdf.FetchRefused):
            fetcher.fetch(target.as_uri())


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):
        self.hits.append(self.path)
        self.send_response(302)
        self.send_header("Location", "file:///etc/passwd")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_it_never_connects_so_no_redirect_is_ever_followed(fetcher):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/redirect-to-passwd.css"
        with pytest.raises(pdf.FetchRefused):
            fetcher.fetch(url)
    finally:
        server.shutdown()
        server.server_close()
    assert _Recorder.hits == []


# --- through WeasyPrint ------------------------------------------------------------------------

HOSTILE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>t</title>
<link rel="stylesheet" href="http://127.0.0.1:9/x.css">
<link rel="attachment" href="planner/print.css">
<link rel="attachment" href="file:///etc/passwd">
<style>p { background: url("file:///etc/passwd") }</style>
</head><body><p>Text</p><img src="file:///etc/passwd" alt="">
<img src="../../../../../../etc/passwd" alt="">
<a rel="attachment" href="planner/print.css">attached?</a></body></html>"""


def test_a_hostile_document_renders_without_reading_anything_outside_static(static_root):
    result = pdf.render_here(HOSTILE, (static_root,))
    assert result.pdf.startswith(b"%PDF")
    allowed = [url for url in result.requested if url not in result.refused]
    assert all(url.startswith(static_root.as_uri() + "/") for url in allowed), allowed
    assert "http://127.0.0.1:9/x.css" in result.refused
    assert "file:///etc/passwd" in result.refused
    assert any(url.endswith("/etc/passwd") for url in result.refused)


def test_rel_attachment_is_never_honoured_even_for_a_static_file(static_root):
    result = pdf.render_here(HOSTILE, (static_root,))
    reader = PdfReader(io.BytesIO(result.pdf))
    assert reader.attachments == {}
    assert b"/EmbeddedFile" not in result.pdf
    assert b"/FileAttachment" not in result.pdf
    assert b"color: black" not in result.pdf


def test_the_output_is_a_tagged_pdf_with_its_title():
    result = pdf.render_here(pdf.MINIMAL_DOCUMENT, (PROJECT_STATIC,))
    reader = PdfReader(io.BytesIO(result.pdf))
    assert reader.metadata.title == "Warm-up"
    assert "/StructTreeRoot" in reader.trailer["/Root"]
    assert reader.trailer["/Root"]["/MarkInfo"]["/Marked"]

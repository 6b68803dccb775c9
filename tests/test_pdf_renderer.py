"""The renderer's set-up: the trimmed user-agent stylesheet and the warm-up document.

No database: the documents are the module's own, rendered with the project's static folder.
"""

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

"""How every PDF the planner makes is sent: private, never cached, named after the plan."""

from django.http import HttpResponse


def pdf_response(content: bytes, filename: str) -> HttpResponse:
    """``filename`` names the plan and the document, never the patient."""
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "no-store, private"
    return response

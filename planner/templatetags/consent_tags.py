"""Filters for the consent sheet's wording blocks."""

import itertools
import re

from django import template
from django.utils.html import escape, format_html_join
from django.utils.safestring import SafeString, mark_safe

from ..models_consent import CITATION

register = template.Library()


def _inline(text: str) -> str:
    """Escaped text with its citations set in small print (escaping changes no character of
    a citation)."""
    return CITATION.sub(r'<span class="ref">\g<0></span>', escape(text))


@register.filter
def wording(body: str) -> SafeString:
    """A wording block as paragraphs and bullet lists, every character of it escaped.

    A blank line separates paragraphs; lines that start with "- " are a list, also right
    after a line of text (the text before and after them stays a paragraph of its own).
    """
    parts = []
    for paragraph in re.split(r"\n\s*\n", (body or "").strip()):
        lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
        for is_list, run in itertools.groupby(lines, key=lambda line: line.startswith("- ")):
            run = list(run)
            if is_list:
                items = "".join(f"<li>{_inline(line[2:])}</li>" for line in run)
                parts.append(f"<ul>{items}</ul>")
            else:
                parts.append(f"<p>{_inline(' '.join(run))}</p>")
    return mark_safe("\n".join(parts))  # noqa: S308  (every piece escaped above)


@register.filter
def paragraphs(text: str) -> SafeString:
    """Free text a person typed (notes), as escaped paragraphs that keep its line breaks."""
    chunks = [chunk for chunk in re.split(r"\n\s*\n", (text or "").strip()) if chunk.strip()]
    return format_html_join("\n", "<p>{}</p>", ((chunk.strip(),) for chunk in chunks))

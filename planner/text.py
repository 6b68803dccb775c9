"""Normalising free text people type, so that stored names cannot spoof what others read."""

import re
import unicodedata

from django.core.exceptions import ValidationError

# Characters that reorder or hide text (U+202E turns "gpj.exe" into "exe.jpg" on screen).
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalise_text(value: str, *, multiline: bool = False) -> str:
    """NFC-normalised, trimmed text; refuses direction overrides and control characters."""
    if _BIDI_CONTROLS.search(value):
        raise ValidationError(
            "Remove the text-direction control characters (they can disguise what is written).",
            code="bidi_control",
        )
    if _CONTROL.search(value) or (not multiline and ("\n" in value or "\r" in value)):
        raise ValidationError("Remove the control characters from this text.", code="control")
    value = _INVISIBLE.sub("", unicodedata.normalize("NFC", value))
    return value.strip() if not multiline else value.strip("\n\r ")

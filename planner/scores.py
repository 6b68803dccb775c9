"""Outcome scores of a follow-up visit: the scales, their bounds, totals and validation.

Pure Python, no Django: the form, the model's CHECK constraints, the charts and the CSV export
all read the tables below, so a bound is written once. ``validate`` is the one entry point for
entered values and raises ``ScoreError`` (the module's only exception) with a message per field.

The scales (clinical summary, ref 6: scar outcomes were judged with POSAS, FACE-Q and the
Vancouver Scar Scale):

- POSAS 2.0 (Patient and Observer Scar Assessment Scale): a patient scale and an observer scale,
  six items each, every item 1-10 (1 = like normal skin), so each total is 6-60. The overall
  opinion (1-10) of each scale is asked separately and is never part of the total.
- Vancouver Scar Scale: vascularity 0-3, pigmentation 0-2, pliability 0-5, height 0-3; total
  0-13. Versions differ in how the items are examined, so the version used is stored with them.
- GAIS (Global Aesthetic Improvement Scale), 5 points, by the surgeon and by the patient.
- Patient satisfaction, 5 points.
- FACE-Q is a licensed instrument: the clinic scores it under its own licence and enters only
  the resulting scale score (0-100) and the scale's name; the questions are not reproduced here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class ScoreError(ValueError):
    """Entered scores out of bounds or incomplete; ``errors`` maps a field to its messages."""

    def __init__(self, errors: Mapping[str, list[str]]):
        self.errors = {field: list(messages) for field, messages in errors.items()}
        super().__init__("; ".join(m for messages in self.errors.values() for m in messages))


@dataclass(frozen=True)
class Item:
    field: str  # the model field that stores it
    label: str
    scale: str  # the scale's name, for messages
    low: int
    high: int
    anchors: str = ""  # what the ends of the range mean

    def describe(self) -> str:
        return f"{self.label} ({self.scale}, {self.low}-{self.high})"


@dataclass(frozen=True)
class Scale:
    key: str
    name: str
    items: tuple[Item, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(item.field for item in self.items)

    @property
    def total_range(self) -> tuple[int, int]:
        return sum(i.low for i in self.items), sum(i.high for i in self.items)


def _items(prefix: str, scale: str, names: tuple[tuple[str, str], ...], low, high, anchors):
    return tuple(
        Item(f"{prefix}_{code}", label, scale, low, high, anchors) for code, label in names
    )


POSAS_PATIENT_ANCHORS = "1 = no, not at all / as normal skin; 10 = yes, very much / very different"
POSAS_OBSERVER_ANCHORS = "1 = like normal skin; 10 = worst scar imaginable"

POSAS_PATIENT = Scale(
    "posas_patient",
    "POSAS 2.0 patient scale",
    _items(
        "posas_patient",
        "POSAS 2.0 patient scale",
        (
            ("pain", "Pain"),
            ("itching", "Itching"),
            ("colour", "Colour"),
            ("stiffness", "Stiffness"),
            ("thickness", "Thickness"),
            ("irregularity", "Irregularity"),
        ),
        1,
        10,
        POSAS_PATIENT_ANCHORS,
    ),
)
POSAS_OBSERVER = Scale(
    "posas_observer",
    "POSAS 2.0 observer scale",
    _items(
        "posas_observer",
        "POSAS 2.0 observer scale",
        (
            ("vascularity", "Vascularity"),
            ("pigmentation", "Pigmentation"),
            ("thickness", "Thickness"),
            ("relief", "Relief"),
            ("pliability", "Pliability"),
            ("surface_area", "Surface area"),
        ),
        1,
        10,
        POSAS_OBSERVER_ANCHORS,
    ),
)
VSS = Scale(
    "vss",
    "Vancouver Scar Scale",
    (
        Item(
            "vss_vascularity",
            "Vascularity",
            "Vancouver Scar Scale",
            0,
            3,
            "0 normal, 1 pink, 2 red, 3 purple",
        ),
        Item(
            "vss_pigmentation",
            "Pigmentation",
            "Vancouver Scar Scale",
            0,
            2,
            "0 normal, 1 hypopigmentation, 2 hyperpigmentation",
        ),
        Item(
            "vss_pliability",
            "Pliability",
            "Vancouver Scar Scale",
            0,
            5,
            "0 normal, 1 supple, 2 yielding, 3 firm, 4 banding, 5 contracture",
        ),
        Item(
            "vss_height",
            "Height",
            "Vancouver Scar Scale",
            0,
            3,
            "0 flat, 1 under 2 mm, 2 2-5 mm, 3 over 5 mm",
        ),
    ),
)
SCALES = (POSAS_PATIENT, POSAS_OBSERVER, VSS)

POSAS_PATIENT_OVERALL = Item(
    "posas_patient_overall",
    "Overall opinion",
    "POSAS 2.0 patient scale",
    1,
    10,
    "1 = as normal skin; 10 = very different (not part of the total)",
)
POSAS_OBSERVER_OVERALL = Item(
    "posas_observer_overall",
    "Overall opinion",
    "POSAS 2.0 observer scale",
    1,
    10,
    "1 = as normal skin; 10 = worst scar imaginable (not part of the total)",
)

GAIS_LABELS = {
    1: "Very much improved",
    2: "Much improved",
    3: "Improved",
    4: "No change",
    5: "Worse",
}
SATISFACTION_LABELS = {
    1: "Very dissatisfied",
    2: "Dissatisfied",
    3: "Neither satisfied nor dissatisfied",
    4: "Satisfied",
    5: "Very satisfied",
}
GAIS_SURGEON = Item("gais_surgeon", "GAIS, surgeon's rating", "GAIS", 1, 5, "1 very much improved")
GAIS_PATIENT = Item("gais_patient", "GAIS, patient's rating", "GAIS", 1, 5, "1 very much improved")
SATISFACTION = Item(
    "satisfaction", "Patient satisfaction", "satisfaction", 1, 5, "1 very dissatisfied"
)
FACEQ_TOTAL = Item(
    "faceq_total",
    "FACE-Q scale score",
    "FACE-Q (licensed)",
    0,
    100,
    "the Rasch-transformed score of one FACE-Q scale, scored by the clinic under its licence",
)

#: Every single bounded value, scale items included: the model builds a CHECK from each.
SINGLE_ITEMS = (
    GAIS_SURGEON,
    GAIS_PATIENT,
    SATISFACTION,
    POSAS_PATIENT_OVERALL,
    POSAS_OBSERVER_OVERALL,
    FACEQ_TOTAL,
)
ALL_ITEMS = tuple(item for scale in SCALES for item in scale.items) + SINGLE_ITEMS
ITEMS_BY_FIELD = {item.field: item for item in ALL_ITEMS}

VSS_VERSIONS = {
    "vss_1990": "Vancouver Scar Scale (Sullivan et al., 1990)",
    "mvss_1995": "Modified Vancouver Scar Scale (Baryza and Baryza, 1995)",
}


def check_item(item: Item, value: object) -> int | None:
    """The value as an int within the item's bounds, or None when left blank."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ScoreError({item.field: [f"{item.describe()}: enter a whole number."]})
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ScoreError(
                {item.field: [f"{item.describe()}: enter a whole number, not “{value[:20]}”."]}
            ) from None
    if isinstance(value, float):
        if not value.is_integer():
            raise ScoreError({item.field: [f"{item.describe()}: enter a whole number."]})
        value = int(value)
    if not isinstance(value, int):
        raise ScoreError({item.field: [f"{item.describe()}: enter a whole number."]})
    if value < item.low:
        raise ScoreError(
            {
                item.field: [
                    f"{item.label} ({item.scale}) is scored {item.low} to {item.high}; "
                    f"{value} is below the scale."
                ]
            }
        )
    if value > item.high:
        raise ScoreError(
            {
                item.field: [
                    f"{item.label} ({item.scale}) is scored {item.low} to {item.high}; "
                    f"{value} is above the scale."
                ]
            }
        )
    return value


def total(scale: Scale, values: Mapping[str, int | None]) -> int | None:
    """The scale's total, or None when no item is scored. A partly scored scale is refused:
    a total of five items would read as a better scar than it is."""
    scored = [values.get(field) for field in scale.fields]
    if all(value is None for value in scored):
        return None
    missing = [item.label for item in scale.items if values.get(item.field) is None]
    if missing:
        raise ScoreError(
            {
                scale.key: [
                    f"Score all {len(scale.items)} items of the {scale.name} or none of them; "
                    f"missing: {', '.join(missing)}."
                ]
            }
        )
    return sum(int(value) for value in scored)


def validate(raw: Mapping[str, object]) -> dict[str, int | None]:
    """Checks every entered score; returns them as ints (None for blank) or raises ScoreError
    naming every problem at once."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, int | None] = {}
    for item in ALL_ITEMS:
        try:
            cleaned[item.field] = check_item(item, raw.get(item.field))
        except ScoreError as error:
            for field, messages in error.errors.items():
                errors.setdefault(field, []).extend(messages)
            cleaned[item.field] = None
    for scale in SCALES:
        if any(field in errors for field in scale.fields):
            continue
        try:
            total(scale, cleaned)
        except ScoreError as error:
            for field, messages in error.errors.items():
                errors.setdefault(field, []).extend(messages)
    vss_scored = any(cleaned.get(field) is not None for field in VSS.fields)
    version = raw.get("vss_version") or ""
    if vss_scored and version not in VSS_VERSIONS:
        errors.setdefault("vss_version", []).append(
            "Say which version of the Vancouver Scar Scale was used."
        )
    if cleaned.get("faceq_total") is not None and not str(raw.get("faceq_scale") or "").strip():
        errors.setdefault("faceq_scale", []).append(
            "Name the FACE-Q scale the score comes from (e.g. Satisfaction with Skin)."
        )
    if errors:
        raise ScoreError(errors)
    return cleaned


def totals(values: Mapping[str, int | None]) -> dict[str, int | None]:
    """Totals of stored (already valid) scores: {"posas_patient": 23, "vss": None, ...}."""
    result = {}
    for scale in SCALES:
        try:
            result[scale.key] = total(scale, values)
        except ScoreError:
            result[scale.key] = None
    return result

"""Reference data changes: validation, new rule-set versions and their differences, zone edits.

A rule-set version is never edited once written (consented plans point at it). A change copies
every value of the version in force, applies the change and saves the result as the next
version, with who, when and why, in one transaction together with its audit entry.
"""

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from . import audit
from .choices import RANGE_KEYS, AuditAction, Depth, Indication, ReferenceKey, Technique
from .models import GAUGE_MAX, GAUGE_MIN, MAX_INJECTION_ML, ReferenceValue, RuleSet, TreatmentZone
from .models import User as UserModel
from .text import normalise_text

VALUE_FIELDS = ("minimum", "maximum", "codes", "unit", "sources", "citation")

# Which vocabulary each list of codes must come from.
VOCABULARIES: dict[str, tuple[str, type]] = {
    ReferenceKey.ALLOWED_DEPTHS: ("depth", Depth),
    ReferenceKey.PERIORAL_FORBIDDEN_DEPTHS: ("depth", Depth),
    ReferenceKey.RECOMMENDED_TECHNIQUES: ("technique", Technique),
    ReferenceKey.DOCUMENTED_INDICATIONS: ("indication", Indication),
}
GAUGE_KEYS = frozenset({ReferenceKey.NEEDLE_GAUGE, ReferenceKey.CANNULA_GAUGE})
SOURCES_PATTERN = re.compile(r"^\d{1,3}(\s*,\s*\d{1,3})*$")


class NothingChanged(ValidationError):
    pass


# --- validation -----------------------------------------------------------------------------


def clean_value(key: str, data: dict[str, Any]) -> dict[str, Any]:
    """Checks one reference value; returns it normalised or raises a ValidationError whose
    messages are keyed by field, each saying what is wrong and what is expected."""
    errors: dict[str, list[str]] = {}

    def error(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    cleaned = dict(data)
    for field in ("unit", "sources", "citation", "codes"):
        text = cleaned.get(field) or ""
        try:
            cleaned[field] = normalise_text(text, multiline=field == "citation")
        except ValidationError as refusal:
            error(field, refusal.messages[0])
            cleaned[field] = ""

    if not cleaned["citation"]:
        error(
            "citation",
            "Cite the sentence of the clinical summary this value rests on; a reference value "
            "without its source cannot be shown next to the rule that uses it.",
        )
    if not SOURCES_PATTERN.match(cleaned["sources"]):
        error("sources", 'Give the summary\'s reference numbers, separated by commas, e.g. "5, 3".')

    minimum, maximum = cleaned.get("minimum"), cleaned.get("maximum")
    if key in RANGE_KEYS:
        if cleaned["codes"]:
            error("codes", "This value is a range: leave the codes empty.")
        if minimum is None:
            error("minimum", "Enter the minimum of the range.")
        if maximum is None:
            error("maximum", "Enter the maximum of the range.")
        if minimum is not None and maximum is not None and minimum > maximum:
            error(
                "minimum",
                f"The minimum ({_plain(minimum)}) is above the maximum ({_plain(maximum)}).",
            )
        for field, bound in (("minimum", minimum), ("maximum", maximum)):
            if bound is None:
                continue
            if key in GAUGE_KEYS:
                if bound != bound.to_integral_value():
                    error(field, f"A gauge is a whole number; {_plain(bound)} is not.")
                elif not GAUGE_MIN <= bound <= GAUGE_MAX:
                    error(
                        field,
                        f"{_plain(bound)} G is not a needle or cannula gauge; "
                        f"enter {GAUGE_MIN}-{GAUGE_MAX}.",
                    )
            elif key == ReferenceKey.ZONE_VOLUME_ML and not Decimal(0) < bound <= MAX_INJECTION_ML:
                error(
                    field,
                    f"A zone volume must be more than 0 and at most {MAX_INJECTION_ML} mL; "
                    f"{_plain(bound)} is not.",
                )
            elif bound < 0:
                error(field, f"{_plain(bound)} is negative; enter 0 or more.")
    else:
        if minimum is not None or maximum is not None:
            error("minimum", "This value is a list of codes: leave the minimum and maximum empty.")
        codes = [part.strip() for part in cleaned["codes"].split(",") if part.strip()]
        noun, vocabulary = VOCABULARIES[key]
        unknown = [code for code in codes if code not in vocabulary.values]
        if not codes:
            error("codes", f"List at least one {noun} code, e.g. {vocabulary.values[0]}.")
        elif unknown:
            error(
                "codes",
                f"Not a {noun} code: {', '.join(unknown)}. "
                f"Use only: {', '.join(vocabulary.values)}.",
            )
        # Comma-separated without spaces, duplicates dropped, in the order typed.
        cleaned["codes"] = ",".join(dict.fromkeys(codes))

    if errors:
        raise ValidationError(errors)
    return cleaned


def clean_reason(text: str) -> str:
    reason = normalise_text(text or "", multiline=True)
    if not reason:
        raise ValidationError(
            "Say why the reference data changes (e.g. the protocol review it follows); "
            "the reason is kept with the new version."
        )
    return reason


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f") if isinstance(value, Decimal) else str(value)
    return text


# --- versions and differences ---------------------------------------------------------------


def value_fields(value: ReferenceValue) -> dict[str, Any]:
    return {field: getattr(value, field) for field in VALUE_FIELDS}


def _display(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return _plain(value)
    return str(value)


@dataclass(frozen=True)
class Difference:
    key: str
    label: str
    field: str
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.label}: {self.field} {self.old} → {self.new}"


def previous_version(rule_set: RuleSet) -> RuleSet | None:
    return RuleSet.objects.filter(version__lt=rule_set.version).order_by("-version").first()


def differences(previous: RuleSet | None, rule_set: RuleSet) -> list[Difference]:
    """What changed from ``previous`` to ``rule_set``, value by value and field by field."""
    old = {v.key: v for v in previous.values.all()} if previous else {}
    new = {v.key: v for v in rule_set.values.all()}
    found = []
    for key in ReferenceKey.values:
        label = ReferenceKey(key).label
        before, after = old.get(key), new.get(key)
        for field in VALUE_FIELDS:
            a = getattr(before, field) if before else None
            b = getattr(after, field) if after else None
            if _display(a) != _display(b):
                found.append(Difference(key, label, field, _display(a), _display(b)))
    return found


def _lock_current() -> RuleSet | None:
    # Two admins saving at once: the second waits here and then builds on the first's version.
    return RuleSet.objects.select_for_update().order_by("-version").first()


def create_version(
    *,
    actor: UserModel,
    reason: str,
    changes: dict[str, dict[str, Any]],
    request: HttpRequest | None = None,
    rule_set: RuleSet | None = None,
) -> RuleSet:
    """Saves the version in force with ``changes`` applied ({key: {field: value}}) as the next
    version. ``rule_set`` may be an unsaved instance to fill (the admin's add form)."""
    reason = clean_reason(reason)
    cleaned_changes = {key: clean_value(key, fields) for key, fields in changes.items()}
    with transaction.atomic():
        current = _lock_current()
        base = {v.key: value_fields(v) for v in current.values.all()} if current else {}
        merged = {key: dict(base.get(key, {})) for key in ReferenceKey.values}
        for key, fields in cleaned_changes.items():
            merged[key].update({f: fields[f] for f in VALUE_FIELDS if f in fields})
        missing = [key for key, fields in merged.items() if not fields]
        if missing:
            raise ValidationError(f"Values missing for: {', '.join(missing)}.")
        if current is not None and merged == base:
            raise NothingChanged(
                f"No value differs from version {current.version}, so no new version was made."
            )
        rule_set = rule_set or RuleSet()
        rule_set.version = (current.version if current else 0) + 1
        rule_set.created_by = actor
        rule_set.reason = reason
        rule_set.save()
        ReferenceValue.objects.bulk_create(
            ReferenceValue(rule_set=rule_set, key=key, **fields) for key, fields in merged.items()
        )
        found = differences(current, rule_set)
        audit.record(
            actor=actor,
            action=AuditAction.REFERENCE_CHANGE,
            obj=rule_set,
            request=request,
            changes={
                "version": [current.version if current else None, rule_set.version],
                "reason": reason,
                "values": {f"{d.key}.{d.field}": [d.old, d.new] for d in found},
            },
        )
    return rule_set


# --- treatment zones ------------------------------------------------------------------------

SHAPE_PATTERN = re.compile(r"^[MmLlHhVvCcSsQqTtAaZz0-9eE.,\s+-]+$")
# Attributes the rules read: fixed once a planned injection uses the zone, so a consented
# plan's findings never change under it (create a new zone and deactivate the old one instead).
RULE_FIELDS = ("code", "region", "laterality")


def zone_in_use(zone: TreatmentZone) -> bool:
    from .models import PlannedInjection

    return zone.pk is not None and PlannedInjection.objects.filter(zone=zone).exists()


def clean_shape(shape: str) -> str:
    shape = (shape or "").strip()
    if not shape:
        raise ValidationError("Draw the zone: enter SVG path data, e.g. M 10 10 L 40 10 Z.")
    if not SHAPE_PATTERN.match(shape):
        raise ValidationError(
            "The shape is SVG path data only: the letters M L H V C S Q T A Z, numbers, "
            "spaces, commas and signs."
        )
    if len(shape) > 4000:
        raise ValidationError("The shape is too long (at most 4,000 characters).")
    return shape


def zone_save(
    *,
    zone: TreatmentZone,
    changed: list[str],
    initial: dict[str, Any],
    reason: str,
    actor: UserModel,
    request: HttpRequest | None = None,
) -> TreatmentZone:
    """Saves an added or edited zone with its audit entry. Zones are not part of a rule-set
    version (their rule-relevant attributes are fixed once used), so no new version is made."""
    creating = zone.pk is None
    reason = clean_reason(reason)
    with transaction.atomic():
        zone.save()
        audit.record(
            actor=actor,
            action=AuditAction.REFERENCE_CHANGE,
            obj=zone,
            request=request,
            changes={
                "zone": zone.code,
                "created" if creating else "fields": {
                    name: [_display(initial.get(name)), _display(getattr(zone, name))]
                    for name in changed
                },
                "reason": reason,
            },
        )
    return zone

"""Forms of the follow-up pages: the visit record, adverse events, photo upload, the export.

Score fields take the raw text and leave every bound to ``planner.scores`` (the same table the
database CHECK constraints are built from), so a refused score always gets that module's
message: which item, which scale, its range, and whether the value was above or below it.
"""

from __future__ import annotations

import datetime

from django import forms
from django.utils import timezone
from django.utils.formats import date_format

from . import photos, scores
from .forms import DATE_INPUT, NormalisedTextMixin
from .models import FollowUp, TreatmentPlan, TreatmentZone
from .models_followup import AdverseEventKind, PhotoView, Severity

NOT_SCORED = ("", "— not scored —")


class ScoreField(forms.CharField):
    """Raw text; ``VisitForm.clean`` checks it against ``planner.scores``."""

    def __init__(self, item: scores.Item, *, choices=None, **kwargs):
        self.item = item
        if choices is not None:
            widget = forms.Select(choices=[NOT_SCORED, *choices])
        else:
            widget = forms.TextInput(
                attrs={
                    "inputmode": "numeric",
                    "size": 3,
                    "autocomplete": "off",
                }
            )
        super().__init__(
            label=item.label,
            required=False,
            max_length=6,
            widget=widget,
            help_text=f"{item.low}-{item.high}" if choices is None else "",
            **kwargs,
        )


def _labelled(labels: dict[int, str]) -> list[tuple[str, str]]:
    return [(str(value), f"{value}: {label}") for value, label in labels.items()]


def _anchored(item: scores.Item) -> list[tuple[str, str]]:
    """VSS choices with their descriptors: "0: normal", "1: pink" ..."""
    parts = [part.strip() for part in item.anchors.split(",")]
    labels = {}
    for part in parts:
        number, _, text = part.partition(" ")
        labels[int(number)] = text
    return [(str(v), f"{v}: {labels.get(v, '')}") for v in range(item.low, item.high + 1)]


class VisitForm(NormalisedTextMixin, forms.Form):
    multiline_fields = ("notes",)

    visited_on = forms.DateField(
        label="Seen on",
        widget=DATE_INPUT,
        error_messages={
            "required": "Enter the date of the visit.",
            "invalid": "Enter the date of the visit as YYYY-MM-DD.",
        },
    )
    gais_surgeon = ScoreField(scores.GAIS_SURGEON, choices=_labelled(scores.GAIS_LABELS))
    gais_patient = ScoreField(scores.GAIS_PATIENT, choices=_labelled(scores.GAIS_LABELS))
    satisfaction = ScoreField(scores.SATISFACTION, choices=_labelled(scores.SATISFACTION_LABELS))
    faceq_scale = forms.CharField(
        label="FACE-Q scale (licensed)",
        required=False,
        max_length=100,
        help_text="The FACE-Q scale your clinic scored under its licence, "
        "e.g. “Satisfaction with Skin”.",
    )
    faceq_total = ScoreField(scores.FACEQ_TOTAL)
    notes = forms.CharField(
        label="Visit notes", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, plan: TreatmentPlan, session_on: datetime.date, scar: bool, **kw):
        super().__init__(*args, **kw)
        self.plan = plan
        self.session_on = session_on
        self.scar = scar
        self.scale_errors: dict[str, list[str]] = {}
        if scar:
            for scale in (scores.POSAS_PATIENT, scores.POSAS_OBSERVER):
                for item in scale.items:
                    self.fields[item.field] = ScoreField(item)
            self.fields["posas_patient_overall"] = ScoreField(scores.POSAS_PATIENT_OVERALL)
            self.fields["posas_observer_overall"] = ScoreField(scores.POSAS_OBSERVER_OVERALL)
            for item in scores.VSS.items:
                self.fields[item.field] = ScoreField(item, choices=_anchored(item))
            self.fields["vss_version"] = forms.ChoiceField(
                label="VSS version used",
                required=False,
                choices=[("", "— choose —"), *scores.VSS_VERSIONS.items()],
            )

    # Groups for the template: (legend, fields, help).
    def scale_groups(self) -> list[dict]:
        if not self.scar:
            return []
        return [
            {
                "id": "posas-patient",
                "legend": "POSAS 2.0 patient scale",
                "help": scores.POSAS_PATIENT_ANCHORS + ". Total 6-60.",
                "fields": [self[f] for f in scores.POSAS_PATIENT.fields],
                "overall": self["posas_patient_overall"],
                "error": self.scale_errors.get("posas_patient"),
            },
            {
                "id": "posas-observer",
                "legend": "POSAS 2.0 observer scale",
                "help": scores.POSAS_OBSERVER_ANCHORS + ". Total 6-60.",
                "fields": [self[f] for f in scores.POSAS_OBSERVER.fields],
                "overall": self["posas_observer_overall"],
                "error": self.scale_errors.get("posas_observer"),
            },
            {
                "id": "vss",
                "legend": "Vancouver Scar Scale",
                "help": "Total 0-13; the version used is stored with the scores.",
                "fields": [self[f] for f in scores.VSS.fields] + [self["vss_version"]],
                "overall": None,
                "error": self.scale_errors.get("vss"),
            },
        ]

    def clean_visited_on(self) -> datetime.date:
        value = self.cleaned_data["visited_on"]
        if value > timezone.localdate():
            raise forms.ValidationError("The visit date cannot be in the future.")
        if value < self.session_on:
            session = date_format(self.session_on, "j M Y")
            raise forms.ValidationError(f"The visit date cannot be before the session ({session}).")
        return value

    def clean(self) -> dict:
        cleaned = super().clean()
        raw = {name: cleaned.get(name) for name in self.fields}
        try:
            values = scores.validate(raw)
        except scores.ScoreError as refusal:
            for field, messages in refusal.errors.items():
                target = field if field in self.fields else None
                for message in messages:
                    self.add_error(target, message)
                    if target is None:
                        # A whole-scale message ("score all 6 items") is shown by its scale.
                        self.scale_errors.setdefault(field, []).append(message)
            return cleaned
        for field, value in values.items():
            if field in self.fields:
                cleaned[field] = value
        return cleaned

    def visit_data(self) -> dict:
        data = {
            "visited_on": self.cleaned_data["visited_on"],
            "notes": self.cleaned_data.get("notes", ""),
            "faceq_scale": self.cleaned_data.get("faceq_scale", "") or "",
        }
        for item in scores.ALL_ITEMS:
            if item.field in self.fields:
                data[item.field] = self.cleaned_data.get(item.field)
        if self.scar:
            data["vss_version"] = self.cleaned_data.get("vss_version", "") or ""
        if data.get("faceq_total") is None:
            data["faceq_scale"] = ""
        return data

    @classmethod
    def initial_for(cls, follow_up: FollowUp) -> dict:
        initial = {
            "visited_on": follow_up.visited_on or min(follow_up.due_on, timezone.localdate()),
            "notes": follow_up.notes,
            "faceq_scale": follow_up.faceq_scale,
            "vss_version": follow_up.vss_version,
        }
        for item in scores.ALL_ITEMS:
            value = getattr(follow_up, item.field)
            initial[item.field] = "" if value is None else str(value)
        return initial


class AdverseEventForm(NormalisedTextMixin, forms.Form):
    """One row of the adverse-event table: one kind of event."""

    present = forms.BooleanField(label="Present", required=False)
    severity = forms.ChoiceField(
        label="Severity", required=False, choices=[("", "—"), *Severity.choices]
    )
    description = forms.CharField(label="Details", required=False, max_length=200)
    resolved_on = forms.DateField(
        label="Resolved on",
        required=False,
        widget=DATE_INPUT,
        error_messages={"invalid": "Enter the date as YYYY-MM-DD."},
    )

    def __init__(self, *args, kind: str, session_on: datetime.date, **kwargs):
        super().__init__(*args, prefix=f"ae-{kind}", **kwargs)
        self.kind = kind
        self.kind_label = AdverseEventKind(kind).label
        self.session_on = session_on

    def clean(self) -> dict:
        cleaned = super().clean()
        present = cleaned.get("present")
        if not present:
            if cleaned.get("severity") or cleaned.get("resolved_on"):
                raise forms.ValidationError(
                    f"{self.kind_label}: tick “present” or clear the row's severity and date."
                )
            return cleaned
        if not cleaned.get("severity"):
            self.add_error("severity", f"{self.kind_label}: choose how severe it was.")
        if self.kind == AdverseEventKind.OTHER and not cleaned.get("description"):
            self.add_error("description", "Say what the other adverse event was.")
        resolved = cleaned.get("resolved_on")
        if resolved is not None:
            if resolved > timezone.localdate():
                self.add_error("resolved_on", f"{self.kind_label}: resolved cannot be in future.")
            elif resolved < self.session_on:
                self.add_error(
                    "resolved_on", f"{self.kind_label}: resolved cannot be before the session."
                )
        return cleaned

    def event(self) -> dict | None:
        if not self.cleaned_data.get("present"):
            return None
        return {
            "kind": self.kind,
            "severity": self.cleaned_data["severity"],
            "description": self.cleaned_data.get("description", ""),
            "resolved_on": self.cleaned_data.get("resolved_on"),
        }


def adverse_event_forms(
    data, *, follow_up: FollowUp, session_on: datetime.date
) -> list[AdverseEventForm]:
    existing = {event.kind: event for event in follow_up.adverse_events.all()}
    result = []
    for kind in AdverseEventKind.values:
        event = existing.get(kind)
        initial = (
            {
                "present": True,
                "severity": event.severity,
                "description": event.description,
                "resolved_on": event.resolved_on,
            }
            if event
            else {}
        )
        result.append(AdverseEventForm(data, kind=kind, session_on=session_on, initial=initial))
    return result


class PhotoUploadForm(forms.Form):
    timepoint = forms.ChoiceField(label="Time point")
    view = forms.ChoiceField(label="View", choices=PhotoView.choices)
    zone = forms.ModelChoiceField(
        label="Zone (for a close-up)",
        queryset=TreatmentZone.objects.filter(active=True),
        to_field_name="code",
        required=False,
        error_messages={"invalid_choice": "Choose a treatment zone from the list."},
    )
    taken_on = forms.DateField(
        label="Taken on",
        widget=DATE_INPUT,
        error_messages={"required": "Enter the date the photo was taken."},
    )
    image = forms.FileField(
        label="Photo",
        help_text="",
        error_messages={
            "required": "Choose a photo to upload.",
            "empty": "The file is empty.",
            "invalid": "No file was received; choose the photo again.",
        },
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/heic"}),
    )

    def __init__(self, *args, follow_ups: list[FollowUp], initial_timepoint: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("baseline", "Baseline (before or on the day of the session)")]
        choices += [
            (str(f.pk), f"{f.label} (due {date_format(f.due_on, 'j M Y')})")
            for f in follow_ups
            if f.status != "cancelled"
        ]
        self.fields["timepoint"].choices = choices
        self.follow_ups = {str(f.pk): f for f in follow_ups}
        if initial_timepoint:
            self.fields["timepoint"].initial = initial_timepoint
        self.fields["taken_on"].initial = timezone.localdate()
        self.fields["image"].help_text = (
            f"{photos.ACCEPTED_DESCRIPTION}, at most {photos.max_bytes() // (1024 * 1024)} MB "
            f"and {photos.max_dimension()} pixels a side. Location and camera data are removed."
        )

    def clean_taken_on(self) -> datetime.date:
        value = self.cleaned_data["taken_on"]
        if value > timezone.localdate():
            raise forms.ValidationError("The date taken cannot be in the future.")
        return value

    def clean_image(self):
        upload = self.cleaned_data["image"]
        try:
            self.clean_photo = photos.clean_upload(
                upload, declared_type=getattr(upload, "content_type", "") or ""
            )
        except photos.PhotoRejected as refusal:
            raise forms.ValidationError(str(refusal)) from None
        return upload

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("view") == PhotoView.CLOSE_UP and not cleaned.get("zone"):
            self.add_error("zone", "Choose the zone this close-up shows.")
        return cleaned

    def follow_up(self) -> FollowUp | None:
        return self.follow_ups.get(self.cleaned_data["timepoint"])


class UnscheduledVisitForm(forms.Form):
    due_on = forms.DateField(
        label="Visit date",
        widget=DATE_INPUT,
        error_messages={"required": "Enter the date of the visit."},
    )


class ExportForm(NormalisedTextMixin, forms.Form):
    multiline_fields = ("reason",)

    date_from = forms.DateField(label="Sessions from", required=False, widget=DATE_INPUT)
    date_to = forms.DateField(label="Sessions up to", required=False, widget=DATE_INPUT)
    identifiable = forms.BooleanField(
        label="Include patient names and chart numbers (identifiable export)",
        required=False,
        help_text="Off by default: patients then appear under a stable pseudonym only.",
    )
    reason = forms.CharField(
        label="Reason for an identifiable export",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required with the identifiable export; kept in the audit trail.",
    )

    def clean(self) -> dict:
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        if cleaned.get("identifiable") and not cleaned.get("reason"):
            self.add_error(
                "reason", "Say why this export needs patient names; the reason is audited."
            )
        if not cleaned.get("identifiable"):
            cleaned["reason"] = ""
        return cleaned

"""Follow-up and outcomes: the clinic's schedule, follow-up visits with their scores and adverse
events, clinical photos, and the log of clinic audit exports.

Imported at the bottom of ``planner.models`` so Django registers these models with the app.
Every score bound is a CHECK constraint built from ``planner.scores`` (the form reads the same
tables), so a value outside a scale cannot be stored by any path.
"""

from functools import reduce
from operator import and_, or_

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from . import intervals, scores
from .models import Clinic, TreatmentPlan, TreatmentZone, _in


class IntervalUnit(models.TextChoices):
    DAY = intervals.DAY, "days"
    WEEK = intervals.WEEK, "weeks"
    MONTH = intervals.MONTH, "months"


class FollowUpStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    DONE = "done", "Seen"
    MISSED = "missed", "Did not attend"
    CANCELLED = "cancelled", "Cancelled"


class AdverseEventKind(models.TextChoices):
    BRUISING = "bruising", "Bruising"
    SWELLING = "swelling", "Swelling"
    TENDERNESS = "tenderness", "Tenderness"
    PAIN = "pain", "Pain"
    INFECTION = "infection", "Infection"
    CYST = "cyst", "Fat cyst"
    GRANULOMA = "granuloma", "Granuloma"
    OTHER = "other", "Other"


class Severity(models.TextChoices):
    MILD = "mild", "Mild"
    MODERATE = "moderate", "Moderate"
    SEVERE = "severe", "Severe"


class PhotoView(models.TextChoices):
    FRONT = "front", "Front"
    OBLIQUE_LEFT = "oblique_left", "Left oblique"
    OBLIQUE_RIGHT = "oblique_right", "Right oblique"
    PROFILE_LEFT = "profile_left", "Left profile"
    PROFILE_RIGHT = "profile_right", "Right profile"
    CLOSE_UP = "close_up", "Close-up of a zone"


# --- the clinic's schedule ---


class ClinicFollowUpSettings(models.Model):
    """When a clinic sees its patients after a session, and when the dashboard calls a review
    due or overdue. A clinic without a row uses ``intervals.DEFAULT_INTERVALS``."""

    clinic = models.OneToOneField(
        Clinic, on_delete=models.CASCADE, related_name="followup_settings"
    )
    due_soon_days = models.PositiveSmallIntegerField(
        "Show as due this many days ahead",
        default=14,
        help_text="A follow-up appears on the dashboard as due from this many days before its "
        "date.",
    )
    overdue_after_days = models.PositiveSmallIntegerField(
        "Overdue after (days)",
        default=7,
        help_text="A follow-up not seen this many days after its date is listed as overdue.",
    )

    class Meta:
        verbose_name = "clinic follow-up settings"
        verbose_name_plural = "clinic follow-up settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(due_soon_days__lte=90), name="followup_settings_due_soon_sane"
            ),
            models.CheckConstraint(
                condition=Q(overdue_after_days__lte=90), name="followup_settings_overdue_sane"
            ),
        ]

    def __str__(self) -> str:
        return f"Follow-up settings of {self.clinic}"

    def interval_list(self) -> list[intervals.Interval]:
        return [intervals.Interval(i.amount, i.unit) for i in self.intervals.all()]


class FollowUpInterval(models.Model):
    settings = models.ForeignKey(
        ClinicFollowUpSettings, on_delete=models.CASCADE, related_name="intervals"
    )
    amount = models.PositiveSmallIntegerField()
    unit = models.CharField(max_length=10, choices=IntervalUnit.choices, default=IntervalUnit.MONTH)

    class Meta:
        ordering = ["unit", "amount"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=1, amount__lte=730), name="followup_interval_amount_sane"
            ),
            models.CheckConstraint(
                condition=_in("unit", IntervalUnit), name="followup_setting_unit_valid"
            ),
            models.UniqueConstraint(
                fields=["settings", "amount", "unit"], name="followup_interval_unique"
            ),
        ]

    def __str__(self) -> str:
        return intervals.Interval(self.amount, self.unit).label


# --- follow-up visits --------------------------------------------------------------------------


def _bounded(field: str, low: int, high: int) -> Q:
    return Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__gte": low, f"{field}__lte": high})


def _all_or_none(fields: tuple[str, ...]) -> Q:
    none = reduce(and_, (Q(**{f"{f}__isnull": True}) for f in fields))
    every = reduce(and_, (Q(**{f"{f}__isnull": False}) for f in fields))
    return none | every


def _score_constraints() -> list[models.CheckConstraint]:
    checks = [
        models.CheckConstraint(
            condition=_bounded(item.field, item.low, item.high),
            name=f"followup_{item.field}_{item.low}_{item.high}",
            violation_error_message=(
                f"{item.label} ({item.scale}) is scored {item.low} to {item.high}."
            ),
        )
        for item in scores.ALL_ITEMS
    ]
    checks += [
        models.CheckConstraint(
            condition=_all_or_none(scale.fields),
            name=f"followup_{scale.key}_complete",
            violation_error_message=f"Score every item of the {scale.name} or none.",
        )
        for scale in scores.SCALES
    ]
    vss_scored = reduce(or_, (Q(**{f"{f}__isnull": False}) for f in scores.VSS.fields))
    checks.append(
        models.CheckConstraint(
            condition=~vss_scored | Q(vss_version__in=list(scores.VSS_VERSIONS)),
            name="followup_vss_version_stored",
            violation_error_message="Say which version of the Vancouver Scar Scale was used.",
        )
    )
    checks.append(
        models.CheckConstraint(
            condition=Q(faceq_total__isnull=True) | ~Q(faceq_scale=""),
            name="followup_faceq_scale_named",
            violation_error_message="Name the FACE-Q scale the score comes from.",
        )
    )
    return checks


def _score_field(item: scores.Item) -> models.PositiveSmallIntegerField:
    return models.PositiveSmallIntegerField(
        f"{item.label} ({item.scale})",
        null=True,
        blank=True,
        help_text=f"{item.low}-{item.high}: {item.anchors}",
    )


class FollowUp(models.Model):
    """One review after a performed session: scheduled from the clinic's intervals (or added
    as an unscheduled visit), then recorded with scores and adverse events."""

    plan = models.ForeignKey(TreatmentPlan, on_delete=models.PROTECT, related_name="follow_ups")
    interval_amount = models.PositiveSmallIntegerField(null=True, blank=True)
    interval_unit = models.CharField(
        max_length=10, choices=IntervalUnit.choices, blank=True, default=""
    )
    label = models.CharField(max_length=40)
    due_on = models.DateField("Due on")
    status = models.CharField(
        max_length=10, choices=FollowUpStatus.choices, default=FollowUpStatus.SCHEDULED
    )
    visited_on = models.DateField("Seen on", null=True, blank=True)

    gais_surgeon = _score_field(scores.GAIS_SURGEON)
    gais_patient = _score_field(scores.GAIS_PATIENT)
    satisfaction = _score_field(scores.SATISFACTION)

    posas_patient_pain = _score_field(scores.POSAS_PATIENT.items[0])
    posas_patient_itching = _score_field(scores.POSAS_PATIENT.items[1])
    posas_patient_colour = _score_field(scores.POSAS_PATIENT.items[2])
    posas_patient_stiffness = _score_field(scores.POSAS_PATIENT.items[3])
    posas_patient_thickness = _score_field(scores.POSAS_PATIENT.items[4])
    posas_patient_irregularity = _score_field(scores.POSAS_PATIENT.items[5])
    posas_patient_overall = _score_field(scores.POSAS_PATIENT_OVERALL)

    posas_observer_vascularity = _score_field(scores.POSAS_OBSERVER.items[0])
    posas_observer_pigmentation = _score_field(scores.POSAS_OBSERVER.items[1])
    posas_observer_thickness = _score_field(scores.POSAS_OBSERVER.items[2])
    posas_observer_relief = _score_field(scores.POSAS_OBSERVER.items[3])
    posas_observer_pliability = _score_field(scores.POSAS_OBSERVER.items[4])
    posas_observer_surface_area = _score_field(scores.POSAS_OBSERVER.items[5])
    posas_observer_overall = _score_field(scores.POSAS_OBSERVER_OVERALL)

    vss_vascularity = _score_field(scores.VSS.items[0])
    vss_pigmentation = _score_field(scores.VSS.items[1])
    vss_pliability = _score_field(scores.VSS.items[2])
    vss_height = _score_field(scores.VSS.items[3])
    vss_version = models.CharField(
        "Vancouver Scar Scale version",
        max_length=20,
        blank=True,
        choices=list(scores.VSS_VERSIONS.items()),
    )

    faceq_scale = models.CharField(
        "FACE-Q scale (licensed)",
        max_length=100,
        blank=True,
        help_text="The name of the FACE-Q scale the clinic scored under its licence.",
    )
    faceq_total = _score_field(scores.FACEQ_TOTAL)

    notes = models.TextField("Visit notes", blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1, help_text="Optimistic lock.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_on", "pk"]
        permissions = [
            ("export_clinic_audit", "Can export the clinic audit CSV"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=_in("status", FollowUpStatus), name="followup_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(interval_unit="") | _in("interval_unit", IntervalUnit),
                name="followup_unit_valid",
            ),
            models.CheckConstraint(
                condition=Q(status=FollowUpStatus.DONE, visited_on__isnull=False)
                | (~Q(status=FollowUpStatus.DONE) & Q(visited_on__isnull=True)),
                name="followup_seen_has_visit_date",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="followup_version_positive"),
            *_score_constraints(),
        ]
        indexes = [models.Index(fields=["status", "due_on"])]

    def __str__(self) -> str:
        return f"Follow-up {self.label} of plan {self.plan_id}"

    def get_absolute_url(self) -> str:
        return reverse("followup_visit", args=[self.pk])

    @property
    def patient(self):
        return self.plan.patient

    @property
    def is_scheduled(self) -> bool:
        return self.interval_amount is not None

    def score_values(self) -> dict[str, int | None]:
        return {item.field: getattr(self, item.field) for item in scores.ALL_ITEMS}

    @property
    def totals(self) -> dict[str, int | None]:
        return scores.totals(self.score_values())

    @property
    def posas_patient_total(self) -> int | None:
        return self.totals["posas_patient"]

    @property
    def posas_observer_total(self) -> int | None:
        return self.totals["posas_observer"]

    @property
    def vss_total(self) -> int | None:
        return self.totals["vss"]

    @property
    def gais_surgeon_label(self) -> str:
        return scores.GAIS_LABELS.get(self.gais_surgeon, "")

    @property
    def gais_patient_label(self) -> str:
        return scores.GAIS_LABELS.get(self.gais_patient, "")

    @property
    def satisfaction_label(self) -> str:
        return scores.SATISFACTION_LABELS.get(self.satisfaction, "")


class AdverseEvent(models.Model):
    """An adverse event noted at a follow-up visit: one row per kind and visit."""

    follow_up = models.ForeignKey(FollowUp, on_delete=models.PROTECT, related_name="adverse_events")
    kind = models.CharField(max_length=12, choices=AdverseEventKind.choices)
    description = models.CharField(
        max_length=200, blank=True, help_text="Required for “other”; optional detail otherwise."
    )
    severity = models.CharField(max_length=10, choices=Severity.choices)
    resolved_on = models.DateField("Resolved on", null=True, blank=True)

    class Meta:
        ordering = ["follow_up", "kind"]
        constraints = [
            models.CheckConstraint(
                condition=_in("kind", AdverseEventKind), name="adverse_event_kind_valid"
            ),
            models.CheckConstraint(
                condition=_in("severity", Severity), name="adverse_event_severity_valid"
            ),
            models.CheckConstraint(
                condition=~Q(kind=AdverseEventKind.OTHER) | ~Q(description=""),
                name="adverse_event_other_described",
            ),
            models.UniqueConstraint(
                fields=["follow_up", "kind"], name="adverse_event_unique_per_visit"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_severity_display()})"


# --- photos ---


class Photo(models.Model):
    """A clinical photo, stored under ``settings.PHOTO_ROOT`` (never a public path) after
    validation and re-encoding (no EXIF). ``follow_up`` empty means the baseline."""

    plan = models.ForeignKey(TreatmentPlan, on_delete=models.PROTECT, related_name="photos")
    follow_up = models.ForeignKey(
        FollowUp, on_delete=models.PROTECT, null=True, blank=True, related_name="photos"
    )
    view = models.CharField(max_length=16, choices=PhotoView.choices)
    zone = models.ForeignKey(
        TreatmentZone, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    taken_on = models.DateField("Taken on")
    file_name = models.CharField(max_length=80, unique=True, editable=False)
    content_type = models.CharField(max_length=20, editable=False)
    width = models.PositiveIntegerField(editable=False)
    height = models.PositiveIntegerField(editable=False)
    size_bytes = models.PositiveIntegerField(editable=False)
    sha256 = models.CharField(max_length=64, editable=False)
    original_format = models.CharField(max_length=10, editable=False)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["taken_on", "uploaded_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=_in("view", PhotoView), name="photo_view_valid"),
            models.CheckConstraint(
                condition=Q(content_type__in=["image/jpeg", "image/png"]),
                name="photo_content_type_jpeg_png",
            ),
            models.CheckConstraint(
                condition=~Q(view=PhotoView.CLOSE_UP) | Q(zone__isnull=False),
                name="photo_close_up_has_zone",
            ),
            models.CheckConstraint(
                condition=Q(width__gte=1, height__gte=1, size_bytes__gte=1),
                name="photo_not_empty",
            ),
        ]

    def __str__(self) -> str:
        return f"Photo {self.pk} ({self.get_view_display()}) of plan {self.plan_id}"

    def get_absolute_url(self) -> str:
        return reverse("photo_file", args=[self.pk])

    @property
    def patient(self):
        return self.plan.patient

    @property
    def timepoint(self) -> str:
        return self.follow_up.label if self.follow_up_id else "Baseline"


# --- audit exports ---


class ClinicExport(models.Model):
    """One clinic audit CSV handed out: who, when, identifiable or not, and a digest of it."""

    clinic = models.ForeignKey(
        Clinic, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    identifiable = models.BooleanField(default=False)
    reason = models.TextField(blank=True)
    row_count = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(identifiable=False) | ~Q(reason=""),
                name="export_identifiable_has_reason",
            )
        ]

    def __str__(self) -> str:
        kind = "identifiable" if self.identifiable else "pseudonymised"
        return f"Clinic export {self.pk} ({kind})"

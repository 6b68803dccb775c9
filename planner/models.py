"""The planner's domain: clinics, people, patients, zones, reference values, plans and audit."""

from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.urls import reverse

from .choices import (
    AuditAction,
    Combination,
    Depth,
    DonorSite,
    Goal,
    Instrument,
    Laterality,
    PlanStatus,
    ReferenceKey,
    Region,
    Role,
    Sex,
    Technique,
)

GAUGE_MIN, GAUGE_MAX = 10, 34  # any gauge outside this is a typing error, not a clinical choice
MAX_INJECTION_ML = Decimal("20")  # far above any facial dose; a database guard against typos


def _in(field: str, choices: type[models.TextChoices]) -> Q:
    return Q(**{f"{field}__in": choices.values})


class Clinic(models.Model):
    name = models.CharField(max_length=200)
    address = models.TextField(blank=True)
    phone = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A person who logs in. Everyone but a superuser belongs to exactly one clinic."""

    clinic = models.ForeignKey(
        Clinic, on_delete=models.PROTECT, null=True, blank=True, related_name="members"
    )
    # Moves whenever this user's permissions may have changed (their role, or their role's
    # permissions; planner/signals.py). A session's copy of the permissions is trusted only
    # while it names the same version, so a change counts from the user's next request.
    access_version = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(clinic__isnull=False) | Q(is_superuser=True),
                name="user_has_clinic_unless_superuser",
            )
        ]

    def save(self, **kwargs) -> None:
        # Only the receivers in planner/signals.py move access_version, with an UPDATE of its
        # own; saving a copy of the user read before such a move must not write the old value
        # back (a session's out-of-date permissions would then count as current again).
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key and field.name != "access_version"
            ]
        super().save(**kwargs)

    def has_role(self, role: Role | str) -> bool:
        if not hasattr(self, "_role_names"):
            self._role_names = frozenset(self.groups.values_list("name", flat=True))
        return role in self._role_names

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username


class Patient(models.Model):
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="patients")
    chart_number = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    date_of_birth = models.DateField()
    sex = models.CharField(max_length=10, choices=Sex.choices, default=Sex.UNKNOWN)
    notes = models.TextField(blank=True)
    # Flags a surgeon weighs before consent; the sheet repeats them.
    on_anticoagulants = models.BooleanField("Takes anticoagulants or antiplatelets", default=False)
    smoker = models.BooleanField(default=False)
    active_skin_infection = models.BooleanField(
        "Active skin infection in a treatment area", default=False
    )
    pregnant_or_breastfeeding = models.BooleanField("Pregnant or breastfeeding", default=False)
    allergies = models.CharField("Known allergies", max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "chart_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "chart_number"], name="patient_chart_number_unique_per_clinic"
            ),
            models.CheckConstraint(condition=~Q(chart_number=""), name="patient_chart_number_set"),
            models.CheckConstraint(condition=~Q(name=""), name="patient_name_set"),
            models.CheckConstraint(
                condition=Q(date_of_birth__gte="1900-01-01"),
                name="patient_date_of_birth_after_1900",
            ),
            models.CheckConstraint(condition=_in("sex", Sex), name="patient_sex_valid"),
        ]
        indexes = [models.Index(fields=["clinic", "name"])]

    def __str__(self) -> str:
        return f"{self.chart_number}"  # never the name: str() ends up in logs

    def get_absolute_url(self) -> str:
        return reverse("patient_detail", args=[self.pk])

    @property
    def consent_flags(self) -> list[str]:
        flags = [
            (self.on_anticoagulants, "anticoagulants or antiplatelets"),
            (self.smoker, "smoker"),
            (self.active_skin_infection, "active skin infection"),
            (self.pregnant_or_breastfeeding, "pregnant or breastfeeding"),
        ]
        return [label for present, label in flags if present]


class TreatmentZone(models.Model):
    """A zone of the face map (the design card's "facial quadrant")."""

    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    laterality = models.CharField(max_length=10, choices=Laterality.choices)
    region = models.CharField(max_length=20, choices=Region.choices)
    shape = models.TextField(help_text="SVG path data in the 400 x 560 face-map coordinates.")
    label_x = models.PositiveSmallIntegerField(default=0)
    label_y = models.PositiveSmallIntegerField(default=0)
    sort_order = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["sort_order", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(code__regex=r"^[A-Z][A-Z0-9_]*$"), name="zone_code_upper_snake"
            ),
            models.CheckConstraint(
                condition=_in("laterality", Laterality), name="zone_laterality_valid"
            ),
            models.CheckConstraint(condition=_in("region", Region), name="zone_region_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def is_perioral(self) -> bool:
        return self.region == Region.PERIORAL

    @property
    def short_label(self) -> str:
        """The abbreviation printed inside the zone on the face map."""
        words = self.code.split("_")
        side = words.pop() if words[-1] in ("L", "R") and len(words) > 1 else ""
        initials = "".join(word[0] for word in words) if len(words) > 1 else words[0][:2]
        return f"{initials}-{side}" if side else initials


class RuleSet(models.Model):
    """One version of the reference values. The newest is in force; plans keep the one they used."""

    version = models.PositiveIntegerField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason = models.TextField("Reason for change")

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.CheckConstraint(condition=Q(version__gte=1), name="ruleset_version_positive")
        ]

    def __str__(self) -> str:
        return f"Rule set v{self.version}"

    @classmethod
    def current(cls) -> "RuleSet":
        return cls.objects.order_by("-version").first()


class ReferenceValue(models.Model):
    """A number (or a set of codes) the rules read, with its unit and its source in the summary."""

    rule_set = models.ForeignKey(RuleSet, on_delete=models.PROTECT, related_name="values")
    key = models.CharField(max_length=40, choices=ReferenceKey.choices)
    minimum = models.DecimalField(max_digits=8, decimal_places=3, null=True, blank=True)
    maximum = models.DecimalField(max_digits=8, decimal_places=3, null=True, blank=True)
    codes = models.CharField(
        max_length=400, blank=True, help_text="Comma-separated codes, for the vocabulary values."
    )
    unit = models.CharField(max_length=20, blank=True)
    sources = models.CharField(max_length=40, help_text='Reference numbers, e.g. "5, 3".')
    citation = models.TextField(help_text="The sentence of the clinical summary this rests on.")

    class Meta:
        ordering = ["rule_set", "key"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule_set", "key"], name="reference_key_unique_per_set"
            ),
            models.CheckConstraint(condition=_in("key", ReferenceKey), name="reference_key_valid"),
            models.CheckConstraint(
                condition=Q(minimum__isnull=True)
                | Q(maximum__isnull=True)
                | Q(minimum__lte=models.F("maximum")),
                name="reference_minimum_not_above_maximum",
            ),
            models.CheckConstraint(condition=~Q(sources=""), name="reference_sources_set"),
            models.CheckConstraint(condition=~Q(citation=""), name="reference_citation_set"),
        ]

    def __str__(self) -> str:
        return f"{self.get_key_display()} (v{self.rule_set.version})"

    @property
    def source_numbers(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.sources.replace(" ", "").split(",") if part)

    @property
    def code_set(self) -> frozenset[str]:
        return frozenset(part.strip() for part in self.codes.split(",") if part.strip())


class TreatmentPlan(models.Model):
    """One nanofat session for one patient."""

    EDITABLE_STATUSES = (PlanStatus.DRAFT, PlanStatus.READY)

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="plans")
    surgeon = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="plans"
    )
    planned_for = models.DateField("Session date")
    goal = models.CharField(
        "Primary goal", max_length=20, choices=Goal.choices, default=Goal.REJUVENATION
    )
    indications = models.JSONField(
        default=list, blank=True, help_text="Indication codes, documented or free text."
    )
    combination = models.CharField(
        "Combination therapy", max_length=10, choices=Combination.choices, default=Combination.NONE
    )
    donor_site = models.CharField(
        max_length=20, choices=DonorSite.choices, default=DonorSite.ABDOMEN
    )
    harvest_volume_ml = models.DecimalField(
        "Harvest volume (mL)", max_digits=6, decimal_places=1, null=True, blank=True
    )
    notes = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=PlanStatus.choices, default=PlanStatus.DRAFT)
    version = models.PositiveIntegerField(
        default=1, help_text="Optimistic lock: bumped on every write."
    )
    rule_set = models.ForeignKey(
        RuleSet,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="plans",
        help_text="The rule set this plan was last validated against.",
    )
    repeated_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="repeats"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-planned_for", "-pk"]
        permissions = [
            ("print_consent", "Can print the consent and procedure sheet"),
            ("record_consent", "Can record the patient's signature"),
        ]
        constraints = [
            models.CheckConstraint(condition=_in("status", PlanStatus), name="plan_status_valid"),
            models.CheckConstraint(condition=_in("goal", Goal), name="plan_goal_valid"),
            models.CheckConstraint(
                condition=_in("combination", Combination), name="plan_combination_valid"
            ),
            models.CheckConstraint(
                condition=_in("donor_site", DonorSite), name="plan_donor_site_valid"
            ),
            models.CheckConstraint(
                condition=Q(harvest_volume_ml__isnull=True) | Q(harvest_volume_ml__gt=0),
                name="plan_harvest_volume_positive",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="plan_version_positive"),
        ]

    def __str__(self) -> str:
        return f"Plan {self.pk} ({self.get_status_display()})"

    def get_absolute_url(self) -> str:
        return reverse("plan_builder", args=[self.pk])

    @property
    def is_editable(self) -> bool:
        return self.status in self.EDITABLE_STATUSES


class PlannedInjection(models.Model):
    plan = models.ForeignKey(TreatmentPlan, on_delete=models.CASCADE, related_name="injections")
    zone = models.ForeignKey(TreatmentZone, on_delete=models.PROTECT, related_name="+")
    volume_ml = models.DecimalField("Volume (mL)", max_digits=5, decimal_places=2)
    instrument = models.CharField(
        max_length=10, choices=Instrument.choices, default=Instrument.NEEDLE
    )
    gauge = models.PositiveSmallIntegerField("Gauge (G)")
    depth = models.CharField(max_length=20, choices=Depth.choices, default=Depth.DERMIS)
    technique = models.CharField(
        max_length=12, choices=Technique.choices, default=Technique.RETROGRADE
    )
    notes = models.CharField(max_length=300, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "pk"]
        # The live check reads one zone's injections of one plan on every keystroke. With only
        # the two one-column indexes, an SQLite file that was never ANALYZEd (a clinic's
        # embedded database) may pick the zone's index and read that zone's rows of every plan.
        indexes = [models.Index(fields=["plan", "zone"], name="injection_plan_zone")]
        constraints = [
            models.CheckConstraint(condition=Q(volume_ml__gt=0), name="injection_volume_positive"),
            models.CheckConstraint(
                condition=Q(volume_ml__lte=MAX_INJECTION_ML), name="injection_volume_sane"
            ),
            models.CheckConstraint(
                condition=Q(gauge__gte=GAUGE_MIN, gauge__lte=GAUGE_MAX),
                name="injection_gauge_in_10_34",
            ),
            models.CheckConstraint(
                condition=_in("instrument", Instrument), name="injection_instrument_valid"
            ),
            models.CheckConstraint(condition=_in("depth", Depth), name="injection_depth_valid"),
            models.CheckConstraint(
                condition=_in("technique", Technique), name="injection_technique_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.zone.code} {self.volume_ml} mL"


class WarningAcknowledgement(models.Model):
    """A surgeon's written reason for going ahead despite a warning finding."""

    plan = models.ForeignKey(
        TreatmentPlan, on_delete=models.CASCADE, related_name="acknowledgements"
    )
    finding_key = models.CharField(max_length=120)
    rule = models.CharField(max_length=40)
    message = models.TextField(help_text="The finding's message when it was acknowledged.")
    reason = models.TextField()
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["acknowledged_at"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "finding_key"], name="acknowledgement_unique"),
            models.CheckConstraint(condition=~Q(reason=""), name="acknowledgement_reason_set"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} acknowledged on plan {self.plan_id}"

    def covers(self, message: str) -> bool:
        """Whether this acknowledgement stands for a finding that now reads ``message``. The
        message names the values (volume, gauge, depth, the documented range), so once any of
        them changes the surgeon acknowledges the new finding afresh."""
        return self.message == message


class AppendOnlyError(ValidationError):
    pass


class AppendOnlyQuerySet(models.QuerySet):
    """Bulk writes refused too: ``AuditEntry.objects.filter(...).delete()`` must not work either.
    (On PostgreSQL a trigger refuses them as well; see planner/triggers.py.)"""

    def update(self, **kwargs):
        raise AppendOnlyError("Audit entries are never changed.")

    def delete(self):
        raise AppendOnlyError("Audit entries are never deleted.")

    def bulk_update(self, *args, **kwargs):
        raise AppendOnlyError("Audit entries are never changed.")


class AuditEntry(models.Model):
    """Who did what to which record, and when. Written once, never changed."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_username = models.CharField(max_length=150, blank=True)
    clinic = models.ForeignKey(
        Clinic, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=40, blank=True)
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    plan_version = models.PositiveIntegerField(null=True, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name_plural = "audit entries"
        constraints = [
            models.CheckConstraint(condition=_in("action", AuditAction), name="audit_action_valid")
        ]
        indexes = [models.Index(fields=["clinic", "-at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_username} {self.action} {self.object_type}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise AppendOnlyError("Audit entries are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit entries are never deleted.")


# Consent wording and signed consent records: their own module (planner/models_consent.py).
from .models_consent import ConsentRecord, ConsentText  # noqa: E402, F401

# Follow-up and outcomes (schedule, visits and scores, photos, exports): their own module.
from .models_followup import (  # noqa: E402, F401
    AdverseEvent,
    ClinicExport,
    ClinicFollowUpSettings,
    FollowUp,
    FollowUpInterval,
    Photo,
)

# Procedure-day models live in their own module; importing it here registers them with the app.
from .models_procedure import (  # noqa: E402, F401
    ClinicProcessingDefaults,
    PerformedInjection,
    PlanAddendum,
    PresetInjection,
    ProcedureOutcome,
    ProcessingRecord,
    ProtocolPreset,
)

"""Procedure day: protocol presets, the harvest and processing record, what was injected.

Imported at the bottom of ``planner.models`` so Django registers these models with the app.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from .choices import Combination, Depth, DonorSite, Goal, Instrument, Technique
from .models import (
    GAUGE_MAX,
    GAUGE_MIN,
    MAX_INJECTION_ML,
    Clinic,
    TreatmentPlan,
    TreatmentZone,
    _in,
)


class ProtocolPreset(models.Model):
    """A named starting plan a clinic admin maintains, e.g. "Dark lower eyelids"."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="presets")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    goal = models.CharField(
        "Primary goal", max_length=20, choices=Goal.choices, default=Goal.REJUVENATION
    )
    indications = models.JSONField(default=list, blank=True)
    combination = models.CharField(
        "Combination therapy", max_length=10, choices=Combination.choices, default=Combination.NONE
    )
    active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "name"], name="preset_name_unique_per_clinic"
            ),
            models.CheckConstraint(condition=_in("goal", Goal), name="preset_goal_valid"),
            models.CheckConstraint(
                condition=_in("combination", Combination), name="preset_combination_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class _InjectionFields(models.Model):
    """What an injection is: shared by preset, planned and performed injections."""

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
    position = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True
        ordering = ["position", "pk"]

    @classmethod
    def bounds(cls, prefix: str) -> list[models.CheckConstraint]:
        return [
            models.CheckConstraint(condition=Q(volume_ml__gt=0), name=f"{prefix}_volume_positive"),
            models.CheckConstraint(
                condition=Q(volume_ml__lte=MAX_INJECTION_ML), name=f"{prefix}_volume_sane"
            ),
            models.CheckConstraint(
                condition=Q(gauge__gte=GAUGE_MIN, gauge__lte=GAUGE_MAX),
                name=f"{prefix}_gauge_in_10_34",
            ),
            models.CheckConstraint(
                condition=_in("instrument", Instrument), name=f"{prefix}_instrument_valid"
            ),
            models.CheckConstraint(condition=_in("depth", Depth), name=f"{prefix}_depth_valid"),
            models.CheckConstraint(
                condition=_in("technique", Technique), name=f"{prefix}_technique_valid"
            ),
        ]


class PresetInjection(_InjectionFields):
    preset = models.ForeignKey(ProtocolPreset, on_delete=models.CASCADE, related_name="injections")

    class Meta(_InjectionFields.Meta):
        constraints = _InjectionFields.bounds("preset_injection")

    def __str__(self) -> str:
        return f"{self.zone.code} {self.volume_ml} mL"


class ClinicProcessingDefaults(models.Model):
    """The clinic's usual harvest and processing set-up: clinic defaults, not documented facts."""

    clinic = models.OneToOneField(
        Clinic, on_delete=models.CASCADE, related_name="processing_defaults"
    )
    donor_site = models.CharField(
        max_length=20, choices=DonorSite.choices, default=DonorSite.ABDOMEN
    )
    harvest_cannula = models.CharField(max_length=100, blank=True)
    harvest_cannula_hole_mm = models.DecimalField(
        max_digits=4, decimal_places=2, null=True, blank=True
    )
    emulsification_passes = models.PositiveSmallIntegerField(null=True, blank=True)
    connector_bore_mm = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    filter_type = models.CharField(max_length=100, blank=True)
    filter_pore_mm = models.DecimalField(max_digits=5, decimal_places=3, null=True, blank=True)
    expected_yield_ratio = models.DecimalField(
        max_digits=4,
        decimal_places=2,
        default=Decimal("0.50"),
        help_text="Nanofat obtained per mL of harvested fat, from this clinic's own records "
        "(a clinic default, not a documented value).",
    )

    class Meta:
        verbose_name = "clinic processing defaults"
        verbose_name_plural = "clinic processing defaults"
        constraints = [
            models.CheckConstraint(
                condition=Q(expected_yield_ratio__gt=0, expected_yield_ratio__lte=1),
                name="processing_defaults_yield_ratio_0_1",
            ),
        ]

    def __str__(self) -> str:
        return f"Processing defaults of {self.clinic}"


class ProcessingRecord(models.Model):
    """The autologous chain of one session: harvest, emulsification, filtration, yield."""

    plan = models.OneToOneField(TreatmentPlan, on_delete=models.PROTECT, related_name="processing")
    donor_site = models.CharField(max_length=20, choices=DonorSite.choices)
    harvest_volume_ml = models.DecimalField("Harvest volume (mL)", max_digits=6, decimal_places=1)
    harvest_cannula = models.CharField(max_length=100, blank=True)
    harvest_cannula_hole_mm = models.DecimalField(
        "Harvest cannula hole (mm)", max_digits=4, decimal_places=2, null=True, blank=True
    )
    emulsification_passes = models.PositiveSmallIntegerField(null=True, blank=True)
    connector_bore_mm = models.DecimalField(
        "Connector bore (mm)", max_digits=4, decimal_places=2, null=True, blank=True
    )
    filter_type = models.CharField(max_length=100, blank=True)
    filter_pore_mm = models.DecimalField(
        "Filter pore size (mm)", max_digits=5, decimal_places=3, null=True, blank=True
    )
    nanofat_yield_ml = models.DecimalField("Nanofat yield (mL)", max_digits=6, decimal_places=2)
    harvest_to_injection_minutes = models.PositiveSmallIntegerField(
        "Harvest-to-injection time (minutes)", null=True, blank=True
    )
    kit_lot = models.CharField("Kit lot number", max_length=60, blank=True)
    filter_lot = models.CharField("Filter lot number", max_length=60, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=_in("donor_site", DonorSite), name="processing_donor_site_valid"
            ),
            models.CheckConstraint(
                condition=Q(harvest_volume_ml__gt=0), name="processing_harvest_volume_positive"
            ),
            models.CheckConstraint(
                condition=Q(nanofat_yield_ml__gte=0), name="processing_yield_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(nanofat_yield_ml__lte=models.F("harvest_volume_ml")),
                name="processing_yield_not_above_harvest",
            ),
        ]

    def __str__(self) -> str:
        return f"Processing record of plan {self.plan_id}"


class PerformedInjection(_InjectionFields):
    """What was actually injected, pre-filled from the plan on the procedure day."""

    plan = models.ForeignKey(
        TreatmentPlan, on_delete=models.PROTECT, related_name="performed_injections"
    )

    class Meta(_InjectionFields.Meta):
        constraints = _InjectionFields.bounds("performed_injection")

    def __str__(self) -> str:
        return f"{self.zone.code} {self.volume_ml} mL (performed)"


class ProcedureOutcome(models.Model):
    """The session as completed: adverse events and the reason for each deviation."""

    plan = models.OneToOneField(TreatmentPlan, on_delete=models.PROTECT, related_name="outcome")
    adverse_events = models.TextField("Adverse events during the session", blank=True)
    deviation_reasons = models.JSONField(
        default=dict, blank=True, help_text="Deviation key -> reason."
    )
    findings = models.JSONField(
        default=list, blank=True, help_text="Rule findings on what was performed, as completed."
    )
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    completed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Outcome of plan {self.plan_id}"


class PlanAddendum(models.Model):
    """A dated note added to a performed plan; the only change a performed plan accepts."""

    plan = models.ForeignKey(TreatmentPlan, on_delete=models.PROTECT, related_name="addenda")
    text = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name_plural = "plan addenda"
        constraints = [models.CheckConstraint(condition=~Q(text=""), name="addendum_text_set")]

    def __str__(self) -> str:
        return f"Addendum to plan {self.plan_id} ({self.created_at:%Y-%m-%d})"

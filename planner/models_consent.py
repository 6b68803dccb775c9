"""Consent: the clinic-editable wording of the consent sheet and the record of a signature.

Imported at the bottom of ``planner.models`` so Django registers these models with the app.

The wording is versioned like the reference values: a change is a new row with a reason, the
old row stays, the sheet uses the newest version of each block, and a consent record names the
versions it was signed with. The clinical facts the rules use (volumes, gauges, depths, the
3-month limit on any volumizing effect) are not part of the wording: the sheet prints them from
the plan's rule set.
"""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from .models import RuleSet, TreatmentPlan, _in


class _WriteOnceQuerySet(models.QuerySet):
    """Bulk changes are refused like single ones: these rows are records."""

    def update(self, **kwargs):
        raise ValidationError("These records are never changed once written.")

    def delete(self):
        raise ValidationError("These records are never deleted.")


class ConsentTextKey(models.TextChoices):
    """The blocks of the sheet, in the order it prints them."""

    WHAT_IS_NANOFAT = "what_is_nanofat", "What nanofat is"
    WHAT_IT_IS_NOT = "what_it_is_not", "What nanofat is not"
    HARVEST = "harvest", "The fat harvest"
    BENEFITS = "benefits", "Expected benefits"
    EXPECTED_COURSE = "expected_course", "What to expect after the treatment"
    RISKS = "risks", "Risks"
    ALTERNATIVES = "alternatives", "Alternatives"
    COMBINATION = "combination", "Combination with PRF or PRP"
    DECLARATION = "declaration", "Patient's declaration"


#: The reference numbers of the clinical summary (its citations run from 1 to 6).
SUMMARY_REFERENCES = frozenset(range(1, 7))
#: A citation in the wording: "(ref 5)", "(refs 1, 3)", "(refs 1-4, 6)"; group 1 the numbers.
CITATION = re.compile(r"\(refs? ([0-9][0-9,\- \u2013]*)\)")

sources_validator = RegexValidator(
    r"^(\d+(-\d+)?)(, ?\d+(-\d+)?)*$",
    'Reference numbers of the clinical summary, e.g. "5" or "1, 3" or "1-4, 6".',
)


class ConsentText(models.Model):
    """One version of one block of consent wording. Never changed once written."""

    key = models.CharField(max_length=32, choices=ConsentTextKey.choices)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=120)
    body = models.TextField(
        help_text="Plain text. A blank line starts a new paragraph; a line starting with "
        '"- " is a bullet. Cite the clinical summary as (ref 5) or (refs 1, 3).'
    )
    sources = models.CharField(
        max_length=40,
        blank=True,
        validators=[sources_validator],
        help_text="The clinical summary's references the block rests on; empty for legal "
        "wording that makes no clinical claim.",
    )
    reason = models.TextField("Reason for change")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = _WriteOnceQuerySet.as_manager()

    class Meta:
        ordering = ["key", "-version"]
        verbose_name = "consent text"
        constraints = [
            models.UniqueConstraint(fields=["key", "version"], name="consent_text_key_version"),
            models.CheckConstraint(condition=_in("key", ConsentTextKey), name="consent_text_key"),
            models.CheckConstraint(condition=Q(version__gte=1), name="consent_text_version_pos"),
            models.CheckConstraint(condition=~Q(title=""), name="consent_text_title_set"),
            models.CheckConstraint(condition=~Q(body=""), name="consent_text_body_set"),
            models.CheckConstraint(condition=~Q(reason=""), name="consent_text_reason_set"),
        ]

    def __str__(self) -> str:
        return f"{self.get_key_display()} (v{self.version})"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValidationError("Consent wording is never changed in place; save a new version.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("Consent wording is never deleted: signed records refer to it.")

    @classmethod
    def next_version(cls, key: str) -> int:
        latest = cls.objects.filter(key=key).aggregate(latest=models.Max("version"))["latest"]
        return (latest or 0) + 1

    @classmethod
    def current(cls) -> dict[str, "ConsentText"]:
        """The newest version of every block, by key."""
        newest: dict[str, ConsentText] = {}
        for text in cls.objects.order_by("key", "-version"):
            newest.setdefault(text.key, text)
        return newest


class ConsentRecord(models.Model):
    """The patient's signature on one plan, with the exact PDF that was signed."""

    plan = models.OneToOneField(
        TreatmentPlan, on_delete=models.PROTECT, related_name="consent_record"
    )
    patient_signed = models.BooleanField()
    signed_on = models.DateField()
    witness_name = models.CharField(max_length=200)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)
    plan_version = models.PositiveIntegerField(help_text="The plan version the patient signed.")
    rule_set = models.ForeignKey(RuleSet, on_delete=models.PROTECT, related_name="+")
    consent_text_versions = models.JSONField(
        default=dict, help_text="The version of each wording block on the signed sheet."
    )
    document_id = models.CharField(max_length=40)
    pdf = models.BinaryField(editable=False)
    sha256 = models.CharField(
        max_length=64, validators=[RegexValidator(r"^[0-9a-f]{64}$")], editable=False
    )

    objects = _WriteOnceQuerySet.as_manager()

    class Meta:
        ordering = ["-recorded_at"]
        constraints = [
            models.CheckConstraint(condition=Q(patient_signed=True), name="consent_patient_signed"),
            models.CheckConstraint(condition=~Q(witness_name=""), name="consent_witness_named"),
            models.CheckConstraint(
                condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="consent_sha"
            ),
            models.CheckConstraint(condition=~Q(document_id=""), name="consent_document_id_set"),
        ]

    def __str__(self) -> str:
        return f"Consent for plan {self.plan_id} ({self.document_id})"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValidationError("A consent record is never changed once written.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("A consent record is never deleted.")

"""Forms: every field error names the field and keeps what the user typed."""

import datetime
import re
from decimal import Decimal
from functools import cached_property
from pathlib import Path

from django import forms
from django.conf import settings
from django.forms.renderers import Jinja2
from django.utils import timezone
from django.utils.formats import date_format

from .choices import Indication
from .models import (
    GAUGE_MAX,
    GAUGE_MIN,
    MAX_INJECTION_ML,
    Clinic,
    Patient,
    PlannedInjection,
    TreatmentPlan,
    TreatmentZone,
)
from .rules import format_decimal
from .text import normalise_text

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class BuilderFormRenderer(Jinja2):
    """Django's Jinja2 widget templates, with the few in templates/forms/ taking precedence.

    The plan builder's forms render on every page view and saved change: Django's Jinja2
    widgets draw the same HTML as its Django-template ones in half the time, and a select that
    writes its options in place (templates/forms/django/forms/widgets/select.html) halves that.
    """

    @cached_property
    def engine(self):
        return self.backend(
            {
                "APP_DIRS": True,
                "DIRS": [
                    settings.BASE_DIR / "templates" / "forms",
                    Path(forms.__file__).parent / "jinja2",
                ],
                "NAME": "builderforms",
                "OPTIONS": {},
            }
        )


BUILDER_FORM_RENDERER = BuilderFormRenderer()


class NormalisedTextMixin:
    """Runs every text field through ``normalise_text`` before the model sees it."""

    multiline_fields: tuple[str, ...] = ()

    def _clean_fields(self) -> None:
        super()._clean_fields()
        for name, value in list(self.cleaned_data.items()):
            if isinstance(value, str) and value:
                try:
                    self.cleaned_data[name] = normalise_text(
                        value, multiline=name in self.multiline_fields
                    )
                except forms.ValidationError as error:
                    self.add_error(name, error)


class PatientForm(NormalisedTextMixin, forms.ModelForm):
    multiline_fields = ("notes",)

    class Meta:
        model = Patient
        fields = [
            "chart_number",
            "name",
            "date_of_birth",
            "sex",
            "allergies",
            "on_anticoagulants",
            "smoker",
            "active_skin_infection",
            "pregnant_or_breastfeeding",
            "notes",
        ]
        widgets = {"date_of_birth": DATE_INPUT, "notes": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, clinic: Clinic, **kwargs):
        super().__init__(*args, **kwargs)
        self.clinic = clinic
        self.instance.clinic = clinic

    def clean_date_of_birth(self) -> datetime.date:
        value = self.cleaned_data["date_of_birth"]
        if value > timezone.localdate():
            raise forms.ValidationError("The date of birth cannot be in the future.")
        if value < datetime.date(1900, 1, 1):
            raise forms.ValidationError("Enter a date of birth after 1 January 1900.")
        return value

    def clean_chart_number(self) -> str:
        value = normalise_text(self.cleaned_data["chart_number"])
        duplicates = Patient.objects.filter(clinic=self.clinic, chart_number__iexact=value)
        if self.instance.pk:
            duplicates = duplicates.exclude(pk=self.instance.pk)
        if duplicates.exists():
            raise forms.ValidationError(
                f"Chart number {value} is already used by another patient of this clinic."
            )
        return value

    def validate_unique(self) -> None:
        # clinic is not a form field, so the (clinic, chart_number) check is clean_chart_number's.
        pass


class PatientSearchForm(NormalisedTextMixin, forms.Form):
    q = forms.CharField(label="Search by name or chart number", required=False, max_length=100)


def _names_of(code: str, label: str) -> set[str]:
    """How a documented indication may be typed: its code, its label, or the label's first
    part ("Fine lines" for "Fine lines and superficial wrinkles"), in any letter case."""
    first = re.split(r" / | and | \(", label)[0]
    return {name.casefold() for name in (code, code.replace("_", " "), label, first)}


DOCUMENTED_BY_NAME = {
    name: code for code, label in Indication.choices for name in _names_of(code, label)
}


class PlanDetailsForm(NormalisedTextMixin, forms.ModelForm):
    default_renderer = BUILDER_FORM_RENDERER
    multiline_fields = ("notes",)
    documented_indications = forms.MultipleChoiceField(
        label="Indications",
        choices=Indication.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The summary's primary indications (clinical summary, refs 1-4, 6).",
    )
    other_indications = forms.CharField(
        label="Other indications",
        required=False,
        max_length=300,
        help_text="Comma-separated; anything not listed above raises a warning to acknowledge.",
    )

    class Meta:
        model = TreatmentPlan
        fields = ["planned_for", "goal", "combination", "donor_site", "harvest_volume_ml", "notes"]
        widgets = {"planned_for": DATE_INPUT, "notes": forms.Textarea(attrs={"rows": 3})}
        error_messages = {
            "harvest_volume_ml": {
                "invalid": "Enter the harvest volume in mL, e.g. 20.",
                "max_digits": "Enter a harvest volume below 100,000 mL.",
                "max_decimal_places": "Use at most one decimal place for the harvest volume.",
            }
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        documented = set(Indication.values)
        current = list(self.instance.indications or [])
        self.fields["documented_indications"].initial = [i for i in current if i in documented]
        self.fields["other_indications"].initial = ", ".join(
            i for i in current if i not in documented
        )
        self.fields["harvest_volume_ml"].min_value = Decimal("0.1")

    def clean_harvest_volume_ml(self) -> Decimal | None:
        value = self.cleaned_data["harvest_volume_ml"]
        if value is not None and value <= 0:
            raise forms.ValidationError("The harvest volume must be more than 0 mL.")
        return value

    def clean_planned_for(self) -> datetime.date:
        planned_for = self.cleaned_data["planned_for"]
        born = self.instance.patient.date_of_birth if self.instance.patient_id else None
        if born and planned_for < born:
            birthday = date_format(born, "j F Y")
            raise forms.ValidationError(
                f"The session date is before the patient's date of birth ({birthday})."
            )
        if planned_for > timezone.localdate() + datetime.timedelta(days=5 * 366):
            raise forms.ValidationError("Check the session date: it is more than 5 years ahead.")
        return planned_for

    def clean(self) -> dict:
        cleaned = super().clean()
        documented = list(cleaned.get("documented_indications", []))
        others: list[str] = []
        for part in cleaned.get("other_indications", "").split(","):
            text = part.strip()
            code = DOCUMENTED_BY_NAME.get(text.casefold())
            if code:  # a documented indication typed as text: its checkbox
                if code not in documented:
                    documented.append(code)
            elif text and text.casefold() not in {other.casefold() for other in others}:
                others.append(text)  # the same indication typed twice counts once
        self.instance.indications = documented + others
        return cleaned


VOLUME_ERRORS = {
    "required": "Enter the volume in mL.",
    "invalid": "Enter the volume as a number of mL, e.g. 0.3.",
    "max_digits": "Enter a volume below 1,000 mL.",
    "max_decimal_places": "Use at most two decimal places (0.01 mL).",
    "max_whole_digits": "Enter a volume below 1,000 mL.",
}


class VolumeField(forms.DecimalField):
    """A volume in mL with at most ``decimal_places`` places that carry a digit.

    Django counts digits before decimal places, so 0.0000001 would be told "below 1,000 mL"
    and 0.300 "at most two decimal places"; here 0.300 is 0.3 mL (as check_plan reads it) and a
    too-precise value is told it is too precise.
    """

    def to_python(self, value) -> Decimal | None:
        number = super().to_python(value)
        if number is None or not number.is_finite() or not 0 < number < 1000:
            return number  # empty, NaN, negative or huge: the field's own messages say why
        rounded = number.quantize(Decimal(1).scaleb(-self.decimal_places))
        if rounded != number:
            raise forms.ValidationError(
                self.error_messages["max_decimal_places"], code="max_decimal_places"
            )
        return rounded


# PlannedInjection's check constraints that InjectionForm's own field validation covers.
CONSTRAINTS_CHECKED_BY_FIELDS = frozenset(
    {
        "injection_volume_positive",
        "injection_volume_sane",
        "injection_gauge_in_10_34",
        "injection_instrument_valid",
        "injection_depth_valid",
        "injection_technique_valid",
    }
)


class ZoneField(forms.ModelChoiceField):
    """A treatment zone by its code, among the active zones. ``known`` (active zones by code),
    when a view has already loaded them, answers the lookup without a query."""

    known: dict[str, TreatmentZone] | None = None

    def to_python(self, value):
        if self.known is None or value in self.empty_values:
            return super().to_python(value)
        zone = self.known.get(str(value))
        if zone is None:
            raise forms.ValidationError(
                self.error_messages["invalid_choice"],
                code="invalid_choice",
                params={"value": value},
            )
        return zone


class InjectionForm(NormalisedTextMixin, forms.ModelForm):
    default_renderer = BUILDER_FORM_RENDERER
    zone = ZoneField(
        queryset=TreatmentZone.objects.filter(active=True),
        to_field_name="code",
        error_messages={"invalid_choice": "Choose a treatment zone from the list."},
    )

    class Meta:
        model = PlannedInjection
        fields = ["zone", "volume_ml", "instrument", "gauge", "depth", "technique", "notes"]
        field_classes = {"volume_ml": VolumeField}
        error_messages = {
            "volume_ml": VOLUME_ERRORS,
            "gauge": {
                "required": "Enter the gauge, e.g. 27.",
                "invalid": "Enter the gauge as a whole number, e.g. 27.",
                "min_value": f"Enter a gauge from {GAUGE_MIN} to {GAUGE_MAX}, e.g. 27.",
            },
        }
        widgets = {
            "volume_ml": forms.TextInput(
                attrs={"inputmode": "decimal", "autocomplete": "off", "size": 6}
            ),
            "gauge": forms.TextInput(
                attrs={"inputmode": "numeric", "autocomplete": "off", "size": 4}
            ),
        }

    def __init__(self, *args, zones: dict[str, TreatmentZone] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["zone"].known = zones
        if self.instance.pk and "zone" not in kwargs.get("initial", {}):
            # The zone field speaks codes; the model's initial is its id, which made an unchanged
            # zone count as changed (and show up in the audit trail's changed fields).
            self.initial["zone"] = self.instance.zone.code
        for name, field in self.fields.items():
            # Errors and live rule findings for a field are shown in its feedback element.
            field.widget.attrs["aria-describedby"] = self.feedback_id(name)

    def feedback_id(self, name: str) -> str:
        return f"feedback-{self.prefix or 'form'}-{name}"

    def validate_constraints(self) -> None:
        # Each of these bounds a field the form has already validated (clean_volume_ml,
        # clean_gauge, the choices of instrument, depth and technique), and Django checks a
        # constraint only when its fields passed, so it cannot fail here; it would still cost a
        # query per constraint on every save and every keystroke of the live validation. The
        # database keeps enforcing them. A constraint not listed here is checked as usual.
        if any(
            constraint.name not in CONSTRAINTS_CHECKED_BY_FIELDS
            for constraint in PlannedInjection._meta.constraints
        ):
            super().validate_constraints()

    def _get_validation_exclusions(self) -> set[str]:
        # The zone field found the zone among the active zones: the model's foreign-key check
        # would look it up again, a query on every save and every keystroke of the live check.
        return {*super()._get_validation_exclusions(), "zone"}

    def clean_volume_ml(self) -> Decimal:
        value = self.cleaned_data["volume_ml"]
        if value <= 0:
            raise forms.ValidationError("The volume must be more than 0 mL.")
        if value > MAX_INJECTION_ML:
            raise forms.ValidationError(
                f"{format_decimal(value)} mL is not a plausible facial injection "
                f"(at most {format_decimal(MAX_INJECTION_ML)} mL)."
            )
        return value

    def clean_gauge(self) -> int:
        value = self.cleaned_data["gauge"]
        if not GAUGE_MIN <= value <= GAUGE_MAX:
            raise forms.ValidationError(
                f"{value} G is not a needle or cannula gauge; enter {GAUGE_MIN}-{GAUGE_MAX}."
            )
        return value


class AcknowledgementForm(NormalisedTextMixin, forms.Form):
    multiline_fields = ("reason",)
    finding_key = forms.CharField(max_length=120, widget=forms.HiddenInput)
    reason = forms.CharField(
        label="Reason for going ahead",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Write why you go ahead despite this warning."},
    )


class VersionForm(forms.Form):
    """Every write carries the plan version the user saw (optimistic locking)."""

    version = forms.IntegerField(
        min_value=1,
        error_messages={
            "required": "The page did not send the plan version; reload the plan and try again.",
            "invalid": "The plan version sent is not a number; reload the plan and try again.",
        },
    )

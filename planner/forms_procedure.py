"""Forms of the procedure day."""

from django import forms

from .forms import VOLUME_ERRORS, InjectionForm, NormalisedTextMixin
from .models import PerformedInjection, ProcessingRecord, ProtocolPreset


class PresetChoiceForm(forms.Form):
    preset = forms.ModelChoiceField(
        queryset=ProtocolPreset.objects.none(),
        label="Protocol preset",
        error_messages={"invalid_choice": "Choose one of this clinic's presets."},
    )

    def __init__(self, *args, clinic_id: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["preset"].queryset = ProtocolPreset.objects.filter(
            clinic_id=clinic_id, active=True
        )


class ProcessingRecordForm(NormalisedTextMixin, forms.ModelForm):
    class Meta:
        model = ProcessingRecord
        fields = [
            "donor_site",
            "harvest_volume_ml",
            "harvest_cannula",
            "harvest_cannula_hole_mm",
            "emulsification_passes",
            "connector_bore_mm",
            "filter_type",
            "filter_pore_mm",
            "nanofat_yield_ml",
            "harvest_to_injection_minutes",
            "kit_lot",
            "filter_lot",
        ]
        error_messages = {
            "harvest_volume_ml": {"invalid": "Enter the harvested volume in mL, e.g. 20."},
            "nanofat_yield_ml": {"invalid": "Enter the nanofat obtained in mL, e.g. 4.5."},
        }

    def clean(self) -> dict:
        cleaned = super().clean()
        for name in (
            "harvest_volume_ml",
            "harvest_cannula_hole_mm",
            "connector_bore_mm",
            "filter_pore_mm",
        ):
            value = cleaned.get(name)
            if value is not None and value <= 0:
                self.add_error(name, "Enter a value above 0.")
        harvest, nanofat = cleaned.get("harvest_volume_ml"), cleaned.get("nanofat_yield_ml")
        if nanofat is not None and nanofat < 0:
            self.add_error("nanofat_yield_ml", "The yield cannot be negative.")
        elif harvest is not None and nanofat is not None and nanofat > harvest:
            self.add_error(
                "nanofat_yield_ml",
                f"The nanofat yield ({nanofat} mL) cannot exceed the harvest ({harvest} mL).",
            )
        return cleaned


class PerformedInjectionForm(InjectionForm):
    class Meta(InjectionForm.Meta):
        model = PerformedInjection
        fields = ["zone", "volume_ml", "instrument", "gauge", "depth", "technique"]
        error_messages = {"volume_ml": VOLUME_ERRORS}


PerformedFormSet = forms.formset_factory(
    PerformedInjectionForm, extra=1, can_delete=True, max_num=80, validate_max=True
)


class CompleteForm(NormalisedTextMixin, forms.Form):
    """Adverse events plus one required reason per deviation from the consented plan."""

    multiline_fields = ("adverse_events",)
    adverse_events = forms.CharField(
        label="Adverse events during the session",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Leave empty if there were none.",
    )

    def __init__(self, *args, deviations=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.deviations = list(deviations)
        for deviation in self.deviations:
            self.fields[deviation.key] = forms.CharField(
                label=f"Reason: {deviation.description}",
                max_length=1000,
                widget=forms.Textarea(attrs={"rows": 2}),
                error_messages={
                    "required": f"Give a reason for the deviation in {deviation.zone}."
                },
            )

    def reasons(self) -> dict[str, str]:
        return {d.key: self.cleaned_data.get(d.key, "") for d in self.deviations}


class AddendumForm(NormalisedTextMixin, forms.Form):
    multiline_fields = ("text",)
    text = forms.CharField(
        label="Addendum",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Write the addendum text."},
    )

"""The form staff fill in once the patient has signed the printed sheet."""

import datetime

from django import forms
from django.utils import timezone

from .forms import DATE_INPUT, NormalisedTextMixin, VersionForm


class ConsentRecordForm(NormalisedTextMixin, VersionForm):
    patient_signed = forms.BooleanField(
        label="The patient signed the printed sheet",
        error_messages={"required": "Record consent only once the patient has signed the sheet."},
    )
    signed_on = forms.DateField(
        label="Signed on",
        widget=DATE_INPUT,
        error_messages={"required": "Enter the date the patient signed."},
    )
    witness_name = forms.CharField(
        label="Witness name",
        max_length=200,
        error_messages={"required": "Enter the name of the witness who saw the patient sign."},
    )

    def clean_signed_on(self) -> datetime.date:
        signed_on = self.cleaned_data["signed_on"]
        if signed_on > timezone.localdate():
            raise forms.ValidationError("The signing date cannot be in the future.")
        if signed_on < datetime.date(2000, 1, 1):
            raise forms.ValidationError("Check the signing date: it is too far in the past.")
        return signed_on

"""The form staff fill in once the patient has signed the printed sheet."""

import datetime
import re

from django import forms
from django.utils import timezone

from .forms import DATE_INPUT, NormalisedTextMixin, VersionForm

#: The document id printed at the foot of every page of the sheet (``consent.document_id_for``).
DOCUMENT_ID = re.compile(r"NF-[A-Z2-7]{5}-[A-Z2-7]{5}")


class ConsentRecordForm(NormalisedTextMixin, VersionForm):
    patient_signed = forms.BooleanField(
        label="The patient signed the printed sheet",
        error_messages={"required": "Record consent only once the patient has signed the sheet."},
    )
    document_id = forms.CharField(
        label="Document id on the signed sheet",
        help_text="Printed at the foot of every page, for example NF-3WZ77-NJFAX.",
        max_length=40,
        error_messages={"required": "Enter the document id printed on the signed sheet."},
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

    def clean_document_id(self) -> str:
        # Typed from paper: letter case and spaces are forgiven.
        typed = re.sub(r"\s+", "", self.cleaned_data["document_id"]).upper()
        if not DOCUMENT_ID.fullmatch(typed):
            raise forms.ValidationError(
                "Enter the document id exactly as printed at the foot of the signed sheet, "
                "for example NF-3WZ77-NJFAX."
            )
        return typed

    def clean_signed_on(self) -> datetime.date:
        signed_on = self.cleaned_data["signed_on"]
        if signed_on > timezone.localdate():
            raise forms.ValidationError("The signing date cannot be in the future.")
        if signed_on < datetime.date(2000, 1, 1):
            raise forms.ValidationError("Check the signing date: it is too far in the past.")
        return signed_on

"""Admin for the consent wording (versioned: a change is a new version) and the signed records.

Editing a block never overwrites it: saving the change form writes a new version with the
reason given, and the old version stays for the consent records signed with it. The sheet uses
the newest version of each block.
"""

import re

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from .admin_versions import ContinueOnNewVersionMixin
from .models import ConsentRecord, ConsentText
from .models_consent import CITATION, SUMMARY_REFERENCES
from .text import normalise_text


def reference_numbers(listing: str) -> set[int]:
    """The numbers of a list such as "1, 3" or "1-4, 6"."""
    numbers: set[int] = set()
    for part in re.split(r"\s*,\s*", listing.strip()):
        bounds = [int(n) for n in re.split(r"\s*[-\u2013]\s*", part) if n.isdigit()]
        if bounds:
            numbers.update(range(bounds[0], bounds[-1] + 1))
    return numbers


class ConsentTextForm(forms.ModelForm):
    class Meta:
        model = ConsentText
        fields = ("key", "title", "body", "sources", "reason")
        widgets = {"body": forms.Textarea(attrs={"rows": 14, "cols": 100})}
        help_texts = {"reason": "Why the wording changes (required); kept with this version."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            # A new version needs a new reason: never carry the previous one over.
            self.initial["reason"] = ""

    def clean_title(self) -> str:
        return normalise_text(self.cleaned_data["title"])

    def clean_body(self) -> str:
        return normalise_text(self.cleaned_data["body"], multiline=True)

    def clean_reason(self) -> str:
        reason = normalise_text(self.cleaned_data.get("reason", ""), multiline=True)
        if not reason:
            raise forms.ValidationError("Give the reason for this change.")
        return reason

    def clean(self) -> dict:
        cleaned = super().clean()
        citations = ", ".join(CITATION.findall(cleaned.get("body") or ""))
        for name, listing in (("body", citations), ("sources", cleaned.get("sources") or "")):
            unknown = sorted(reference_numbers(listing) - SUMMARY_REFERENCES)
            if unknown:
                self.add_error(
                    name,
                    f"Cites reference {', '.join(map(str, unknown))}, but the clinical summary's "
                    f"references run from {min(SUMMARY_REFERENCES)} to {max(SUMMARY_REFERENCES)}.",
                )
        unchanged = ("title", "body", "sources")
        if self.instance.pk is not None and all(
            cleaned.get(name) == getattr(self.instance, name) for name in unchanged
        ):
            raise forms.ValidationError(
                "Nothing changed: edit the title, the wording or the sources to save a new version."
            )
        return cleaned


@admin.register(ConsentText)
class ConsentTextAdmin(ContinueOnNewVersionMixin, admin.ModelAdmin):
    form = ConsentTextForm
    list_display = ("key", "version", "title", "created_at", "created_by", "is_current")
    list_filter = ("key",)
    ordering = ("key", "-version")
    search_fields = ("title", "body")

    @admin.display(boolean=True, description="In use")
    def is_current(self, obj: ConsentText) -> bool:
        return ConsentText.next_version(obj.key) == obj.version + 1

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        # The block a version belongs to never changes; a new key is a new block.
        return ("key",) if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: ConsentText, form, change: bool) -> None:
        # Always a new row: the edited version stays as it was.
        obj.pk = None
        obj._state.adding = True
        obj.version = ConsentText.next_version(obj.key)
        obj.created_by = request.user
        obj.save()

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        if not super().has_change_permission(request, obj):
            return False
        # Only the version in use is the base of a change; saving an older one would quietly
        # bring its wording back. Older versions are history, shown read only.
        return obj is None or self.is_current(obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(ConsentRecord)
class ConsentRecordAdmin(admin.ModelAdmin):
    """Read only: a signed record is never changed, and its PDF is served by the app."""

    list_display = (
        "plan",
        "document_id",
        "signed_on",
        "witness_name",
        "recorded_by",
        "recorded_at",
    )
    search_fields = ("document_id", "plan__pk")
    exclude = ("pdf",)
    readonly_fields = (
        "plan",
        "patient_signed",
        "signed_on",
        "witness_name",
        "recorded_by",
        "recorded_at",
        "plan_version",
        "rule_set",
        "consent_text_versions",
        "document_id",
        "sha256",
    )

    def get_queryset(self, request: HttpRequest):
        queryset = super().get_queryset(request).defer("pdf")
        if request.user.is_superuser:
            return queryset
        return queryset.filter(plan__patient__clinic_id=request.user.clinic_id)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

"""Admin for protocol presets and clinic processing defaults (clinic admins, own clinic only)."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from . import procedure, rules
from .models import ClinicProcessingDefaults, PresetInjection, ProtocolPreset


class ClinicScopedAdmin(admin.ModelAdmin):
    """Non-superusers see and edit only their own clinic's rows."""

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(clinic_id=request.user.clinic_id)

    def get_exclude(self, request, obj=None):
        return ("clinic",) if not request.user.is_superuser else ()

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser:
            obj.clinic_id = request.user.clinic_id
        super().save_model(request, obj, form, change)


class PresetInjectionInlineFormSet(forms.BaseInlineFormSet):
    """A preset is validated by the rules engine: one with an error finding is not saved."""

    def clean(self) -> None:
        super().clean()
        if any(form.errors for form in self.forms):
            return
        kept = [
            form.instance
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        errors = [
            f
            for f in procedure.preset_findings(self.instance, kept)
            if f.severity == rules.Severity.ERROR
        ]
        if errors:
            raise ValidationError(
                [
                    f"{finding.rule}: {finding.message} ({finding.citation})".replace(" ()", "")
                    for finding in errors
                ]
            )


class PresetInjectionInline(admin.TabularInline):
    model = PresetInjection
    formset = PresetInjectionInlineFormSet
    extra = 1
    fields = ["zone", "volume_ml", "instrument", "gauge", "depth", "technique", "position"]


@admin.register(ProtocolPreset)
class ProtocolPresetAdmin(ClinicScopedAdmin):
    list_display = ["name", "goal", "combination", "active", "updated_at"]
    list_filter = ["active", "goal"]
    search_fields = ["name", "description"]
    inlines = [PresetInjectionInline]


@admin.register(ClinicProcessingDefaults)
class ClinicProcessingDefaultsAdmin(ClinicScopedAdmin):
    list_display = ["clinic", "donor_site", "filter_type", "expected_yield_ratio"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return [(None, {"fields": ["clinic"]}), *fieldsets]
        return fieldsets

    fieldsets = [
        (
            "Clinic defaults (this clinic's usual set-up, not documented values)",
            {
                "fields": [
                    "donor_site",
                    "harvest_cannula",
                    "harvest_cannula_hole_mm",
                    "emulsification_passes",
                    "connector_bore_mm",
                    "filter_type",
                    "filter_pore_mm",
                    "expected_yield_ratio",
                ]
            },
        )
    ]

"""Admin for the clinic's follow-up intervals (clinic admins, own clinic only).

A change applies to plans performed from then on: follow-ups already scheduled keep their
dates, as a consented plan keeps its rule set.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from . import audit, intervals
from .admin_procedure import ClinicScopedAdmin
from .choices import AuditAction
from .models import ClinicExport, ClinicFollowUpSettings, FollowUpInterval


class IntervalFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        if any(form.errors for form in self.forms):
            return
        kept = []
        for form in self.forms:
            data = form.cleaned_data
            if not data or data.get("DELETE"):
                continue
            interval = intervals.Interval(data["amount"], data["unit"])
            if interval.approx_days > intervals.MAX_DAYS_AHEAD:
                raise ValidationError(f"{interval.label} is more than five years after a session.")
            if interval in kept:
                raise ValidationError(f"{interval.label} is listed twice.")
            kept.append(interval)
        if not kept:
            raise ValidationError("Keep at least one follow-up interval.")


class FollowUpIntervalInline(admin.TabularInline):
    model = FollowUpInterval
    formset = IntervalFormSet
    fields = ["amount", "unit"]
    extra = 0
    min_num = 1

    def get_extra(self, request, obj=None, **kwargs) -> int:
        # A new settings row starts from the default schedule.
        return len(intervals.DEFAULT_INTERVALS) - 1 if obj is None else 0


@admin.register(ClinicFollowUpSettings)
class ClinicFollowUpSettingsAdmin(ClinicScopedAdmin):
    list_display = ["clinic", "schedule", "due_soon_days", "overdue_after_days"]
    inlines = [FollowUpIntervalInline]

    @admin.display(description="Follow-up intervals")
    def schedule(self, obj: ClinicFollowUpSettings) -> str:
        return ", ".join(i.label for i in sorted(obj.interval_list(), key=lambda i: i.approx_days))

    def has_add_permission(self, request) -> bool:
        if not super().has_add_permission(request):
            return False
        # One settings row per clinic: a clinic admin edits theirs once it exists.
        return (
            request.user.is_superuser
            or not ClinicFollowUpSettings.objects.filter(clinic_id=request.user.clinic_id).exists()
        )

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if obj is None or obj.pk is None:
            kwargs["initial"] = [
                {"amount": i.amount, "unit": i.unit} for i in intervals.DEFAULT_INTERVALS
            ]
        return kwargs

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        obj = form.instance
        audit.record(
            actor=request.user,
            action=AuditAction.CHANGE if change else AuditAction.CREATE,
            obj=obj,
            request=request,
            changes={
                "intervals": [i.label for i in obj.interval_list()],
                "due_soon_days": obj.due_soon_days,
                "overdue_after_days": obj.overdue_after_days,
            },
        )


@admin.register(ClinicExport)
class ClinicExportAdmin(ClinicScopedAdmin):
    """The log of audit exports: read only."""

    list_display = ["created_at", "requested_by", "identifiable", "row_count"]
    list_filter = ["identifiable"]
    readonly_fields = [
        "created_at",
        "requested_by",
        "identifiable",
        "reason",
        "row_count",
        "sha256",
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

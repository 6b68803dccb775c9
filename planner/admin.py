"""Django admin: reference data (versioned), treatment zones, clinic users and the audit trail.

Who sees what:
- superusers see every clinic;
- a clinic admin (group ``admin``, ``is_staff``) sees the users and the audit trail of their own
  clinic only, and edits the shared reference data, each change saved as a new rule-set version
  with a required reason (old versions are read-only);
- nobody, superusers included, can add, change or delete an audit entry here.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from . import (
    admin_consent,  # noqa: F401  (consent wording versions, signed records)
    admin_followup,  # noqa: F401  (follow-up intervals and the export log)
    admin_procedure,  # noqa: F401  (protocol presets, processing defaults)
    audit,
    reference,
)
from .admin_versions import ContinueOnNewVersionMixin
from .choices import AuditAction, ReferenceKey, Role
from .models import AuditEntry, Clinic, Patient, ReferenceValue, RuleSet, TreatmentZone, User

REASON_HELP = "Required. Kept with the change in the audit trail (e.g. the protocol review)."


def _reason_field() -> forms.CharField:
    return forms.CharField(
        label="Reason for change",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text=REASON_HELP,
        error_messages={"required": "Say why this changes; the reason is kept with it."},
    )


def _apply_validation(form: forms.Form, key: str, fields: tuple[str, ...]) -> dict | None:
    """Runs ``reference.clean_value`` and files its messages under the form's fields."""
    data = {field: form.cleaned_data.get(field) for field in reference.VALUE_FIELDS}
    try:
        cleaned = reference.clean_value(key, data)
    except ValidationError as refusal:
        for field, errors in refusal.message_dict.items():
            for error in errors:
                form.add_error(field if field in fields else None, error)
        return None
    for field in fields:
        if field in cleaned:
            form.cleaned_data[field] = cleaned[field]
    return cleaned


def _own_required_messages(form: forms.Form) -> None:
    # reference.clean_value says what is missing and why, instead of "This field is required."
    for name in ("citation", "sources"):
        if name in form.fields:
            form.fields[name].required = False


# --- rule sets and reference values ---------------------------------------------------------


class ReferenceValueForm(forms.ModelForm):
    """One value of a new version: the key is fixed, the rest checked by ``reference``."""

    class Meta:
        model = ReferenceValue
        fields = ["key", *reference.VALUE_FIELDS]
        widgets = {
            "citation": forms.Textarea(attrs={"rows": 2, "cols": 50}),
            "codes": forms.TextInput(attrs={"size": 40}),
            "sources": forms.TextInput(attrs={"size": 8}),
            "unit": forms.TextInput(attrs={"size": 6}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "key" in self.fields:  # absent when the whole version is shown read-only
            self.fields["key"].disabled = True
        _own_required_messages(self)

    def clean(self) -> dict:
        cleaned = super().clean()
        key = cleaned.get("key") or self.initial.get("key")
        if key and not self.errors:
            _apply_validation(self, key, reference.VALUE_FIELDS)
        return cleaned

    def validate_unique(self) -> None:
        # The model's constraints say the same as clean(); ours name the field and the fix.
        pass


class NewVersionFormSet(forms.BaseInlineFormSet):
    """All values of the new version, pre-filled from the version in force."""

    def clean(self) -> None:
        super().clean()
        if any(form.errors for form in self.forms):
            return
        if not self.changes():
            raise ValidationError(
                "Change at least one value: a new version identical to the one in force "
                "would only hide the history."
            )

    def changes(self) -> dict[str, dict]:
        current = RuleSet.current()
        base = {v.key: reference.value_fields(v) for v in current.values.all()} if current else {}
        found = {}
        for form in self.forms:
            if not form.has_changed() or not form.cleaned_data:
                continue
            key = form.cleaned_data.get("key") or form.initial.get("key")
            fields = {f: form.cleaned_data.get(f) for f in reference.VALUE_FIELDS}
            if fields != base.get(key):
                found[key] = fields
        return found


class ReferenceValueInline(admin.TabularInline):
    model = ReferenceValue
    form = ReferenceValueForm
    formset = NewVersionFormSet
    fields = ["key", *reference.VALUE_FIELDS]
    can_delete = False
    max_num = len(ReferenceKey.values)

    def get_extra(self, request, obj=None, **kwargs) -> int:
        return len(ReferenceKey.values) if obj is None else 0

    def has_add_permission(self, request, obj=None) -> bool:
        # Values are added only as part of a new version (the parent's add form).
        return obj is None and request.user.has_perm("planner.add_ruleset")

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a saved version is never edited

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("planner.view_ruleset")


class RuleSetForm(forms.ModelForm):
    class Meta:
        model = RuleSet
        fields = ["reason"]
        widgets = {"reason": forms.Textarea(attrs={"rows": 2, "cols": 60})}
        help_texts = {"reason": REASON_HELP}

    def clean_reason(self) -> str:
        return reference.clean_reason(self.cleaned_data.get("reason", ""))


@admin.register(RuleSet)
class RuleSetAdmin(admin.ModelAdmin):
    """Versions, newest first; "Add" makes the next version from the one in force."""

    form = RuleSetForm
    inlines = [ReferenceValueInline]
    list_display = ["version", "in_force", "created_at", "created_by", "short_reason", "changes"]
    list_filter = [("created_by", admin.RelatedOnlyFieldListFilter), "created_at"]
    search_fields = ["reason", "version"]
    readonly_fields = ["version", "created_at", "created_by", "differences"]
    actions = None

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["reason"]
        return ["version", "created_at", "created_by", "reason", "differences"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # old versions are read-only; a change is a new version

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if obj.pk is None and isinstance(inline, ReferenceValueInline):
            current = RuleSet.current()
            values = {v.key: v for v in current.values.all()} if current else {}
            kwargs["initial"] = [
                {"key": key, **(reference.value_fields(values[key]) if key in values else {})}
                for key in ReferenceKey.values
            ]
        return kwargs

    def save_model(self, request, obj, form, change) -> None:
        pass  # saved in save_related, together with its values and its audit entry

    def save_related(self, request, form, formsets, change) -> None:
        (formset,) = formsets
        # Nothing is saved through the formset; the admin's change message reads these.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        reference.create_version(
            actor=request.user,
            reason=form.cleaned_data["reason"],
            changes=formset.changes(),
            request=request,
            rule_set=form.instance,
        )

    def add_view(self, request, form_url="", extra_context=None):
        current = RuleSet.current()
        extra_context = {
            **(extra_context or {}),
            "title": (
                f"New rule-set version (based on v{current.version}, the version in force)"
                if current
                else "First rule-set version"
            ),
        }
        return super().add_view(request, form_url, extra_context)

    @admin.display(boolean=True, description="In force")
    def in_force(self, obj: RuleSet) -> bool:
        return obj.pk == getattr(RuleSet.current(), "pk", None)

    @admin.display(description="Reason for change")
    def short_reason(self, obj: RuleSet) -> str:
        return Truncator(obj.reason).chars(80)

    @admin.display(description="Changes from the previous version")
    def changes(self, obj: RuleSet) -> str:
        previous = reference.previous_version(obj)
        if previous is None:
            return "First version"
        found = reference.differences(previous, obj)
        return "; ".join(str(d) for d in found) or "No difference"

    @admin.display(description="Differences from the previous version")
    def differences(self, obj: RuleSet) -> str:
        previous = reference.previous_version(obj)
        if previous is None:
            return "First version: every value is new."
        found = reference.differences(previous, obj)
        if not found:
            return f"Identical to v{previous.version}."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((d.label, d.field, d.old, d.new) for d in found),
        )
        return format_html(
            "<table><thead><tr><th>Value</th><th>Field</th><th>v{}</th><th>v{}</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            previous.version,
            obj.version,
            rows,
        )


class ReferenceValueChangeForm(forms.ModelForm):
    """Editing a value of the version in force: saved as a new version, reason required."""

    reason = _reason_field()

    class Meta:
        model = ReferenceValue
        fields = list(reference.VALUE_FIELDS)
        widgets = {"citation": forms.Textarea(attrs={"rows": 3, "cols": 60})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _own_required_messages(self)

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        values = _apply_validation(self, self.instance.key, reference.VALUE_FIELDS)
        if values is not None:
            before = reference.value_fields(ReferenceValue.objects.get(pk=self.instance.pk))
            if {f: values[f] for f in reference.VALUE_FIELDS} == before:
                raise ValidationError("Nothing changed: edit a value, or go back.")
        return cleaned

    def validate_unique(self) -> None:
        pass


class InForceFilter(admin.SimpleListFilter):
    title = "version"
    parameter_name = "version"

    def lookups(self, request, model_admin):
        return [("current", "In force"), ("old", "Older versions")]

    def queryset(self, request, queryset):
        current = RuleSet.current()
        if self.value() == "current" and current:
            return queryset.filter(rule_set=current)
        if self.value() == "old" and current:
            return queryset.exclude(rule_set=current)
        return queryset


@admin.register(ReferenceValue)
class ReferenceValueAdmin(ContinueOnNewVersionMixin, admin.ModelAdmin):
    form = ReferenceValueChangeForm
    list_display = [
        "key_label",
        "version",
        "minimum",
        "maximum",
        "codes",
        "unit",
        "sources",
        "short_citation",
    ]
    list_filter = [InForceFilter, "key"]
    search_fields = ["key", "codes", "citation", "sources"]
    list_select_related = ["rule_set"]
    ordering = ["-rule_set__version", "key"]
    actions = None

    def get_fields(self, request, obj=None):
        fields = ["key", "rule_set", *reference.VALUE_FIELDS]
        if self.has_change_permission(request, obj):
            fields.append("reason")
        return fields

    def get_readonly_fields(self, request, obj=None):
        return ["key", "rule_set"]

    def has_add_permission(self, request) -> bool:
        return False  # a value is added as part of a new rule-set version

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        if not super().has_change_permission(request, obj):
            return False
        # Only the version in force can be the base of a change; older ones are history.
        return obj is None or obj.rule_set_id == getattr(RuleSet.current(), "pk", None)

    def save_model(self, request, obj, form, change) -> None:
        new_set = reference.create_version(
            actor=request.user,
            reason=form.cleaned_data["reason"],
            changes={obj.key: {f: form.cleaned_data[f] for f in reference.VALUE_FIELDS}},
            request=request,
        )
        # The admin's message and log then name the new value, not the untouched old one.
        new_value = new_set.values.get(key=obj.key)
        obj.pk, obj.rule_set = new_value.pk, new_set
        messages.info(request, f"Saved as rule-set version {new_set.version}.")

    @admin.display(description="Value", ordering="key")
    def key_label(self, obj: ReferenceValue) -> str:
        return obj.get_key_display()

    @admin.display(description="Version", ordering="rule_set__version")
    def version(self, obj: ReferenceValue) -> str:
        current = RuleSet.current()
        suffix = " (in force)" if current and obj.rule_set_id == current.pk else ""
        return f"v{obj.rule_set.version}{suffix}"

    @admin.display(description="Citation")
    def short_citation(self, obj: ReferenceValue) -> str:
        return Truncator(obj.citation).chars(60)


# --- treatment zones ------------------------------------------------------------------------


class TreatmentZoneForm(forms.ModelForm):
    reason = _reason_field()

    class Meta:
        model = TreatmentZone
        fields = [
            "code",
            "name",
            "laterality",
            "region",
            "shape",
            "label_x",
            "label_y",
            "sort_order",
            "active",
        ]
        widgets = {"shape": forms.Textarea(attrs={"rows": 3, "cols": 60})}

    def clean_name(self) -> str:
        from .text import normalise_text

        return normalise_text(self.cleaned_data["name"])

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].strip().upper()
        if not code or not code[0].isalpha() or not all(c.isalnum() or c == "_" for c in code):
            raise ValidationError(
                "Use capital letters, digits and underscores, starting with a letter "
                "(e.g. UPPER_LIP)."
            )
        return code

    def clean_shape(self) -> str:
        return reference.clean_shape(self.cleaned_data["shape"])

    def clean_label_x(self) -> int:
        return _within(self.cleaned_data["label_x"], 400, "The label's x")

    def clean_label_y(self) -> int:
        return _within(self.cleaned_data["label_y"], 560, "The label's y")

    def clean_reason(self) -> str:
        return reference.clean_reason(self.cleaned_data["reason"])


def _within(value: int, limit: int, what: str) -> int:
    if value is None or not 0 <= value <= limit:
        raise ValidationError(f"{what} must be between 0 and {limit} (face-map coordinates).")
    return value


@admin.register(TreatmentZone)
class TreatmentZoneAdmin(admin.ModelAdmin):
    form = TreatmentZoneForm
    list_display = ["code", "name", "region", "laterality", "active", "sort_order"]
    list_filter = ["active", "region", "laterality"]
    search_fields = ["code", "name"]
    readonly_fields = ["shape_preview"]
    actions = None

    def get_fields(self, request, obj=None):
        fields = list(TreatmentZoneForm.Meta.fields)
        if obj is not None:
            fields.append("shape_preview")
        if self.has_change_permission(request, obj) or obj is None:
            fields.append("reason")
        return fields

    def get_readonly_fields(self, request, obj=None):
        # Once a planned injection uses the zone, the attributes the rules read are fixed.
        fixed = list(reference.RULE_FIELDS) if obj and reference.zone_in_use(obj) else []
        return ["shape_preview", *fixed]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deactivate instead: plans keep pointing at their zones

    def save_model(self, request, obj, form, change) -> None:
        changed = [name for name in form.changed_data if name != "reason"]
        reference.zone_save(
            zone=obj,
            changed=changed,
            initial=form.initial,
            reason=form.cleaned_data["reason"],
            actor=request.user,
            request=request,
        )

    @admin.display(description="Shape on the face map")
    def shape_preview(self, obj: TreatmentZone) -> str:
        return format_html(
            '<svg viewBox="0 0 400 560" width="120" height="168" role="img" aria-label="{}">'
            '<rect x="0" y="0" width="400" height="560" fill="none" stroke="#999"></rect>'
            '<path d="{}" fill="#c33" fill-opacity="0.4" stroke="#c33"></path></svg>',
            obj.name,
            obj.shape,
        )


# --- clinics and users ----------------------------------------------------------------------


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    list_display = ["name", "phone", "created_at"]
    search_fields = ["name"]
    actions = None

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(pk=request.user.clinic_id)

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


ROLE_NAMES = [role.value for role in Role]


class ClinicUserCreationForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("username",)


class ClinicUserChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Superusers manage everyone; a clinic admin manages the members of their own clinic and
    can give them only the three roles (never superuser, never single permissions)."""

    form = ClinicUserChangeForm
    add_form = ClinicUserCreationForm
    list_display = ["username", "first_name", "last_name", "roles", "clinic", "is_active"]
    list_filter = ["groups", "is_active"]
    filter_horizontal = []
    actions = None

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("clinic").prefetch_related("groups")
        if request.user.is_superuser:
            return queryset
        return queryset.filter(clinic_id=request.user.clinic_id, is_superuser=False)

    def get_list_filter(self, request):
        if request.user.is_superuser:
            return ["clinic", "groups", "is_staff", "is_superuser", "is_active"]
        return self.list_filter

    def get_fieldsets(self, request, obj=None):
        if request.user.is_superuser:
            if obj is None:
                return (
                    *self.add_fieldsets,
                    ("Clinic and roles", {"fields": ("clinic", "groups")}),
                )
            return (
                *super().get_fieldsets(request, obj),
                ("Clinic", {"fields": ("clinic",)}),
            )
        if obj is None:
            return (
                *self.add_fieldsets,
                ("Personal info", {"fields": ("first_name", "last_name", "email")}),
                ("Role", {"fields": ("groups",)}),
            )
        return (
            (None, {"fields": ("username", "password")}),
            ("Personal info", {"fields": ("first_name", "last_name", "email")}),
            ("Access", {"fields": ("is_active", "groups")}),
            ("Important dates", {"fields": ("last_login", "date_joined")}),
        )

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return ()
        return ("last_login", "date_joined")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "groups":
            if not request.user.is_superuser:
                kwargs["queryset"] = Group.objects.filter(name__in=ROLE_NAMES)
            kwargs["widget"] = forms.CheckboxSelectMultiple
            kwargs["help_text"] = (
                "surgeon: plans; staff: views plans, prints and records consent; "
                "admin: reference data and the clinic's users."
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Accounts are deactivated, not deleted: the audit trail keeps pointing at them.
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change) -> None:
        if not request.user.is_superuser:
            # Whatever the form sent: the editor's own clinic, never superuser.
            obj.clinic_id = request.user.clinic_id
            obj.is_superuser = False
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        user = form.instance
        if not user.is_superuser:
            # Admin access follows the admin role, so the two never disagree.
            is_admin = user.groups.filter(name=Role.ADMIN).exists()
            if user.is_staff != is_admin:
                User.objects.filter(pk=user.pk).update(is_staff=is_admin)
                user.is_staff = is_admin
        audit.record(
            actor=request.user,
            action=AuditAction.CHANGE if change else AuditAction.CREATE,
            obj=user,
            request=request,
            changes={
                "user": user.username,
                "fields": sorted(name for name in form.changed_data if "password" not in name),
                "roles": sorted(user.groups.values_list("name", flat=True)),
            },
        )

    @admin.display(description="Roles")
    def roles(self, obj: User) -> str:
        return ", ".join(sorted(group.name for group in obj.groups.all())) or "-"

    def get_list_display(self, request):
        display = list(self.list_display)
        if not request.user.is_superuser:
            display.remove("clinic")
        return display


# --- the audit trail ------------------------------------------------------------------------


def _audit_scope(request) -> Q:
    """A clinic admin sees their clinic's entries, plus reference-data changes (shared by all
    clinics, never about a patient)."""
    return Q(clinic_id=request.user.clinic_id) | Q(
        action=AuditAction.REFERENCE_CHANGE, patient__isnull=True
    )


class ActorFilter(admin.SimpleListFilter):
    title = "user"
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        users = User.objects.order_by("username")
        if not request.user.is_superuser:
            users = users.filter(clinic_id=request.user.clinic_id)
        return [(str(user.pk), user.username) for user in users]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(actor_id=int(value))
        return queryset


class PatientFilter(admin.SimpleListFilter):
    title = "patient (chart number)"
    parameter_name = "patient"

    def lookups(self, request, model_admin):
        patients = Patient.objects.order_by("chart_number")
        if not request.user.is_superuser:
            patients = patients.filter(clinic_id=request.user.clinic_id)
        return [(str(patient.pk), patient.chart_number) for patient in patients]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(patient_id=int(value))
        return queryset


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only for everyone: the trail is written by the app, never through admin."""

    list_display = [
        "at",
        "actor_username",
        "action",
        "object_type",
        "object_id",
        "patient",
        "plan_version",
        "ip_address",
        "short_changes",
    ]
    list_filter = ["action", ("at", admin.DateFieldListFilter), ActorFilter, PatientFilter]
    search_fields = ["actor_username", "object_id", "patient__chart_number"]
    date_hierarchy = "at"
    list_select_related = ["patient"]
    fields = [
        "at",
        "actor_username",
        "action",
        "object_type",
        "object_id",
        "patient",
        "plan_version",
        "ip_address",
        "changes_pretty",
    ]
    readonly_fields = fields
    actions = None

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(_audit_scope(request))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Changes")
    def short_changes(self, obj: AuditEntry) -> str:
        return Truncator(json.dumps(obj.changes, ensure_ascii=False, sort_keys=True)).chars(80)

    @admin.display(description="Changes")
    def changes_pretty(self, obj: AuditEntry) -> str:
        text = json.dumps(obj.changes, ensure_ascii=False, indent=2, sort_keys=True)
        return format_html("<pre>{}</pre>", text)

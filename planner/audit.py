"""Writes the audit trail. Callers run it inside the transaction of the change it records."""

from typing import Any

from django.db import models
from django.http import HttpRequest

from .choices import AuditAction
from .models import AuditEntry, Patient, TreatmentPlan, User


def client_ip(request: HttpRequest | None) -> str | None:
    # REMOTE_ADDR only: a client-sent X-Forwarded-For is never trusted.
    return request.META.get("REMOTE_ADDR") if request is not None else None


def _patient_of(obj: models.Model | None) -> Patient | None:
    if isinstance(obj, Patient):
        return obj
    if isinstance(obj, TreatmentPlan):
        return obj.patient
    return getattr(obj, "patient", None)


def record(
    *,
    actor: User | None,
    action: AuditAction,
    obj: models.Model | None = None,
    patient: Patient | None = None,
    changes: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    username: str = "",
) -> AuditEntry:
    patient = patient or _patient_of(obj)
    actor = actor if actor is not None and actor.is_authenticated else None
    return AuditEntry.objects.create(
        actor=actor,
        actor_username=actor.username if actor else username[:150],
        clinic_id=(patient.clinic_id if patient else getattr(actor, "clinic_id", None)),
        action=action,
        object_type=obj._meta.model_name if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        patient=patient,
        plan_version=obj.version if isinstance(obj, TreatmentPlan) else None,
        changes=changes or {},
        ip_address=client_ip(request),
    )


def changed_fields(form) -> dict[str, Any]:
    """The fields a bound ModelForm changed, as {field: [old, new]} in JSON-safe text."""
    return {
        name: [str(form.initial.get(name, "")), str(form.cleaned_data.get(name, ""))]
        for name in form.changed_data
    }

"""Who may see what. Every view loads objects through these helpers, so the clinic check lives
in one place: anything outside the user's clinic is a 404, never a 403 that confirms it exists."""

from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from .models import Patient, TreatmentPlan, User


def patients_for(user: User) -> QuerySet[Patient]:
    if user.is_superuser:
        return Patient.objects.all()
    return Patient.objects.filter(clinic_id=user.clinic_id)


def plans_for(user: User) -> QuerySet[TreatmentPlan]:
    if user.is_superuser:
        return TreatmentPlan.objects.all()
    return TreatmentPlan.objects.filter(patient__clinic_id=user.clinic_id)


def get_patient_for_user(request: HttpRequest, pk: int) -> Patient:
    return get_object_or_404(patients_for(request.user).select_related("clinic"), pk=pk)


def get_plan_for_user(request: HttpRequest, pk: int) -> TreatmentPlan:
    queryset = plans_for(request.user).select_related("patient__clinic", "surgeon", "rule_set")
    return get_object_or_404(queryset, pk=pk)

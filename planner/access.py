"""Who may see what. Every view loads objects through these helpers, so the clinic check lives
in one place: anything outside the user's clinic is a 404, never a 403 that confirms it exists."""

from django.db.models import QuerySet, Subquery
from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from .models import Patient, RuleSet, TreatmentPlan, User


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


PLAN_RELATED = ("patient__clinic", "surgeon", "rule_set")
#: The newest rule set's id, as a subquery of the plan's own query.
CURRENT_RULE_SET_ID = Subquery(RuleSet.objects.order_by("-version").values("pk")[:1])


def get_plan_for_user(
    request: HttpRequest, pk: int, *, related: tuple[str, ...] = PLAN_RELATED
) -> TreatmentPlan:
    """The plan, with what pages show of it (``related``: fewer joins for a request that shows
    none of it), and the id of the rule set in force read by the same query
    (``current_rule_set_id``, which ``engine.current_rule_set`` uses instead of asking again)."""
    queryset = plans_for(request.user).annotate(current_rule_set_id=CURRENT_RULE_SET_ID)
    if related:  # select_related() without names would follow every foreign key
        queryset = queryset.select_related(*related)
    return get_object_or_404(queryset, pk=pk)

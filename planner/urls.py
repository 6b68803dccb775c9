from django.urls import path
from django.views.generic import RedirectView

from .views import patients, plans, procedure

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="patient_list"), name="home"),
    path("patients/", patients.patient_list, name="patient_list"),
    path("patients/new/", patients.patient_create, name="patient_create"),
    path("patients/<int:pk>/", patients.patient_detail, name="patient_detail"),
    path("patients/<int:pk>/edit/", patients.patient_edit, name="patient_edit"),
    path("patients/<int:patient_id>/plans/new/", plans.plan_create, name="plan_create"),
    path(
        "patients/<int:patient_id>/plans/from-preset/",
        procedure.plan_from_preset,
        name="plan_from_preset",
    ),
    path("plans/<int:pk>/", plans.plan_builder, name="plan_builder"),
    path("plans/<int:pk>/procedure/", procedure.procedure_day, name="procedure_day"),
    path("plans/<int:pk>/repeat/", plans.plan_repeat, name="plan_repeat"),
    path("plans/<int:pk>/details/", plans.plan_details_update, name="plan_details_update"),
    path("plans/<int:pk>/status/", plans.plan_transition, name="plan_transition"),
    path("plans/<int:pk>/acknowledge/", plans.warning_acknowledge, name="warning_acknowledge"),
    path("plans/<int:pk>/injections/new/", plans.injection_new, name="injection_new"),
    path("plans/<int:pk>/injections/", plans.injection_create, name="injection_create"),
    path(
        "plans/<int:pk>/injections/validate/", plans.injection_validate, name="injection_validate"
    ),
    path(
        "plans/<int:pk>/injections/<int:injection_id>/", plans.injection_row, name="injection_row"
    ),
    path(
        "plans/<int:pk>/injections/<int:injection_id>/edit/",
        plans.injection_edit,
        name="injection_edit",
    ),
    path(
        "plans/<int:pk>/injections/<int:injection_id>/delete/",
        plans.injection_delete,
        name="injection_delete",
    ),
]

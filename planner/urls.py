from django.urls import path
from django.views.generic import RedirectView

from .views import consent, patients, plans, procedure

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
    path(
        "plans/<int:pk>/operative-record.pdf",
        procedure.operative_record_pdf,
        name="operative_record_pdf",
    ),
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
    # The consent and procedure sheet (issue 5).
    path("plans/<int:pk>/consent.pdf", consent.consent_pdf, name="consent_pdf"),
    path("plans/<int:pk>/consent/", consent.consent_sheet, name="consent_sheet"),
]

# --- follow-up and outcomes (planner/views/followup.py, photos.py, exports.py) ---
from .views import exports, followup, photos  # noqa: E402

urlpatterns += [
    path("dashboard/", followup.dashboard, name="dashboard"),
    path("plans/<int:pk>/follow-up/", followup.plan_followup, name="plan_followup"),
    path(
        "plans/<int:pk>/follow-up/schedule/", followup.followup_schedule, name="followup_schedule"
    ),
    path(
        "plans/<int:pk>/follow-up/unscheduled/",
        followup.followup_unscheduled,
        name="followup_unscheduled",
    ),
    path("plans/<int:pk>/follow-up/chart.svg", followup.plan_chart, name="plan_followup_chart"),
    path(
        "plans/<int:pk>/follow-up/summary.pdf",
        followup.followup_summary_pdf,
        name="followup_summary_pdf",
    ),
    path("follow-ups/<int:pk>/", followup.followup_visit, name="followup_visit"),
    path("follow-ups/<int:pk>/status/", followup.followup_status, name="followup_status"),
    path("patients/<int:pk>/follow-up/", followup.patient_followup, name="patient_followup"),
    path(
        "patients/<int:pk>/follow-up/chart.svg",
        followup.patient_chart,
        name="patient_followup_chart",
    ),
    path("plans/<int:pk>/photos/", photos.plan_photos, name="plan_photos"),
    path("plans/<int:pk>/photos/compare/", photos.photo_compare, name="photo_compare"),
    path("photos/<int:pk>/", photos.photo_file, name="photo_file"),
    path("photos/<int:pk>/delete/", photos.photo_delete, name="photo_delete"),
    path("exports/", exports.export_page, name="export_page"),
    path("exports/audit.csv", exports.audit_csv, name="export_audit_csv"),
]
# --- end follow-up and outcomes ---

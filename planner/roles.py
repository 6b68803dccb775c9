"""The three roles and their permissions. The data migration and the tests read this one table."""

from .choices import Role

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    Role.SURGEON: (
        "view_patient",
        "add_patient",
        "change_patient",
        "view_treatmentplan",
        "add_treatmentplan",
        "change_treatmentplan",
        "view_plannedinjection",
        "add_plannedinjection",
        "change_plannedinjection",
        "delete_plannedinjection",
        "view_warningacknowledgement",
        "add_warningacknowledgement",
        "view_treatmentzone",
        "view_ruleset",
        "view_referencevalue",
        "view_protocolpreset",
        "view_processingrecord",
        "add_processingrecord",
        "change_processingrecord",
        "view_performedinjection",
        "add_performedinjection",
        "view_planaddendum",
        "add_planaddendum",
        # Follow-up: schedule and record visits, scores and adverse events; photos.
        "view_followup",
        "add_followup",
        "change_followup",
        "view_adverseevent",
        "add_adverseevent",
        "change_adverseevent",
        "delete_adverseevent",
        "view_photo",
        "add_photo",
        "delete_photo",
    ),
    Role.STAFF: (
        "view_patient",
        "add_patient",
        "change_patient",
        "view_treatmentplan",
        "view_plannedinjection",
        "view_warningacknowledgement",
        "view_treatmentzone",
        "print_consent",
        "record_consent",
        "view_processingrecord",
        "view_performedinjection",
        "view_planaddendum",
        # Follow-up: the dashboard and the visits (read), photos (view and upload).
        "view_followup",
        "view_adverseevent",
        "view_photo",
        "add_photo",
    ),
    Role.ADMIN: (
        "view_patient",
        "view_treatmentplan",
        "view_plannedinjection",
        "view_warningacknowledgement",
        "view_treatmentzone",
        "add_treatmentzone",
        "change_treatmentzone",
        "view_ruleset",
        "add_ruleset",
        "view_referencevalue",
        "add_referencevalue",
        "change_referencevalue",
        "view_auditentry",
        "view_user",
        "add_user",
        "change_user",
        "view_clinic",
        # Follow-up: read the outcomes, export the clinic audit CSV, set the review intervals.
        "view_followup",
        "view_adverseevent",
        "view_photo",
        "export_clinic_audit",
        "view_clinicexport",
        "view_clinicfollowupsettings",
        "add_clinicfollowupsettings",
        "change_clinicfollowupsettings",
        "view_followupinterval",
        "add_followupinterval",
        "change_followupinterval",
        "delete_followupinterval",
        # Consent wording (a change is a new version) and the signed records (read only).
        "view_consenttext",
        "add_consenttext",
        "change_consenttext",
        "view_consentrecord",
    ),
}


def sync_roles(group_model, permission_model, *, strict: bool) -> None:
    """Gives each role group exactly its permissions.

    Run by migration 0002 (``strict=False``: models added by later migrations have no
    permissions yet) and after every ``migrate`` (``strict=True``: by then every codename must
    exist, so a typo in the table fails loudly).
    """
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        permissions = permission_model.objects.filter(
            codename__in=codenames, content_type__app_label__in=("planner", "auth")
        )
        missing = set(codenames) - set(permissions.values_list("codename", flat=True))
        if missing and strict:
            raise RuntimeError(f"Unknown permissions for role {role}: {sorted(missing)}")
        group.permissions.set(permissions)

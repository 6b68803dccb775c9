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

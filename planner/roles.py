"""The three roles and their permissions. The data migration and the tests read this one table."""

from .choices import Role

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    Role.SURGEON: (
        "view_patient", "add_patient", "change_patient",
        "view_treatmentplan", "add_treatmentplan", "change_treatmentplan",
        "view_plannedinjection", "add_plannedinjection", "change_plannedinjection",
        "delete_plannedinjection",
        "view_warningacknowledgement", "add_warningacknowledgement",
        "view_treatmentzone", "view_ruleset", "view_referencevalue",
    ),
    Role.STAFF: (
        "view_patient", "add_patient", "change_patient",
        "view_treatmentplan", "view_plannedinjection", "view_warningacknowledgement",
        "view_treatmentzone", "print_consent", "record_consent",
    ),
    Role.ADMIN: (
        "view_patient", "view_treatmentplan", "view_plannedinjection",
        "view_warningacknowledgement",
        "view_treatmentzone", "add_treatmentzone", "change_treatmentzone",
        "view_ruleset", "add_ruleset", "view_referencevalue", "add_referencevalue",
        "change_referencevalue",
        "view_auditentry", "view_user", "add_user", "change_user", "view_clinic",
    ),
}

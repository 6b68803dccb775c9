"""Creates a demo clinic, one user per role, and three patients with plans. Safe to run twice."""

import datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from planner.choices import Combination, Goal, PlanStatus, Role
from planner.models import (
    Clinic,
    ClinicProcessingDefaults,
    Patient,
    PlannedInjection,
    PresetInjection,
    ProtocolPreset,
    RuleSet,
    TreatmentPlan,
    TreatmentZone,
    User,
)

DEMO_CLINIC = "Demo Aesthetic Surgery Clinic"
OTHER_CLINIC = "Other Clinic (for access checks)"
# (username, password, role, first name, last name, clinic)
DEMO_USERS = (
    ("surgeon", "demo-surgeon-2026", Role.SURGEON, "Ada", "Lindqvist", DEMO_CLINIC),
    ("staff", "demo-staff-2026", Role.STAFF, "Sam", "Okafor", DEMO_CLINIC),
    ("admin", "demo-admin-2026", Role.ADMIN, "Mira", "Haddad", DEMO_CLINIC),
    ("other-surgeon", "demo-other-2026", Role.SURGEON, "Otto", "Berg", OTHER_CLINIC),
)
# (chart number, name, date of birth, goal, indications, combination, injections)
DEMO_PATIENTS = (
    (
        "DEMO-0001",
        "Eleanor Whitfield",
        datetime.date(1971, 3, 14),
        Goal.REJUVENATION,
        ["dark_lower_eyelids"],
        Combination.PRF,
        [
            ("LOWER_EYELID_L", "0.3", "needle", 27, "subdermis"),
            ("LOWER_EYELID_R", "0.3", "needle", 27, "subdermis"),
        ],
    ),
    (
        "DEMO-0002",
        "Karim Benali",
        datetime.date(1985, 9, 2),
        Goal.SCAR,
        ["scars"],
        Combination.NONE,
        [("CHEEK_L", "0.4", "needle", 27, "dermis"), ("CHEEK_R", "0.4", "needle", 27, "dermis")],
    ),
    (
        "DEMO-0003",
        "Yuki Tanaka",
        datetime.date(1966, 11, 30),
        Goal.REJUVENATION,
        ["fine_lines", "skin_quality"],
        Combination.PRP,
        [
            ("UPPER_LIP", "0.3", "needle", 30, "dermis"),
            ("LOWER_LIP", "0.2", "needle", 30, "dermis"),
            ("FOREHEAD", "0.5", "cannula", 25, "subdermis"),
        ],
    ),
)


# (name, goal, indications, injections): starting points, each within the documented ranges.
DEMO_PRESETS = (
    (
        "Dark lower eyelids",
        Goal.REJUVENATION,
        ["dark_lower_eyelids"],
        [
            ("LOWER_EYELID_L", "0.3", "needle", 27, "subdermis"),
            ("LOWER_EYELID_R", "0.3", "needle", 27, "subdermis"),
        ],
    ),
    (
        "Perioral fine lines",
        Goal.REJUVENATION,
        ["fine_lines"],
        [
            ("UPPER_LIP", "0.3", "needle", 30, "dermis"),
            ("LOWER_LIP", "0.2", "needle", 30, "dermis"),
            ("MARIONETTE_L", "0.3", "needle", 27, "dermis"),
            ("MARIONETTE_R", "0.3", "needle", 27, "dermis"),
        ],
    ),
    (
        "Acne scars",
        Goal.SCAR,
        ["scars"],
        [("CHEEK_L", "0.5", "needle", 27, "dermis"), ("CHEEK_R", "0.5", "needle", 27, "dermis")],
    ),
    (
        "Full-face skin quality",
        Goal.REJUVENATION,
        ["skin_quality"],
        [
            ("FOREHEAD", "0.5", "cannula", 25, "subdermis"),
            ("CHEEK_L", "0.5", "cannula", 25, "subdermis"),
            ("CHEEK_R", "0.5", "cannula", 25, "subdermis"),
            ("CHIN", "0.3", "needle", 27, "dermis"),
        ],
    ),
)


class Command(BaseCommand):
    help = "Seed a demo clinic with one user per role and three patients with plans (DEBUG only)."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo creates users with known passwords: run it with DEBUG=1 only."
            )
        call_command("load_reference_data", verbosity=0, stdout=self.stdout)
        with transaction.atomic():
            clinics = {
                name: Clinic.objects.get_or_create(name=name)[0]
                for name in (DEMO_CLINIC, OTHER_CLINIC)
            }
            users = {
                username: self._user(username, password, role, first, last, clinics[clinic])
                for username, password, role, first, last, clinic in DEMO_USERS
            }
            for row in DEMO_PATIENTS:
                self._patient_with_plan(clinics[DEMO_CLINIC], users["surgeon"], *row)
            self._presets(clinics[DEMO_CLINIC])
        self.stdout.write(self.style.SUCCESS("Demo data ready. Log in at http://127.0.0.1:8000/"))
        for username, password, role, *_rest, clinic in DEMO_USERS:
            self.stdout.write(f"  {role:<8} {username:<14} password: {password:<18} ({clinic})")

    def _presets(self, clinic: Clinic) -> None:
        ClinicProcessingDefaults.objects.get_or_create(
            clinic=clinic,
            defaults={
                "harvest_cannula": "Multiport harvesting cannula",
                "harvest_cannula_hole_mm": "1",
                "emulsification_passes": 30,
                "connector_bore_mm": "1.4",
                "filter_type": "Mesh filter cartridge",
                "filter_pore_mm": "0.5",
                "expected_yield_ratio": "0.50",
            },
        )
        zones = TreatmentZone.objects.in_bulk(field_name="code")
        for name, goal, indications, injections in DEMO_PRESETS:
            preset, created = ProtocolPreset.objects.get_or_create(
                clinic=clinic, name=name, defaults={"goal": goal, "indications": indications}
            )
            if created:
                PresetInjection.objects.bulk_create(
                    PresetInjection(
                        preset=preset,
                        zone=zones[code],
                        volume_ml=Decimal(volume),
                        instrument=instrument,
                        gauge=gauge,
                        depth=depth,
                        position=index,
                    )
                    for index, (code, volume, instrument, gauge, depth) in enumerate(injections)
                )

    def _user(self, username, password, role, first, last, clinic) -> User:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first,
                "last_name": last,
                "clinic": clinic,
                "is_staff": role == Role.ADMIN,
            },
        )
        if created:
            user.set_password(password)
            user.save()
        user.groups.add(Group.objects.get(name=role))
        return user

    def _patient_with_plan(
        self, clinic, surgeon, chart, name, born, goal, indications, combination, injections
    ) -> None:
        patient, created = Patient.objects.get_or_create(
            clinic=clinic,
            chart_number=chart,
            defaults={"name": name, "date_of_birth": born},
        )
        if not created:
            return
        plan = TreatmentPlan.objects.create(
            patient=patient,
            surgeon=surgeon,
            status=PlanStatus.DRAFT,
            goal=goal,
            planned_for=datetime.date.today() + datetime.timedelta(days=14),
            indications=indications,
            combination=combination,
            harvest_volume_ml=Decimal("20"),
            rule_set=RuleSet.current(),
        )
        zones = TreatmentZone.objects.in_bulk(field_name="code")
        PlannedInjection.objects.bulk_create(
            PlannedInjection(
                plan=plan,
                zone=zones[code],
                volume_ml=Decimal(volume),
                instrument=instrument,
                gauge=gauge,
                depth=depth,
                position=index,
            )
            for index, (code, volume, instrument, gauge, depth) in enumerate(injections)
        )

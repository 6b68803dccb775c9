"""Creates a demo clinic, one user per role, and six patients with plans at every stage. Safe to run
twice."""

import datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from planner import consent, procedure, services
from planner.choices import Combination, Goal, PlanStatus, Role
from planner.models import (
    Clinic,
    ClinicProcessingDefaults,
    Patient,
    PerformedInjection,
    PlannedInjection,
    PresetInjection,
    ProcessingRecord,
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


# Plans further along, so every role has something to do: staff a sheet to print and sign,
# the surgeon a procedure day to record and a performed session with its follow-up schedule.
DEMO_ADVANCED_PATIENTS = (
    (
        PlanStatus.READY,
        "DEMO-0004",
        "Sofia Marquez",
        datetime.date(1979, 5, 21),
        Goal.REJUVENATION,
        ["skin_quality"],
        Combination.NONE,
        [("FOREHEAD", "0.4", "cannula", 25, "subdermis"), ("CHIN", "0.3", "needle", 27, "dermis")],
    ),
    (
        PlanStatus.CONSENTED,
        "DEMO-0005",
        "Liam O'Connor",
        datetime.date(1968, 1, 9),
        Goal.REJUVENATION,
        ["fine_lines"],
        Combination.PRP,
        [
            ("CROWS_FEET_L", "0.3", "needle", 30, "dermis"),
            ("CROWS_FEET_R", "0.3", "needle", 30, "dermis"),
        ],
    ),
    (
        PlanStatus.PERFORMED,
        "DEMO-0006",
        "Amara Nwosu",
        datetime.date(1990, 7, 3),
        Goal.SCAR,
        ["scars"],
        Combination.NONE,
        [("CHEEK_L", "0.5", "needle", 27, "dermis"), ("CHEEK_R", "0.5", "needle", 27, "dermis")],
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
    help = "Seed a demo clinic: a user per role, six patients, plans at every stage (DEBUG only)."

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
            advanced = [
                (self._patient_with_plan(clinics[DEMO_CLINIC], users["surgeon"], *row), stage)
                for stage, *row in DEMO_ADVANCED_PATIENTS
            ]
        # Outside the transaction above: recording consent renders the PDF in its own process.
        for plan, stage in advanced:
            if plan is not None:
                self._advance(plan, stage, users)
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
            return None
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
        return plan

    def _advance(self, plan: TreatmentPlan, stage: str, users: dict) -> None:
        """Moves a demo plan along the workflow through the same services the pages use."""
        surgeon, staff = users["surgeon"], users["staff"]
        plan = services.plan_transition(
            plan=plan, target=PlanStatus.READY, expected_version=plan.version, actor=surgeon
        )
        if stage == PlanStatus.READY:
            return
        plan.refresh_from_db()
        consent.record_consent(
            plan=plan,
            expected_version=plan.version,
            signed_document_id=consent.current_document_id(plan),
            signed_on=datetime.date.today(),
            witness_name="Jo Witness",
            actor=staff,
        )
        if stage == PlanStatus.CONSENTED:
            return
        plan.refresh_from_db()
        ProcessingRecord.objects.create(
            plan=plan,
            donor_site=plan.donor_site,
            harvest_volume_ml=Decimal("20"),
            nanofat_yield_ml=Decimal("4"),
            kit_lot="DEMO-KIT-01",
            filter_lot="DEMO-FLT-01",
            recorded_by=surgeon,
        )
        PerformedInjection.objects.bulk_create(
            PerformedInjection(
                plan=plan,
                zone_id=i.zone_id,
                volume_ml=i.volume_ml,
                instrument=i.instrument,
                gauge=i.gauge,
                depth=i.depth,
                technique=i.technique,
                position=i.position,
            )
            for i in plan.injections.all()
        )
        procedure.procedure_complete(
            plan=plan,
            reasons={},
            adverse_events="",
            stamp=procedure.procedure_state(plan).stamp,
            actor=surgeon,
        )

"""Seeds the benchmark's clinic and writes what the load generator needs as JSON.

Run by bench/load.py in a subprocess, with the environment (DATABASE_URL, settings) of the
gunicorn it is about to start: `python bench/seed.py OUT.json`. The database must be migrated
and hold the reference data. It creates, with bulk_create and in a few seconds:

- one clinic with 4 surgeons and 500 patients, 4 plans each (2,000 plans) of 5-40 injections,
  mostly within the documented bounds, about one in eight breaking a rule, in every status;
- among them, one draft plan of 40 injections per load-generator connection (each connection
  views and edits its own plan, so the optimistic version of one never races another's), a
  draft plan of 5 injections, and a ready 40-injection plan with no finding for the consent PDF;
- one logged-in session per connection, made the way django.contrib.auth.login makes one,
  so the benchmark never goes through the login form (login throttling is not what it measures).
"""

import datetime
import json
import os
import random
import secrets
import sys
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanofat.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.db import transaction  # noqa: E402

from planner.choices import PlanStatus, Role  # noqa: E402
from planner.models import (  # noqa: E402
    Clinic,
    Patient,
    PlannedInjection,
    RuleSet,
    TreatmentPlan,
    TreatmentZone,
    User,
)

PATIENTS = 500
PLANS_PER_PATIENT = 4
CONNECTIONS = 34  # the most wrk connections bench/load.py opens at once, plus spares
FIRST = (  # noqa: SIM905 (a list of words reads best as words)
    "Amelia Ava Beatriz Chloe Clara Daniel Elena Emma Farah Grace Hana Ines Isla Jonas "
    "Julia Karim Leila Lucas Maya Mei Nadia Noah Olga Omar Priya Rosa Sofia Tomas Vera "
    "Yusuf Zoe"
).split()
LAST = (  # noqa: SIM905 (a list of words reads best as words)
    "Abbott Adeyemi Bauer Bennett Castillo Chen Costa Dubois Eriksen Fischer Garcia Haddad "
    "Hughes Ivanova Jensen Kowalski Larsen Lindqvist Martin Moreau Nakamura Novak Okafor "
    "Olsen Patel Petrov Quinn Rossi Sato Schmidt Silva Tanaka Turner Varga Walsh Weber "
    "Young"
).split()
STATUS_MIX = (
    [PlanStatus.PERFORMED] * 12
    + [PlanStatus.CONSENTED] * 2
    + [PlanStatus.CANCELLED] * 1
    + [PlanStatus.READY] * 2
    + [PlanStatus.DRAFT] * 3
)


def clean_injection(zone: TreatmentZone, position: int) -> dict:
    """Within every documented bound: 0.2 mL, 27 G needle, dermis, retrograde."""
    return {
        "zone": zone,
        "volume_ml": Decimal("0.20"),
        "instrument": "needle",
        "gauge": 27,
        "depth": "dermis",
        "technique": "retrograde",
        "position": position,
    }


def random_injection(rng: random.Random, zone: TreatmentZone, position: int) -> dict:
    cannula = rng.random() < 0.2
    values = {
        "zone": zone,
        "volume_ml": Decimal(rng.choice(("0.10", "0.15", "0.20", "0.25"))),
        "instrument": "cannula" if cannula else "needle",
        "gauge": 25 if cannula else rng.choice((27, 27, 30)),
        "depth": rng.choice(("dermis", "dermis", "subdermis")),
        "technique": "retrograde",
        "position": position,
    }
    if rng.random() < 0.125:  # a deviation the rules report
        kind = rng.randrange(3)
        if kind == 0:
            values["technique"] = "fanning"
        elif kind == 1:
            values["depth"] = "subcutaneous"
        else:
            values["gauge"] = 31 if not cannula else 27
    return values


def log_in(user: User) -> str:
    """A session as django.contrib.auth.login leaves it; returns the session key (the cookie)."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    # The backend a password login goes through (the first one, django-axes, only throttles).
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[-1]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def seed(out: Path) -> None:
    rng = random.Random(7)
    rule_set = RuleSet.current()
    zones = list(TreatmentZone.objects.filter(active=True).order_by("sort_order", "code"))
    today = datetime.date.today()
    with transaction.atomic():
        clinic = Clinic.objects.create(name="Benchmark Clinic", address="1 Load Street")
        surgeon_group = Group.objects.get(name=Role.SURGEON)
        surgeons = []
        for index in range(4):
            user = User(
                username=f"bench-surgeon-{index}",
                first_name=rng.choice(FIRST),
                last_name=rng.choice(LAST),
                clinic=clinic,
            )
            user.set_unusable_password()
            user.save()
            user.groups.add(surgeon_group)
            surgeons.append(user)

        patients = Patient.objects.bulk_create(
            Patient(
                clinic=clinic,
                chart_number=f"B-{index:05d}",
                name=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                date_of_birth=datetime.date(1950, 1, 1)
                + datetime.timedelta(days=rng.randrange(365 * 50)),
                sex=rng.choice(("female", "female", "male", "other")),
                smoker=rng.random() < 0.15,
                on_anticoagulants=rng.random() < 0.05,
            )
            for index in range(PATIENTS)
        )

        # The named plans first (sizes fixed), then the rest of the clinic's history.
        sizes = [40] * CONNECTIONS + [5, 40]
        sizes += [rng.randint(5, 40) for _ in range(PATIENTS * PLANS_PER_PATIENT - len(sizes))]
        plans = TreatmentPlan.objects.bulk_create(
            TreatmentPlan(
                patient=patients[index // PLANS_PER_PATIENT],
                surgeon=surgeons[index % len(surgeons)],
                planned_for=today - datetime.timedelta(days=rng.randrange(-30, 700)),
                goal=rng.choice(("rejuvenation", "rejuvenation", "scar")),
                indications=rng.choice((["fine_lines"], ["skin_quality"], ["scars"])),
                combination=rng.choice(("none", "prf", "prp")),
                harvest_volume_ml=Decimal("20"),
                rule_set=rule_set,
                status=PlanStatus.DRAFT,
            )
            for index in range(len(sizes))
        )
        clean = set(range(CONNECTIONS + 2))  # the named plans have no finding
        injections = []
        for index, (plan, size) in enumerate(zip(plans, sizes, strict=True)):
            start = rng.randrange(len(zones))
            for position in range(size):
                zone = zones[(start + position) % len(zones)]
                values = (
                    clean_injection(zone, position)
                    if index in clean
                    else random_injection(rng, zone, position)
                )
                injections.append(PlannedInjection(plan=plan, **values))
        PlannedInjection.objects.bulk_create(injections, batch_size=5000)

        # Statuses last: a consented plan's injections may be frozen by the database.
        named = len(clean)
        by_status: dict[str, list[int]] = {}
        for plan in plans[named:]:
            by_status.setdefault(rng.choice(STATUS_MIX), []).append(plan.pk)
        by_status.setdefault(PlanStatus.READY, []).append(plans[CONNECTIONS + 1].pk)
        for status, ids in by_status.items():
            if status != PlanStatus.DRAFT:
                TreatmentPlan.objects.filter(pk__in=ids).update(status=status)

        staff = User(username="bench-staff", first_name="Sam", last_name="Okafor", clinic=clinic)
        staff.set_unusable_password()
        staff.save()
        staff.groups.add(Group.objects.get(name=Role.STAFF))
        # Surgeons plan; staff print the consent sheet (surgeons lack print_consent).
        sessions = [log_in(surgeons[index % len(surgeons)]) for index in range(CONNECTIONS)]
        staff_sessions = [log_in(staff) for _ in range(CONNECTIONS)]

    first_injections = {
        plan_id: (injection_id, code)
        for plan_id, injection_id, code in PlannedInjection.objects.filter(
            plan__in=plans[:CONNECTIONS], position=0
        ).values_list("plan_id", "pk", "zone__code")
    }
    surnames = sorted({patient.name.split()[-1] for patient in patients})
    queries = [name[:4].lower() for name in rng.sample(surnames, 12)] + ["B-001", "B-0042"]
    result = {
        "sessions": sessions,
        "staff_sessions": staff_sessions,
        # Any 32-character secret will do: Django compares the cookie with the header.
        "csrf": secrets.token_hex(16),
        "plans_40": [
            {
                "plan": plan.pk,
                "injection": first_injections[plan.pk][0],
                "zone": first_injections[plan.pk][1],
                "version": plan.version,
            }
            for plan in plans[:CONNECTIONS]
        ],
        "plan_5": plans[CONNECTIONS].pk,
        "pdf_plan": plans[CONNECTIONS + 1].pk,
        "queries": queries,
        "counts": {
            "patients": Patient.objects.filter(clinic=clinic).count(),
            "plans": TreatmentPlan.objects.filter(patient__clinic=clinic).count(),
            "injections": PlannedInjection.objects.filter(plan__patient__clinic=clinic).count(),
        },
    }
    out.write_text(json.dumps(result))


if __name__ == "__main__":
    seed(Path(sys.argv[1]))

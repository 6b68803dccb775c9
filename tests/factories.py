"""factory_boy factories for the planner's models, in one place.

Zones come from the loaded fixture (``TreatmentZone.objects.get(code=...)``), never invented, so
a test plans on the same zones a clinic does.
"""

import datetime
from decimal import Decimal

import factory
from django.contrib.auth.models import Group

from planner.choices import Depth, Instrument, PlanStatus, Sex, Technique
from planner.models import Clinic, Patient, PlannedInjection, TreatmentPlan, TreatmentZone, User

PASSWORD = "correct-horse-battery-staple"


class ClinicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Clinic

    name = factory.Sequence(lambda n: f"Clinic {n}")


class UserFactory(factory.django.DjangoModelFactory):
    """A clinic member; ``role="surgeon"`` (or staff/admin) adds the matching group."""

    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"Member {n}")
    clinic = factory.SubFactory(ClinicFactory)
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def role(self, create: bool, extracted: str | None, **kwargs) -> None:
        if create and extracted:
            # The groups come from the data migration; a missing one is a test failure.
            self.groups.add(Group.objects.get(name=extracted))
            # The new role moved the access version in the database; keep this copy in step,
            # as a user read at sign-in would be.
            self.refresh_from_db(fields=["access_version"])


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    clinic = factory.SubFactory(ClinicFactory)
    chart_number = factory.Sequence(lambda n: f"CH-{n:05d}")
    name = factory.Sequence(lambda n: f"Patient Number{n}")
    date_of_birth = datetime.date(1975, 6, 15)
    sex = Sex.FEMALE


class TreatmentPlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TreatmentPlan

    patient = factory.SubFactory(PatientFactory)
    surgeon = factory.SubFactory(
        UserFactory, clinic=factory.SelfAttribute("..patient.clinic"), role="surgeon"
    )
    planned_for = factory.LazyFunction(lambda: datetime.date.today() + datetime.timedelta(days=7))
    indications = factory.LazyFunction(lambda: ["fine_lines"])
    harvest_volume_ml = Decimal("20")
    status = PlanStatus.DRAFT


class PlannedInjectionFactory(factory.django.DjangoModelFactory):
    """An injection inside every documented bound: 0.3 mL, 27 G needle, dermis, retrograde."""

    class Meta:
        model = PlannedInjection
        exclude = ("zone_code",)

    plan = factory.SubFactory(TreatmentPlanFactory)
    zone_code = "CHEEK_L"
    zone = factory.LazyAttribute(lambda o: TreatmentZone.objects.get(code=o.zone_code))
    volume_ml = Decimal("0.30")
    instrument = Instrument.NEEDLE
    gauge = 27
    depth = Depth.DERMIS
    technique = Technique.RETROGRADE
    position = factory.Sequence(lambda n: n)

"""Shared fixtures: the reference data, three standing users (plus the clinic admin) and a plan.

Django is imported inside the fixtures, never at module level: the pure rules tests
(tests/test_rules*.py) also run under ``pytest -p no:django``, without settings or a database.
"""

import pytest

# Chromium, the demo live server and a browser context with screenshots on failure.
pytest_plugins = ["tests.browser_support"]

DB_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
}


def _uses_database(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker("django_db") is not None or bool(
        DB_FIXTURES & set(request.fixturenames)
    )


@pytest.fixture(autouse=True)
def _fresh_reference_snapshot():
    """Each test starts without cached rule sets: ids repeat across rolled-back tests."""
    from django.conf import settings

    if not settings.configured:  # pytest -p no:django: nothing Django-side to reset
        yield
        return
    from planner import engine

    engine._snapshot.cache_clear()
    engine._rule_set.cache_clear()
    yield
    engine._snapshot.cache_clear()
    engine._rule_set.cache_clear()


@pytest.fixture(autouse=True)
def _reference_data(request: pytest.FixtureRequest) -> None:
    """Zones and reference values for every test that touches the database, and only those."""
    if not _uses_database(request):
        return
    request.getfixturevalue("reference_data")


@pytest.fixture
def reference_data(db) -> None:
    from django.core.management import call_command

    call_command("load_reference_data", verbosity=0, stdout=_Discard())


class _Discard:
    def write(self, *args, **kwargs) -> None:
        pass

    def flush(self) -> None:
        pass


# --- Clinics and the standing users -----------------------------------------------------------


@pytest.fixture
def clinic(db):
    from tests.factories import ClinicFactory

    return ClinicFactory(name="Clinic A")


@pytest.fixture
def other_clinic(db):
    from tests.factories import ClinicFactory

    return ClinicFactory(name="Clinic B")


@pytest.fixture
def surgeon(clinic):
    """The owner: a surgeon of clinic A."""
    from tests.factories import UserFactory

    return UserFactory(username="owner", clinic=clinic, role="surgeon")


@pytest.fixture
def colleague(clinic):
    """Clinic staff of the same clinic."""
    from tests.factories import UserFactory

    return UserFactory(username="colleague", clinic=clinic, role="staff")


@pytest.fixture
def clinic_admin(clinic):
    """The clinic admin of clinic A (reference data in Django admin)."""
    from tests.factories import UserFactory

    return UserFactory(username="clinic-admin", clinic=clinic, role="admin", is_staff=True)


@pytest.fixture
def outsider(other_clinic):
    """A surgeon of clinic B: sees nothing of clinic A."""
    from tests.factories import UserFactory

    return UserFactory(username="outsider", clinic=other_clinic, role="surgeon")


def _client_for(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def surgeon_client(surgeon):
    return _client_for(surgeon)


@pytest.fixture
def colleague_client(colleague):
    return _client_for(colleague)


@pytest.fixture
def admin_role_client(clinic_admin):
    return _client_for(clinic_admin)


@pytest.fixture
def outsider_client(outsider):
    return _client_for(outsider)


# --- Clinical data ------------------------------------------------------------------------------


@pytest.fixture
def patient(clinic):
    from tests.factories import PatientFactory

    return PatientFactory(clinic=clinic, chart_number="A-0001", name="Alice Example")


@pytest.fixture
def plan(patient, surgeon):
    """A draft plan of a clinic-A patient with two documented injections."""
    from decimal import Decimal

    from planner.models import RuleSet
    from tests.factories import PlannedInjectionFactory, TreatmentPlanFactory

    plan = TreatmentPlanFactory(patient=patient, surgeon=surgeon, rule_set=RuleSet.current())
    PlannedInjectionFactory(plan=plan, zone_code="CHEEK_L", volume_ml=Decimal("0.30"), position=0)
    PlannedInjectionFactory(plan=plan, zone_code="UPPER_LIP", volume_ml=Decimal("0.20"), position=1)
    return plan

"""The shipped data: zones, reference values, roles, the seeding commands and the migrations."""

import io
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from planner.choices import ReferenceKey, Region, Role
from planner.management.commands.seed_demo import DEMO_USERS
from planner.models import (
    Clinic,
    Patient,
    PlannedInjection,
    ReferenceValue,
    RuleSet,
    TreatmentPlan,
    TreatmentZone,
    User,
)
from planner.roles import ROLE_PERMISSIONS

pytestmark = pytest.mark.django_db

# DESIGN.md, "Treatment zones": the codes are a contract with check_plan's JSON input.
DESIGN_ZONE_CODES = {
    "FOREHEAD", "GLABELLA", "TEMPLE_L", "TEMPLE_R", "LOWER_EYELID_L", "LOWER_EYELID_R",
    "CROWS_FEET_L", "CROWS_FEET_R", "CHEEK_L", "CHEEK_R", "NASOLABIAL_L", "NASOLABIAL_R",
    "UPPER_LIP", "LOWER_LIP", "MARIONETTE_L", "MARIONETTE_R", "CHIN", "JAWLINE_L", "JAWLINE_R",
    "NECK", "SCALP",
}  # fmt: skip
PERIORAL_CODES = {"UPPER_LIP", "LOWER_LIP", "MARIONETTE_L", "MARIONETTE_R"}


def table_counts() -> dict[str, int]:
    models = (Clinic, User, Patient, TreatmentPlan, PlannedInjection, TreatmentZone, RuleSet,
              ReferenceValue)  # fmt: skip
    return {model.__name__: model.objects.count() for model in models}


# --- Treatment zones ------------------------------------------------------------------------


def test_the_fixture_holds_every_zone_code_of_the_design():
    assert set(TreatmentZone.objects.values_list("code", flat=True)) == DESIGN_ZONE_CODES


def test_exactly_the_lips_and_marionette_lines_are_perioral():
    perioral = TreatmentZone.objects.filter(region=Region.PERIORAL)
    assert set(perioral.values_list("code", flat=True)) == PERIORAL_CODES
    assert all(zone.is_perioral for zone in perioral)


def test_every_zone_has_a_name_a_shape_and_a_matching_laterality():
    for zone in TreatmentZone.objects.all():
        assert zone.name, zone.code
        assert zone.shape, zone.code
        assert zone.active, zone.code
        expected = {"_L": "left", "_R": "right"}.get(zone.code[-2:], "midline")
        assert zone.laterality == expected, zone.code


# --- Reference values -----------------------------------------------------------------------


def test_the_first_rule_set_holds_every_reference_key():
    rule_set = RuleSet.current()
    assert rule_set.version == 1
    assert set(rule_set.values.values_list("key", flat=True)) == set(ReferenceKey.values)


def test_every_reference_value_carries_its_sources_and_citation():
    for value in ReferenceValue.objects.all():
        assert value.source_numbers, value.key
        assert all(1 <= number <= 6 for number in value.source_numbers), value.key
        assert value.citation.strip(), value.key


@pytest.mark.parametrize(
    ("key", "minimum", "maximum", "unit", "sources"),
    [
        ("zone_volume_ml", "0.2", "0.5", "mL", (5,)),
        ("needle_gauge", "27", "30", "G", (5, 3)),
        ("cannula_gauge", "25", "25", "G", (5, 3)),
    ],
)
def test_the_ranges_are_the_clinical_summarys(key, minimum, maximum, unit, sources):
    value = ReferenceValue.objects.get(rule_set=RuleSet.current(), key=key)
    assert (value.minimum, value.maximum) == (Decimal(minimum), Decimal(maximum))
    assert value.unit == unit
    assert value.source_numbers == sources


def test_the_documented_depths_are_the_dermis_and_immediate_subdermis():
    value = ReferenceValue.objects.get(rule_set=RuleSet.current(), key="allowed_depths")
    assert {"dermis", "subdermis"} <= value.code_set
    assert not {"subcutaneous", "intramuscular", "supraperiosteal"} & value.code_set


# --- Roles ------------------------------------------------------------------------------------


def test_the_three_roles_exist_with_exactly_their_permissions():
    assert set(Group.objects.values_list("name", flat=True)) >= set(Role.values)
    for role, codenames in ROLE_PERMISSIONS.items():
        granted = Group.objects.get(name=role).permissions.values_list("codename", flat=True)
        assert sorted(granted) == sorted(codenames), role


def test_only_the_surgeon_role_may_change_plans_and_only_staff_record_consent():
    def members_with(codename: str) -> set[str]:
        return set(
            Group.objects.filter(permissions__codename=codename).values_list("name", flat=True)
        )

    assert members_with("change_treatmentplan") == {Role.SURGEON}
    assert members_with("record_consent") == {Role.STAFF}
    assert members_with("change_referencevalue") == {Role.ADMIN}


# --- Commands ---------------------------------------------------------------------------------


def test_load_reference_data_is_idempotent():
    before = table_counts()
    out = io.StringIO()
    call_command("load_reference_data", stdout=out)
    call_command("load_reference_data", stdout=out)
    assert table_counts() == before
    assert "already present" in out.getvalue()


def test_load_reference_data_keeps_an_admins_change_to_a_zone():
    TreatmentZone.objects.filter(code="CHIN").update(name="Chin and mentum")
    call_command("load_reference_data", stdout=io.StringIO())
    assert TreatmentZone.objects.get(code="CHIN").name == "Chin and mentum"


def test_load_reference_data_fills_an_empty_database():
    ReferenceValue.objects.all().delete()
    RuleSet.objects.all().delete()
    TreatmentZone.objects.all().delete()
    out = io.StringIO()
    call_command("load_reference_data", stdout=out)
    assert TreatmentZone.objects.count() == len(DESIGN_ZONE_CODES)
    assert ReferenceValue.objects.count() == len(ReferenceKey.values)
    assert "treatment_zones: loaded" in out.getvalue()


def test_seed_demo_refuses_to_run_with_debug_off():
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo", stdout=io.StringIO())
    assert not User.objects.exists()


@override_settings(DEBUG=True)
def test_seed_demo_is_idempotent_and_prints_the_logins():
    first = io.StringIO()
    call_command("seed_demo", stdout=first)
    after_first = table_counts()
    second = io.StringIO()
    call_command("seed_demo", stdout=second)

    assert table_counts() == after_first
    assert after_first["User"] == len(DEMO_USERS)
    assert after_first["Patient"] == 6
    assert after_first["TreatmentPlan"] == 6
    for username, password, role, *_rest in DEMO_USERS:
        assert username in second.getvalue()
        assert password in second.getvalue()
        assert User.objects.get(username=username).check_password(password)
        assert User.objects.get(username=username).has_role(role)


@override_settings(DEBUG=True)
def test_seed_demo_plans_cover_every_stage_on_the_current_rule_set():
    call_command("seed_demo", stdout=io.StringIO())
    stages = dict(TreatmentPlan.objects.values_list("patient__chart_number", "status"))
    assert stages == {
        "DEMO-0001": "draft",
        "DEMO-0002": "draft",
        "DEMO-0003": "draft",
        "DEMO-0004": "ready",
        "DEMO-0005": "consented",
        "DEMO-0006": "performed",
    }
    for plan in TreatmentPlan.objects.all():
        assert plan.rule_set == RuleSet.current()
        assert plan.injections.exists()
    consented = TreatmentPlan.objects.get(patient__chart_number="DEMO-0005")
    assert consented.consent_record.pdf.startswith(b"%PDF")
    performed = TreatmentPlan.objects.get(patient__chart_number="DEMO-0006")
    assert performed.follow_ups.exists()


def test_the_migrations_match_the_models():
    # --check exits non-zero (SystemExit) when a model change has no migration.
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()

"""The session's copy of a user's permissions (planner/security.py): used while current, never
after a change of role or of a role's permissions, and read again after
PERMISSIONS_RECHECK_SECONDS whatever happened."""

import time

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from planner.choices import Role
from planner.models import TreatmentPlan, User
from planner.security import PERMISSIONS_SESSION_KEY
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ADD_PLAN = "add_treatmentplan"  # surgeons have it, clinic staff do not


def permission_reads(client, url: str) -> tuple[int, int]:
    """The status of a GET of ``url`` and how many of its queries read permissions."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    return response.status_code, sum("auth_permission" in q["sql"] for q in captured)


def create_plan(client, patient) -> int:
    """POSTs the surgeon-only "new plan" action: 302 when allowed, 403 when not."""
    return client.post(reverse("plan_create", args=[patient.pk])).status_code


def saved_copy(client) -> dict:
    return client.session[PERMISSIONS_SESSION_KEY]


def age_copy(client, seconds: int) -> None:
    session = client.session
    session[PERMISSIONS_SESSION_KEY]["at"] -= seconds
    session.save()


def fresh(user) -> User:
    return User.objects.get(pk=user.pk)


def test_signing_in_puts_the_users_permissions_in_the_session(surgeon, surgeon_client):
    copy = saved_copy(surgeon_client)
    assert copy["user"] == surgeon.pk
    assert copy["version"] == fresh(surgeon).access_version
    assert copy["superuser"] is False
    assert f"planner.{ADD_PLAN}" in copy["permissions"]
    assert "planner.record_consent" not in copy["permissions"]
    assert abs(copy["at"] - time.time()) < 60


def test_a_signed_in_request_reads_no_permissions_while_the_copy_is_current(surgeon_client):
    assert permission_reads(surgeon_client, reverse("patient_list")) == (200, 0)


def test_a_new_role_counts_from_the_next_request(surgeon, surgeon_client, patient):
    assert create_plan(surgeon_client, patient) == 302
    surgeon.groups.set([Group.objects.get(name=Role.STAFF)])
    assert create_plan(surgeon_client, patient) == 403


def test_a_role_given_through_the_group_counts_from_the_next_request(
    colleague, colleague_client, patient
):
    assert create_plan(colleague_client, patient) == 403
    Group.objects.get(name=Role.SURGEON).user_set.add(colleague)
    assert create_plan(colleague_client, patient) == 302


def test_a_role_changed_by_the_clinic_admin_counts_from_the_users_next_request(
    admin_role_client, colleague, colleague_client, patient
):
    assert create_plan(colleague_client, patient) == 403
    surgeon_role = Group.objects.get(name=Role.SURGEON)
    response = admin_role_client.post(
        reverse("admin:planner_user_change", args=[colleague.pk]),
        {"username": colleague.username, "is_active": "on", "groups": [str(surgeon_role.pk)]},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert create_plan(colleague_client, patient) == 302


def test_a_permission_taken_from_a_role_counts_from_the_next_request(surgeon_client, patient):
    assert create_plan(surgeon_client, patient) == 302
    surgeon_role = Group.objects.get(name=Role.SURGEON)
    surgeon_role.permissions.remove(Permission.objects.get(codename=ADD_PLAN))
    assert create_plan(surgeon_client, patient) == 403


def test_a_permission_given_to_the_user_counts_from_the_next_request(
    colleague, colleague_client, patient
):
    assert create_plan(colleague_client, patient) == 403
    colleague.user_permissions.add(Permission.objects.get(codename=ADD_PLAN))
    assert create_plan(colleague_client, patient) == 302
    assert TreatmentPlan.objects.filter(patient=patient, surgeon=colleague).exists()


def test_the_permissions_are_read_again_after_the_recheck_interval(
    settings, surgeon_client, surgeon
):
    age_copy(surgeon_client, settings.PERMISSIONS_RECHECK_SECONDS)
    assert permission_reads(surgeon_client, reverse("patient_list")) == (200, 1)
    # ... and the new copy serves the next request.
    assert abs(saved_copy(surgeon_client)["at"] - time.time()) < 60
    assert permission_reads(surgeon_client, reverse("patient_list")) == (200, 0)


def test_a_change_made_behind_the_apps_back_counts_after_the_recheck_interval(
    settings, surgeon, surgeon_client, patient
):
    # Rows deleted directly send no signal: the copy stands until it is due to be read again.
    User.groups.through.objects.filter(user=surgeon).delete()
    assert create_plan(surgeon_client, patient) == 302
    age_copy(surgeon_client, settings.PERMISSIONS_RECHECK_SECONDS)
    assert create_plan(surgeon_client, patient) == 403


def test_a_superuser_flag_taken_away_without_signals_is_not_served_from_the_copy(clinic):
    user = UserFactory(clinic=clinic, role=Role.STAFF, is_superuser=True)
    client = Client()
    client.force_login(user)
    assert saved_copy(client)["superuser"] is True
    assert f"planner.{ADD_PLAN}" in saved_copy(client)["permissions"]
    User.objects.filter(pk=user.pk).update(is_superuser=False)
    assert permission_reads(client, reverse("patient_list")) == (200, 1)
    assert saved_copy(client)["superuser"] is False
    assert f"planner.{ADD_PLAN}" not in saved_copy(client)["permissions"]


def test_saving_a_user_read_before_a_change_of_role_keeps_the_new_version(surgeon, staff_role):
    stale = fresh(surgeon)
    surgeon.groups.add(staff_role)
    stale.first_name = "Renamed"
    stale.save()
    assert fresh(surgeon).access_version == stale.access_version + 1
    assert fresh(surgeon).first_name == "Renamed"


@pytest.mark.parametrize(
    "broken",
    [
        "not a dict",
        {"user": 1},
        {"user": None, "version": 0, "superuser": False, "at": 0, "permissions": []},
        {"version": 0, "superuser": False, "at": "now", "permissions": []},
        {"version": 0, "superuser": False, "at": 0, "permissions": "planner.add_patient"},
        {"version": 0, "superuser": False, "at": 10**12, "permissions": []},  # from the future
    ],
)
def test_a_copy_that_is_not_one_of_ours_is_read_again(surgeon, surgeon_client, broken):
    session = surgeon_client.session
    if isinstance(broken, dict) and "user" not in broken:
        broken = {**broken, "user": surgeon.pk}
    session[PERMISSIONS_SESSION_KEY] = broken
    session.save()
    assert permission_reads(surgeon_client, reverse("patient_list")) == (200, 1)
    assert saved_copy(surgeon_client)["user"] == surgeon.pk


def test_another_users_copy_grants_nothing(surgeon, colleague_client, patient):
    """A staff session holding a surgeon's copy (it cannot happen through the app) is read
    again, and the staff member stays staff."""
    session = colleague_client.session
    session[PERMISSIONS_SESSION_KEY] = {**session[PERMISSIONS_SESSION_KEY], "user": surgeon.pk}
    session[PERMISSIONS_SESSION_KEY]["permissions"].append(f"planner.{ADD_PLAN}")
    session.save()
    assert create_plan(colleague_client, patient) == 403


def test_a_deactivated_user_is_signed_out_whatever_the_session_keeps(surgeon, surgeon_client):
    User.objects.filter(pk=surgeon.pk).update(is_active=False)
    response = surgeon_client.get(reverse("patient_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_signing_out_leaves_no_permissions_in_the_session(surgeon_client):
    surgeon_client.post(reverse("logout"))
    assert PERMISSIONS_SESSION_KEY not in surgeon_client.session


def test_anonymous_requests_keep_nothing(client):
    client.get(reverse("login"))
    assert PERMISSIONS_SESSION_KEY not in client.session


# --- What moves the access version ---------------------------------------------------------------


def moved(user, change) -> bool:
    before = fresh(user).access_version
    change()
    return fresh(user).access_version > before


@pytest.fixture
def staff_role():
    return Group.objects.get(name=Role.STAFF)


@pytest.fixture
def add_plan():
    return Permission.objects.get(codename=ADD_PLAN)


def test_each_change_of_roles_moves_the_version_of_the_users_it_reaches(
    surgeon, colleague, staff_role
):
    bystander = UserFactory(role=Role.ADMIN)
    surgeon_role = Group.objects.get(name=Role.SURGEON)
    changes = [
        ("user.groups.add", surgeon, lambda: surgeon.groups.add(staff_role)),
        ("user.groups.remove", surgeon, lambda: surgeon.groups.remove(staff_role)),
        ("user.groups.clear", surgeon, surgeon.groups.clear),
        ("group.user_set.add", surgeon, lambda: surgeon_role.user_set.add(surgeon)),
        ("group.user_set.remove", colleague, lambda: staff_role.user_set.remove(colleague)),
    ]
    for name, reached, change in changes:
        assert moved(reached, change), name
    staff_role.user_set.add(colleague)
    assert moved(colleague, staff_role.user_set.clear)
    assert not moved(bystander, lambda: surgeon.groups.add(staff_role))


def test_each_change_of_a_roles_permissions_moves_the_version_of_its_members(
    surgeon, colleague, staff_role, add_plan
):
    assert moved(colleague, lambda: staff_role.permissions.add(add_plan))
    assert moved(colleague, lambda: staff_role.permissions.remove(add_plan))
    assert moved(colleague, lambda: add_plan.group_set.add(staff_role))
    assert moved(colleague, lambda: add_plan.group_set.remove(staff_role))
    assert moved(surgeon, add_plan.group_set.clear)
    assert not moved(surgeon, lambda: staff_role.permissions.add(add_plan))
    assert moved(colleague, staff_role.permissions.clear)


def test_each_change_of_a_users_own_permissions_moves_their_version(colleague, add_plan):
    assert moved(colleague, lambda: colleague.user_permissions.add(add_plan))
    assert moved(colleague, lambda: colleague.user_permissions.remove(add_plan))
    assert moved(colleague, lambda: add_plan.user_set.add(colleague))
    assert moved(colleague, add_plan.user_set.clear)
    colleague.user_permissions.add(add_plan)
    assert moved(colleague, colleague.user_permissions.clear)


def test_adding_what_is_already_there_moves_nothing(surgeon):
    surgeon_role = Group.objects.get(name=Role.SURGEON)
    assert not moved(surgeon, lambda: surgeon.groups.add(surgeon_role))


def test_deleting_a_role_or_a_permission_moves_the_version_of_who_had_it(colleague, staff_role):
    assert moved(colleague, staff_role.delete)
    permission = Permission.objects.get(codename="view_patient")
    surgeon = UserFactory(role=Role.SURGEON)
    assert moved(surgeon, permission.delete)

"""Clinic admins manage the users of their own clinic only, with the three roles only; only
superusers span clinics. Every user change is in the audit trail (without passwords)."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from planner.choices import AuditAction
from planner.models import AuditEntry, Clinic, User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a long and unusual passphrase 42"


@pytest.fixture
def superuser_client(db):
    root = UserFactory(username="root", clinic=None, is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(root)
    return client


@pytest.fixture
def other_admin(other_clinic):
    return UserFactory(username="admin-b", clinic=other_clinic, role="admin", is_staff=True)


def _listed(response) -> set[str]:
    return {user.username for user in response.context["cl"].result_list}


def _role_ids(*names: str) -> list[str]:
    return [str(Group.objects.get(name=name).pk) for name in names]


def _add_user(client: Client, username: str, **extra):
    data = {
        "username": username,
        "usable_password": "true",
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
        "first_name": "New",
        "last_name": "Member",
        "email": "",
        **extra,
    }
    return client.post(reverse("admin:planner_user_add"), data)


def test_a_clinic_admin_lists_only_their_clinics_users(
    admin_role_client, surgeon, colleague, outsider, other_admin, superuser_client
):
    response = admin_role_client.get(reverse("admin:planner_user_changelist"))
    assert _listed(response) == {"owner", "colleague", "clinic-admin"}
    assert "outsider" not in response.content.decode()


def test_a_superuser_lists_everyone(superuser_client, surgeon, outsider):
    response = superuser_client.get(reverse("admin:planner_user_changelist"))
    assert {"owner", "outsider", "root"} <= _listed(response)


def test_another_clinics_user_cannot_be_opened_or_changed(admin_role_client, outsider):
    change = reverse("admin:planner_user_change", args=[outsider.pk])
    password = reverse("admin:auth_user_password_change", args=[outsider.pk])
    # The admin answers an object outside its queryset as "does not exist": a redirect to the
    # index (the same as for an id that was never used), never the user's data.
    assert admin_role_client.get(change)["Location"] == reverse("admin:index")
    assert admin_role_client.get(password).status_code == 404
    assert (
        admin_role_client.post(password, {"password1": "x" * 20, "password2": "x" * 20}).status_code
        == 404
    )
    response = admin_role_client.post(
        reverse("admin:planner_user_change", args=[outsider.pk]),
        {"username": "hijacked", "is_active": ""},
    )
    assert response.status_code in (302, 404)
    outsider.refresh_from_db()
    assert (outsider.username, outsider.is_active) == ("outsider", True)


def test_an_added_user_joins_the_admins_clinic_with_a_role(admin_role_client, clinic):
    response = _add_user(admin_role_client, "new-surgeon", groups=_role_ids("surgeon"))
    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(username="new-surgeon")
    assert user.clinic == clinic
    assert list(user.groups.values_list("name", flat=True)) == ["surgeon"]
    assert (user.is_superuser, user.is_staff) == (False, False)
    assert user.check_password(NEW_PASSWORD)


def test_a_clinic_admin_cannot_place_a_user_in_another_clinic(
    admin_role_client, clinic, other_clinic
):
    _add_user(admin_role_client, "sneaky", clinic=other_clinic.pk, groups=_role_ids("staff"))
    assert User.objects.get(username="sneaky").clinic == clinic


def test_a_clinic_admin_cannot_make_a_superuser(admin_role_client, colleague):
    _add_user(admin_role_client, "wannabe-root", is_superuser="on", groups=_role_ids("staff"))
    assert not User.objects.get(username="wannabe-root").is_superuser
    admin_role_client.post(
        reverse("admin:planner_user_change", args=[colleague.pk]),
        {
            "username": colleague.username,
            "is_active": "on",
            "is_superuser": "on",
            "is_staff": "on",
            "groups": _role_ids("staff"),
            "user_permissions": [],
        },
    )
    colleague.refresh_from_db()
    assert (colleague.is_superuser, colleague.is_staff) == (False, False)


def test_only_the_three_roles_can_be_given(admin_role_client):
    powerful = Group.objects.create(name="powerful")
    response = _add_user(admin_role_client, "grouped", groups=[str(powerful.pk)])
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not User.objects.filter(username="grouped").exists()
    page = admin_role_client.get(reverse("admin:planner_user_add")).content.decode()
    assert "powerful" not in page
    assert 'name="user_permissions"' not in page


def test_the_admin_role_gives_admin_access_and_removing_it_takes_it_away(
    admin_role_client, colleague
):
    url = reverse("admin:planner_user_change", args=[colleague.pk])
    base = {"username": colleague.username, "is_active": "on", "first_name": "", "last_name": ""}
    response = admin_role_client.post(url, {**base, "groups": _role_ids("staff", "admin")})
    assert response.status_code == 302, response.content.decode()[:2000]
    colleague.refresh_from_db()
    assert colleague.is_staff
    admin_role_client.post(url, {**base, "groups": _role_ids("staff")})
    colleague.refresh_from_db()
    assert not colleague.is_staff


def test_a_user_can_be_deactivated_but_not_deleted(admin_role_client, colleague):
    delete = reverse("admin:planner_user_delete", args=[colleague.pk])
    assert admin_role_client.post(delete, {"post": "yes"}).status_code == 403
    url = reverse("admin:planner_user_change", args=[colleague.pk])
    admin_role_client.post(
        url, {"username": colleague.username, "groups": _role_ids("staff")}
    )  # is_active left out: unticked
    colleague.refresh_from_db()
    assert not colleague.is_active


def test_user_changes_are_audited_without_passwords(admin_role_client, clinic_admin):
    _add_user(admin_role_client, "audited", groups=_role_ids("surgeon"))
    entry = AuditEntry.objects.get(action=AuditAction.CREATE, object_type="user")
    assert entry.actor == clinic_admin
    assert entry.changes["user"] == "audited"
    assert entry.changes["roles"] == ["surgeon"]
    assert all("password" not in field for field in entry.changes["fields"])
    assert NEW_PASSWORD not in str(entry.changes)


def test_a_superuser_can_place_users_in_any_clinic(superuser_client, other_clinic):
    response = _add_user(
        superuser_client, "placed", clinic=other_clinic.pk, groups=_role_ids("surgeon")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert User.objects.get(username="placed").clinic == other_clinic


def test_clinic_admins_see_only_their_own_clinic(admin_role_client, clinic, other_clinic):
    response = admin_role_client.get(reverse("admin:planner_clinic_changelist"))
    assert list(response.context["cl"].result_list) == [clinic]
    url = reverse("admin:planner_clinic_change", args=[clinic.pk])
    assert admin_role_client.post(url, {"name": "Renamed"}).status_code == 403
    assert Clinic.objects.get(pk=clinic.pk).name == "Clinic A"


@pytest.mark.parametrize("fixture", ["surgeon_client", "colleague_client", "outsider_client"])
def test_users_without_the_admin_role_cannot_manage_users(request, fixture):
    client = request.getfixturevalue(fixture)
    response = _add_user(client, "not-allowed")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert not User.objects.filter(username="not-allowed").exists()

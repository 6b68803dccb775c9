"""The permission backend: Django's answers (a user's own and their groups' permissions), with
one query instead of two."""

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser, Group, Permission

from planner.choices import Role
from planner.security import PermissionBackend
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _fresh(user):
    return type(user).objects.get(pk=user.pk)


@pytest.mark.parametrize("role", [Role.SURGEON, Role.STAFF, Role.ADMIN])
def test_it_answers_as_djangos_model_backend_for_every_role(role):
    user = UserFactory(role=role)
    own = Permission.objects.get(codename="view_auditentry")
    user.user_permissions.add(own)
    ours = PermissionBackend().get_all_permissions(_fresh(user))
    assert ours == ModelBackend().get_all_permissions(_fresh(user))
    assert "planner.view_auditentry" in ours
    assert ours >= {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Group.objects.get(name=role).permissions.all()
    }


def test_it_reads_every_permission_in_one_query(django_assert_num_queries, surgeon):
    user = _fresh(surgeon)
    with django_assert_num_queries(1):
        assert user.has_perm("planner.change_treatmentplan")
        assert not user.has_perm("planner.delete_auditentry")
        assert user.has_perms(["planner.view_treatmentplan", "planner.add_treatmentplan"])


def test_a_superuser_has_every_permission():
    user = _fresh(UserFactory(is_superuser=True))
    assert PermissionBackend().get_all_permissions(user) == {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Permission.objects.select_related("content_type")
    }


def test_inactive_and_anonymous_users_have_none(surgeon):
    surgeon.is_active = False
    surgeon.save()
    assert PermissionBackend().get_all_permissions(_fresh(surgeon)) == set()
    assert PermissionBackend().get_all_permissions(AnonymousUser()) == set()


def test_object_permissions_are_not_granted(surgeon, plan):
    assert PermissionBackend().get_all_permissions(_fresh(surgeon), obj=plan) == set()

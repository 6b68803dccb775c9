"""Reference data in Django admin: every change is a new rule-set version with who, when and
why; old versions are read-only; bad values get messages that name the fix; zone edits need a
reason and are audited; draft plans notice a new version, consented plans keep theirs."""

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from planner import engine, reference
from planner.access import get_plan_for_user
from planner.choices import AuditAction, PlanStatus, ReferenceKey
from planner.models import (
    AuditEntry,
    PlannedInjection,
    ReferenceValue,
    RuleSet,
    TreatmentPlan,
    TreatmentZone,
)
from planner.selectors import builder_state
from tests.factories import PlannedInjectionFactory, TreatmentPlanFactory, UserFactory

pytestmark = pytest.mark.django_db

KEYS = list(ReferenceKey.values)


def _value(key: str, rule_set: RuleSet | None = None) -> ReferenceValue:
    return ReferenceValue.objects.get(rule_set=rule_set or RuleSet.current(), key=key)


def _value_url(key: str) -> str:
    return reverse("admin:planner_referencevalue_change", args=[_value(key).pk])


def _value_form(key: str, **changes) -> dict:
    value = _value(key)
    data = {
        field: "" if getattr(value, field) is None else str(getattr(value, field))
        for field in reference.VALUE_FIELDS
    }
    return {**data, "reason": "Protocol review 2026", **changes}


def _new_version_form(reason: str = "Protocol review 2026", **changes) -> dict:
    """The rule-set add form as the admin renders it, with ``changes`` {key: {field: value}}."""
    current = {v.key: v for v in RuleSet.current().values.all()}
    total = len(KEYS)
    data = {
        "reason": reason,
        "values-TOTAL_FORMS": str(total),
        "values-INITIAL_FORMS": "0",
        "values-MIN_NUM_FORMS": "0",
        "values-MAX_NUM_FORMS": str(total),
    }
    for index, key in enumerate(KEYS):
        fields = {f: getattr(current[key], f) for f in reference.VALUE_FIELDS}
        fields.update(changes.get(key, {}))
        for field, value in fields.items():
            data[f"values-{index}-{field}"] = "" if value is None else str(value)
        # The admin renders initial values in hidden "initial-" inputs for has_changed().
        for field in reference.VALUE_FIELDS:
            initial = getattr(current[key], field)
            data[f"initial-values-{index}-{field}"] = "" if initial is None else str(initial)
    return data


def _errors(response) -> str:
    return response.content.decode()


# --- editing one value: a new version -------------------------------------------------------


def test_changing_a_value_makes_a_new_version_and_keeps_the_old(admin_role_client, clinic_admin):
    old_set = RuleSet.current()
    response = admin_role_client.post(
        _value_url("zone_volume_ml"), _value_form("zone_volume_ml", maximum="0.6")
    )
    assert response.status_code == 302, _errors(response)
    new_set = RuleSet.current()
    assert new_set.version == old_set.version + 1
    assert (new_set.created_by, new_set.reason) == (clinic_admin, "Protocol review 2026")
    assert _value("zone_volume_ml", new_set).maximum == Decimal("0.6")
    assert _value("zone_volume_ml", old_set).maximum == Decimal("0.5")
    # Every other value was copied unchanged.
    assert new_set.values.count() == len(KEYS)
    for key in KEYS:
        if key != "zone_volume_ml":
            assert reference.value_fields(_value(key, new_set)) == reference.value_fields(
                _value(key, old_set)
            )


def test_save_and_continue_goes_on_to_the_value_in_the_new_version(admin_role_client):
    response = admin_role_client.post(
        _value_url("needle_gauge"), _value_form("needle_gauge", maximum="29", _continue="1")
    )
    assert response.status_code == 302, _errors(response)
    new_value = _value("needle_gauge")
    assert new_value.maximum == 29
    assert response["Location"] == reverse(
        "admin:planner_referencevalue_change", args=[new_value.pk]
    )
    page = admin_role_client.get(response["Location"]).content.decode()
    assert 'name="maximum" value="29' in page  # the new version, editable


def test_a_change_needs_a_reason(admin_role_client):
    before = RuleSet.objects.count()
    response = admin_role_client.post(
        _value_url("zone_volume_ml"), _value_form("zone_volume_ml", maximum="0.6", reason="  ")
    )
    assert response.status_code == 200
    assert "Say why this changes" in _errors(response)
    assert RuleSet.objects.count() == before


def test_an_unchanged_value_makes_no_version(admin_role_client):
    before = RuleSet.objects.count()
    response = admin_role_client.post(_value_url("needle_gauge"), _value_form("needle_gauge"))
    assert "Nothing changed" in _errors(response)
    assert RuleSet.objects.count() == before


@pytest.mark.parametrize(
    ("key", "changes", "message"),
    [
        ("zone_volume_ml", {"minimum": "0.6"}, "The minimum (0.6) is above the maximum (0.5)."),
        ("needle_gauge", {"maximum": "40"}, "40 G is not a needle or cannula gauge; enter 10-34."),
        ("cannula_gauge", {"minimum": "9"}, "9 G is not a needle or cannula gauge; enter 10-34."),
        ("needle_gauge", {"minimum": "27.5"}, "A gauge is a whole number; 27.5 is not."),
        ("zone_volume_ml", {"citation": ""}, "Cite the sentence of the clinical summary"),
        ("zone_volume_ml", {"sources": "ref five"}, "reference numbers, separated by commas"),
        ("zone_volume_ml", {"minimum": "0"}, "A zone volume must be more than 0"),
        ("allowed_depths", {"codes": "dermis,deep_fat"}, "Not a depth code: deep_fat."),
        ("allowed_depths", {"codes": ""}, "List at least one depth code"),
        ("recommended_techniques", {"codes": "retrograde,twirl"}, "Not a technique code: twirl."),
        ("documented_indications", {"codes": "fine_lines,melasma"}, "Not a indication code"),
        ("perioral_forbidden_depths", {"minimum": "1"}, "leave the minimum and maximum empty"),
        ("zone_volume_ml", {"codes": "dermis"}, "This value is a range: leave the codes empty."),
        ("zone_volume_ml", {"citation": "Ref 5 \u202e"}, "text-direction control characters"),
    ],
)
def test_it_refuses_bad_values_with_a_clear_message(admin_role_client, key, changes, message):
    before = RuleSet.objects.count()
    response = admin_role_client.post(_value_url(key), _value_form(key, **changes))
    assert response.status_code == 200
    assert message in response.content.decode().replace("&quot;", '"')
    assert RuleSet.objects.count() == before


def test_codes_are_stored_without_spaces_or_duplicates(admin_role_client):
    admin_role_client.post(
        _value_url("allowed_depths"),
        _value_form("allowed_depths", codes=" dermis , subdermis,dermis "),
    )
    assert _value("allowed_depths").codes == "dermis,subdermis"


def test_old_versions_are_read_only(admin_role_client):
    old = _value("zone_volume_ml")
    admin_role_client.post(_value_url("zone_volume_ml"), _value_form("zone_volume_ml", maximum="1"))
    url = reverse("admin:planner_referencevalue_change", args=[old.pk])
    page = admin_role_client.get(url)
    assert page.status_code == 200
    assert 'name="maximum"' not in page.content.decode()  # shown, not editable
    response = admin_role_client.post(url, {"maximum": "2", "reason": "sneaky"})
    assert response.status_code == 403
    assert _value("zone_volume_ml", old.rule_set).maximum == Decimal("0.5")


def test_rule_sets_cannot_be_changed_or_deleted_in_admin(admin_role_client, admin_user_client):
    current = RuleSet.current()
    for client in (admin_role_client, admin_user_client):
        change = reverse("admin:planner_ruleset_change", args=[current.pk])
        delete = reverse("admin:planner_ruleset_delete", args=[current.pk])
        assert client.post(change, {"reason": "rewritten"}).status_code == 403
        assert client.post(delete, {"post": "yes"}).status_code == 403
    assert RuleSet.current().reason == current.reason


def test_values_cannot_be_added_or_deleted_on_their_own(admin_role_client):
    assert admin_role_client.get(reverse("admin:planner_referencevalue_add")).status_code == 403
    value = _value("zone_volume_ml")
    delete = reverse("admin:planner_referencevalue_delete", args=[value.pk])
    assert admin_role_client.post(delete, {"post": "yes"}).status_code == 403


# --- a new version with several changes at once --------------------------------------------


def test_the_new_version_form_is_prefilled_from_the_version_in_force(admin_role_client):
    page = admin_role_client.get(reverse("admin:planner_ruleset_add")).content.decode()
    assert f"based on v{RuleSet.current().version}" in page
    assert 'value="0.500"' in page or 'value="0.5"' in page
    assert "Typical dosing: 0.2-0.5 mL per treatment quadrant (ref 5)." in page


def test_a_new_version_with_two_changes(admin_role_client, clinic_admin):
    old = RuleSet.current()
    data = _new_version_form(
        zone_volume_ml={"maximum": "0.4"},
        needle_gauge={"minimum": "28"},
    )
    response = admin_role_client.post(reverse("admin:planner_ruleset_add"), data)
    assert response.status_code == 302, _errors(response)
    new = RuleSet.current()
    assert (new.version, new.created_by) == (old.version + 1, clinic_admin)
    assert _value("zone_volume_ml", new).maximum == Decimal("0.4")
    assert _value("needle_gauge", new).minimum == 28
    assert new.values.count() == len(KEYS)


def test_a_new_version_without_a_change_is_refused(admin_role_client):
    before = RuleSet.objects.count()
    response = admin_role_client.post(reverse("admin:planner_ruleset_add"), _new_version_form())
    assert response.status_code == 200
    assert "Change at least one value" in response.content.decode()
    assert RuleSet.objects.count() == before


def test_a_new_version_with_a_bad_value_is_refused(admin_role_client):
    before = RuleSet.objects.count()
    data = _new_version_form(cannula_gauge={"minimum": "26", "maximum": "25"})
    response = admin_role_client.post(reverse("admin:planner_ruleset_add"), data)
    assert "The minimum (26) is above the maximum (25)." in response.content.decode()
    assert RuleSet.objects.count() == before


def test_a_new_version_needs_a_reason(admin_role_client):
    data = _new_version_form(reason="", zone_volume_ml={"maximum": "0.4"})
    response = admin_role_client.post(reverse("admin:planner_ruleset_add"), data)
    assert response.status_code == 200
    assert RuleSet.objects.count() == 1


# --- versions and their differences ---------------------------------------------------------


def test_the_versions_list_shows_who_when_why_and_what_changed(admin_role_client):
    admin_role_client.post(
        _value_url("zone_volume_ml"),
        _value_form("zone_volume_ml", maximum="0.6", reason="Ref 5 re-read"),
    )
    page = admin_role_client.get(reverse("admin:planner_ruleset_changelist")).content.decode()
    assert "Ref 5 re-read" in page
    assert "clinic-admin" in page
    assert "Volume per treatment zone: maximum 0.5 → 0.6" in page
    assert "First version" in page


def test_a_version_page_shows_its_differences_as_a_table(admin_role_client):
    admin_role_client.post(_value_url("needle_gauge"), _value_form("needle_gauge", maximum="31"))
    new = RuleSet.current()
    page = admin_role_client.get(
        reverse("admin:planner_ruleset_change", args=[new.pk])
    ).content.decode()
    assert f"<th>v{new.version - 1}</th><th>v{new.version}</th>" in page
    assert "<td>Needle gauge</td><td>maximum</td><td>30</td><td>31</td>" in page


def test_differences_compare_field_by_field():
    old = RuleSet.current()
    new = reference.create_version(
        actor=None,
        reason="test",
        changes={"allowed_depths": {**reference.value_fields(_value("allowed_depths")),
                                    "codes": "dermis"}},
    )  # fmt: skip
    (difference,) = reference.differences(old, new)
    assert (difference.key, difference.field) == ("allowed_depths", "codes")
    assert difference.new == "dermis"


def test_a_reference_change_is_audited_with_its_reason_and_differences(
    admin_role_client, clinic_admin
):
    admin_role_client.post(
        _value_url("zone_volume_ml"), _value_form("zone_volume_ml", maximum="0.6")
    )
    entry = AuditEntry.objects.get(action=AuditAction.REFERENCE_CHANGE)
    assert entry.actor == clinic_admin
    assert entry.changes["reason"] == "Protocol review 2026"
    assert entry.changes["values"] == {"zone_volume_ml.maximum": ["0.5", "0.6"]}
    assert entry.changes["version"] == [1, 2]


def test_the_audit_entry_is_written_in_the_same_transaction(monkeypatch, clinic_admin):
    """If the audit entry cannot be written, the new version is not kept either."""

    def broken(**kwargs):
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(reference.audit, "record", broken)
    with pytest.raises(RuntimeError):
        reference.create_version(
            actor=clinic_admin,
            reason="x",
            changes={"needle_gauge": {**reference.value_fields(_value("needle_gauge")),
                                      "maximum": Decimal("31")}},
        )  # fmt: skip
    assert RuleSet.objects.count() == 1


# --- plans and versions ---------------------------------------------------------------------


def _new_version(**fields) -> RuleSet:
    key, values = next(iter(fields.items()))
    return reference.create_version(
        actor=None,
        reason="test",
        changes={key: {**reference.value_fields(_value(key)), **values}},
    )


def test_a_draft_plan_shows_the_notice_and_uses_the_new_values(surgeon_client, plan):
    first = plan.rule_set
    _new_version(zone_volume_ml={"maximum": Decimal("0.25")})
    state = builder_state(TreatmentPlan.objects.get(pk=plan.pk))
    assert state.rule_set_changed
    assert state.review.rule_set == RuleSet.current() != first
    page = surgeon_client.get(reverse("plan_builder", args=[plan.pk])).content.decode()
    assert "The reference values changed since this plan was last saved" in page
    assert "ZONE_VOLUME_ABOVE_MAX" in page  # CHEEK_L 0.3 mL is above the new 0.25


def _validate_in_cheek_l(client, plan, volume: str) -> str:
    data = {
        "new-zone": "CHEEK_L",
        "new-volume_ml": volume,
        "new-instrument": "needle",
        "new-gauge": "27",
        "new-depth": "dermis",
        "new-technique": "retrograde",
        "new-notes": "",
    }
    response = client.post(
        reverse("injection_validate", args=[plan.pk]), data, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    return response.content.decode()


def test_a_new_version_is_in_force_for_the_next_request_of_a_running_server(surgeon_client, plan):
    # CHEEK_L holds 0.3 mL: 0.1 more is within 0.5, above a new maximum of 0.25. The server has
    # already served a request (the first version is in its per-process copies).
    assert "ZONE_VOLUME_ABOVE_MAX" not in _validate_in_cheek_l(surgeon_client, plan, "0.1")
    _new_version(zone_volume_ml={"maximum": Decimal("0.25")})
    assert "ZONE_VOLUME_ABOVE_MAX" in _validate_in_cheek_l(surgeon_client, plan, "0.1")


def test_the_rule_set_in_force_comes_with_the_plan_and_is_not_asked_for_again(
    rf, surgeon, plan, django_assert_num_queries
):
    request = rf.get("/")
    request.user = surgeon
    loaded = get_plan_for_user(request, plan.pk)
    first = engine.current_rule_set(loaded)  # reads the version once for this process

    with django_assert_num_queries(0):
        again = engine.current_rule_set(loaded)

    assert again == first == RuleSet.current()
    assert again is not first  # each caller gets its own instance to attach things to
    newer = _new_version(zone_volume_ml={"maximum": Decimal("0.25")})
    assert engine.current_rule_set(get_plan_for_user(request, plan.pk)) == newer


def test_a_consented_plan_keeps_its_version(patient, surgeon):
    consented = TreatmentPlanFactory(patient=patient, surgeon=surgeon, rule_set=RuleSet.current())
    PlannedInjectionFactory(plan=consented, zone_code="CHEEK_L", volume_ml=Decimal("0.3"))
    TreatmentPlan.objects.filter(pk=consented.pk).update(status=PlanStatus.CONSENTED)
    first = RuleSet.current()
    _new_version(zone_volume_ml={"maximum": Decimal("0.25")})
    consented = TreatmentPlan.objects.get(pk=consented.pk)
    review = engine.review_plan(consented)
    assert review.rule_set == first
    assert not review.errors
    assert not builder_state(consented).rule_set_changed


# --- treatment zones ------------------------------------------------------------------------


def _zone_form(zone: TreatmentZone, **changes) -> dict:
    data = {
        name: getattr(zone, name)
        for name in ("code", "name", "laterality", "region", "shape", "label_x", "label_y")
    }
    data.update(sort_order=zone.sort_order, active="on" if zone.active else "")
    data.update({"reason": "Clinic naming", **changes})
    return {key: value for key, value in data.items() if value != ""}


def test_renaming_a_zone_needs_a_reason_and_is_audited(admin_role_client, clinic_admin):
    zone = TreatmentZone.objects.get(code="CHIN")
    url = reverse("admin:planner_treatmentzone_change", args=[zone.pk])
    refused = admin_role_client.post(url, _zone_form(zone, name="Chin (mentum)", reason=""))
    assert refused.status_code == 200
    assert "Say why this changes" in refused.content.decode()
    response = admin_role_client.post(url, _zone_form(zone, name="Chin (mentum)"))
    assert response.status_code == 302, _errors(response)
    assert TreatmentZone.objects.get(pk=zone.pk).name == "Chin (mentum)"
    entry = AuditEntry.objects.get(action=AuditAction.REFERENCE_CHANGE, object_type="treatmentzone")
    assert entry.actor == clinic_admin
    assert entry.changes["fields"] == {"name": ["Chin", "Chin (mentum)"]}
    assert entry.changes["reason"] == "Clinic naming"


def test_a_zone_edit_does_not_make_a_rule_set_version(admin_role_client):
    zone = TreatmentZone.objects.get(code="CHIN")
    url = reverse("admin:planner_treatmentzone_change", args=[zone.pk])
    admin_role_client.post(url, _zone_form(zone, active=""))
    assert not TreatmentZone.objects.get(pk=zone.pk).active
    assert RuleSet.objects.count() == 1


def test_a_deactivated_zone_can_no_longer_be_planned(admin_role_client, surgeon_client, plan):
    zone = TreatmentZone.objects.get(code="NECK")
    admin_role_client.post(
        reverse("admin:planner_treatmentzone_change", args=[zone.pk]), _zone_form(zone, active="")
    )
    data = {
        "version": plan.version,
        "new-zone": "NECK",
        "new-volume_ml": "0.3",
        "new-instrument": "needle",
        "new-gauge": "27",
        "new-depth": "dermis",
        "new-technique": "retrograde",
    }
    response = surgeon_client.post(reverse("injection_create", args=[plan.pk]), data)
    assert response.status_code == 422
    assert not PlannedInjection.objects.filter(plan=plan, zone=zone).exists()


def test_a_used_zone_keeps_its_code_and_region(admin_role_client, plan):
    zone = TreatmentZone.objects.get(code="UPPER_LIP")  # used by the plan fixture
    url = reverse("admin:planner_treatmentzone_change", args=[zone.pk])
    admin_role_client.post(url, _zone_form(zone, code="TOP_LIP", region="midface"))
    zone.refresh_from_db()
    assert (zone.code, zone.region) == ("UPPER_LIP", "perioral")


def test_an_unused_zone_can_still_be_corrected(admin_role_client):
    zone = TreatmentZone.objects.get(code="SCALP")
    url = reverse("admin:planner_treatmentzone_change", args=[zone.pk])
    response = admin_role_client.post(url, _zone_form(zone, region="upper_face"))
    assert response.status_code == 302, _errors(response)
    assert TreatmentZone.objects.get(pk=zone.pk).region == "upper_face"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"shape": 'M 0 0" onload="alert(1)'}, "The shape is SVG path data only"),
        ({"shape": ""}, "This field is required."),
        ({"label_x": "999"}, "between 0 and 400"),
        ({"code": "chin area"}, "Use capital letters, digits and underscores"),
        ({"name": "Chin\u202e"}, "text-direction control characters"),
    ],
)
def test_bad_zone_values_are_refused(admin_role_client, changes, message):
    zone = TreatmentZone.objects.get(code="SCALP")
    url = reverse("admin:planner_treatmentzone_change", args=[zone.pk])
    response = admin_role_client.post(url, _zone_form(zone, **changes))
    assert response.status_code == 200
    assert message in response.content.decode().replace("&#x27;", "'")


def test_adding_a_zone_is_audited(admin_role_client):
    data = {
        "code": "EARLOBE_L",
        "name": "Left earlobe",
        "laterality": "left",
        "region": "lower_face",
        "shape": "M 10 10 L 20 10 L 20 20 Z",
        "label_x": "15",
        "label_y": "15",
        "sort_order": "99",
        "active": "on",
        "reason": "Requested by surgeons",
    }
    response = admin_role_client.post(reverse("admin:planner_treatmentzone_add"), data)
    assert response.status_code == 302, _errors(response)
    entry = AuditEntry.objects.get(object_type="treatmentzone")
    assert entry.changes["zone"] == "EARLOBE_L"
    assert entry.changes["reason"] == "Requested by surgeons"


def test_zones_cannot_be_deleted(admin_role_client, admin_user_client):
    zone = TreatmentZone.objects.get(code="SCALP")
    url = reverse("admin:planner_treatmentzone_delete", args=[zone.pk])
    for client in (admin_role_client, admin_user_client):
        assert client.post(url, {"post": "yes"}).status_code == 403
    assert TreatmentZone.objects.filter(pk=zone.pk).exists()


def _listed(response) -> list:
    return list(response.context["cl"].result_list)


def test_zones_are_listed_with_filters_and_search(admin_role_client):
    url = reverse("admin:planner_treatmentzone_changelist")
    perioral = _listed(admin_role_client.get(url, {"region__exact": "perioral"}))
    assert {zone.code for zone in perioral} == {
        "UPPER_LIP",
        "LOWER_LIP",
        "MARIONETTE_L",
        "MARIONETTE_R",
    }
    found = _listed(admin_role_client.get(url, {"q": "marionette"}))
    assert {zone.code for zone in found} == {"MARIONETTE_L", "MARIONETTE_R"}
    page = admin_role_client.get(url).content.decode()
    for column in ("Code", "Name", "Region", "Laterality", "Active"):
        assert column in page


def test_reference_values_are_listed_with_filters_and_search(admin_role_client):
    admin_role_client.post(_value_url("needle_gauge"), _value_form("needle_gauge", maximum="31"))
    url = reverse("admin:planner_referencevalue_changelist")
    current = _listed(admin_role_client.get(url, {"version": "current"}))
    assert {value.rule_set.version for value in current} == {2}
    assert len(current) == len(KEYS)
    old = _listed(admin_role_client.get(url, {"version": "old"}))
    assert {value.rule_set.version for value in old} == {1}
    found = _listed(admin_role_client.get(url, {"q": "orbicularis"}))
    assert {value.key for value in found} == {"perioral_forbidden_depths"}
    by_key = _listed(admin_role_client.get(url, {"key__exact": "needle_gauge"}))
    assert sorted(value.maximum for value in by_key) == [30, 31]
    assert "v2 (in force)" in admin_role_client.get(url).content.decode()


# --- who may edit -----------------------------------------------------------------------------


@pytest.fixture
def admin_user_client(db):
    """A superuser (no clinic)."""
    superuser = UserFactory(username="root", clinic=None, is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(superuser)
    return client


@pytest.mark.parametrize("fixture", ["surgeon_client", "colleague_client", "outsider_client"])
def test_only_clinic_admins_reach_the_reference_admin(request, fixture):
    client = request.getfixturevalue(fixture)
    response = client.post(
        _value_url("zone_volume_ml"), _value_form("zone_volume_ml", maximum="0.9")
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert RuleSet.objects.count() == 1

"""Patient pages: login, clinic isolation, search and pages, the form's errors, roles, audit."""

import datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from planner.choices import AuditAction
from planner.models import AuditEntry, Patient
from planner.views.patients import PAGE_SIZE
from tests.factories import PatientFactory, TreatmentPlanFactory

pytestmark = pytest.mark.django_db


def form_data(**overrides) -> dict:
    data = {
        "chart_number": "A-0100",
        "name": "Nora Newcomer",
        "date_of_birth": "1980-04-02",
        "sex": "female",
        "allergies": "",
        "notes": "",
    }
    return data | overrides


def detail_url(patient: Patient) -> str:
    return reverse("patient_detail", args=[patient.pk])


def edit_url(patient: Patient) -> str:
    return reverse("patient_edit", args=[patient.pk])


# --- Login --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["patient_list", "patient_create"])
def test_it_sends_anonymous_visitors_of_a_page_to_login(client: Client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


def test_it_sends_anonymous_visitors_of_a_patient_to_login_without_leaking_them(client, patient):
    for url in (detail_url(patient), edit_url(patient)):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    assert not AuditEntry.objects.filter(action=AuditAction.VIEW).exists()


def test_it_refuses_an_anonymous_post_of_a_new_patient(client, clinic):
    response = client.post(reverse("patient_create"), form_data())
    assert response.status_code == 302
    assert not Patient.objects.exists()


# --- Clinic isolation -----------------------------------------------------------------------


def test_it_hides_other_clinics_patients_from_the_list(outsider_client, patient):
    response = outsider_client.get(reverse("patient_list"))
    assert response.status_code == 200
    assert patient.name not in response.text
    assert patient.chart_number not in response.text


def test_it_hides_other_clinics_patients_from_a_search(outsider_client, patient):
    response = outsider_client.post(reverse("patient_list"), {"q": patient.chart_number})
    assert patient.name not in response.text
    assert list(response.context["page"].object_list) == []


def test_it_answers_404_for_another_clinics_patient(outsider_client, patient):
    assert outsider_client.get(detail_url(patient)).status_code == 404
    assert outsider_client.get(edit_url(patient)).status_code == 404


def test_it_refuses_an_edit_of_another_clinics_patient_with_404(outsider_client, patient):
    response = outsider_client.post(edit_url(patient), form_data(name="Hijacked"))
    assert response.status_code == 404
    patient.refresh_from_db()
    assert patient.name == "Alice Example"


def test_it_answers_404_for_a_patient_that_does_not_exist(surgeon_client):
    assert surgeon_client.get(reverse("patient_detail", args=[999_999])).status_code == 404


def test_it_shows_the_colleague_the_clinics_patient(colleague_client, patient):
    response = colleague_client.get(detail_url(patient))
    assert response.status_code == 200
    assert patient.name in response.text


def test_the_patient_page_lists_the_patients_plans(surgeon_client, plan):
    response = surgeon_client.get(detail_url(plan.patient))
    assert response.status_code == 200
    assert reverse("plan_builder", args=[plan.pk]) in response.text


# --- List, search and pagination ------------------------------------------------------------


@pytest.fixture
def three_patients(clinic):
    return [
        PatientFactory(clinic=clinic, name="Maria Lopez", chart_number="K-101"),
        PatientFactory(clinic=clinic, name="Mario Rossi", chart_number="K-202"),
        PatientFactory(clinic=clinic, name="Ingrid Berg", chart_number="Z-303"),
    ]


def names_listed(response) -> set[str]:
    return {patient.name for patient in response.context["page"].object_list}


def test_it_finds_patients_by_part_of_the_name_ignoring_case(surgeon_client, three_patients):
    response = surgeon_client.post(reverse("patient_list"), {"q": "mari"})
    assert names_listed(response) == {"Maria Lopez", "Mario Rossi"}


def test_it_finds_a_patient_by_chart_number(surgeon_client, three_patients):
    response = surgeon_client.post(reverse("patient_list"), {"q": "z-303"})
    assert names_listed(response) == {"Ingrid Berg"}
    assert "Ingrid Berg" in response.text


def test_it_says_when_nothing_matches(surgeon_client, three_patients):
    response = surgeon_client.post(reverse("patient_list"), {"q": "nobody"})
    assert names_listed(response) == set()
    assert "No patient matches" in response.text


def test_it_lists_thirty_patients_on_two_pages(surgeon_client, clinic):
    PatientFactory.create_batch(30, clinic=clinic)
    first = surgeon_client.get(reverse("patient_list"))
    second = surgeon_client.get(reverse("patient_list"), {"page": 2})

    assert first.context["page"].paginator.num_pages == 2
    assert len(first.context["page"].object_list) == PAGE_SIZE
    assert len(second.context["page"].object_list) == 30 - PAGE_SIZE
    assert names_listed(first).isdisjoint(names_listed(second))
    assert "Page 1 of 2" in first.text
    assert 'name="page" value="2"' in first.text


def test_it_keeps_the_search_in_the_page_buttons_not_in_the_url(surgeon_client, clinic):
    PatientFactory.create_batch(PAGE_SIZE + 1, clinic=clinic, name="Sam Same")
    PatientFactory(clinic=clinic, name="Other Person")
    response = surgeon_client.post(reverse("patient_list"), {"q": "Same"})
    assert '<input type="hidden" name="q" value="Same">' in response.text
    assert 'name="page" value="2"' in response.text
    assert "q=Same" not in response.text
    second = surgeon_client.post(reverse("patient_list"), {"q": "Same", "page": "2"})
    assert names_listed(second) == {"Sam Same"}


def test_each_listed_patient_shows_their_plan_count_and_last_session(
    surgeon_client, surgeon, clinic
):
    seen = PatientFactory(clinic=clinic, name="Ada Twice")
    for day in (3, 17):
        TreatmentPlanFactory(patient=seen, surgeon=surgeon, planned_for=datetime.date(2026, 5, day))
    PatientFactory(clinic=clinic, name="Ada Never")
    PatientFactory.create_batch(PAGE_SIZE, clinic=clinic, name="Zed Later")
    with CaptureQueriesContext(connection) as queries:
        response = surgeon_client.post(reverse("patient_list"), {"q": "a"})

    rows = {patient.name: patient for patient in response.context["page"].object_list}
    assert (rows["Ada Twice"].plan_count, rows["Ada Twice"].last_session) == (
        2,
        datetime.date(2026, 5, 17),
    )
    assert (rows["Ada Never"].plan_count, rows["Ada Never"].last_session) == (0, None)
    assert "17 May 2026" in response.text
    assert response.context["page"].paginator.count == PAGE_SIZE + 2
    # The pages are counted over the matching patients alone, without joining their plans.
    (count,) = [query["sql"] for query in queries if "COUNT(*)" in query["sql"]]
    assert "treatmentplan" not in count


def test_a_search_in_the_url_is_ignored(surgeon_client, three_patients):
    """Searches are POSTed: a name in a query string (bookmarks, logs) filters nothing."""
    response = surgeon_client.get(reverse("patient_list"), {"q": "Berg"})
    assert len(names_listed(response)) == 3


def test_it_shows_the_last_page_for_a_page_number_past_the_end(surgeon_client, three_patients):
    response = surgeon_client.get(reverse("patient_list"), {"page": "99"})
    assert response.status_code == 200
    assert len(names_listed(response)) == 3


def test_it_answers_an_htmx_search_with_only_the_results(surgeon_client, three_patients):
    response = surgeon_client.post(
        reverse("patient_list"),
        {"q": "Berg"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="patient-results",
    )
    assert response.status_code == 200
    body = response.text.strip()
    assert body.startswith('<section id="patient-results"')
    assert body.endswith("</section>")
    assert "Ingrid Berg" in body
    assert "Maria Lopez" not in body
    assert "<html" not in body
    assert 'role="search"' not in body


# --- Creating and editing -------------------------------------------------------------------


def test_a_surgeon_creates_a_patient_in_their_own_clinic(surgeon_client, surgeon):
    response = surgeon_client.post(reverse("patient_create"), form_data())
    patient = Patient.objects.get(chart_number="A-0100")
    assert response.status_code == 302
    assert response["Location"] == detail_url(patient)
    assert patient.clinic == surgeon.clinic
    assert patient.date_of_birth == datetime.date(1980, 4, 2)


def test_staff_can_create_patients(colleague_client, colleague):
    response = colleague_client.post(reverse("patient_create"), form_data())
    assert response.status_code == 302
    assert Patient.objects.get(chart_number="A-0100").clinic == colleague.clinic


def test_the_admin_role_cannot_create_patients(admin_role_client):
    assert admin_role_client.get(reverse("patient_create")).status_code == 403
    assert admin_role_client.post(reverse("patient_create"), form_data()).status_code == 403
    assert not Patient.objects.exists()


def test_the_admin_role_cannot_edit_patients(admin_role_client, patient):
    response = admin_role_client.post(edit_url(patient), form_data(name="Changed"))
    assert response.status_code == 403
    patient.refresh_from_db()
    assert patient.name == "Alice Example"


def test_the_admin_role_may_look_patients_up(admin_role_client, patient):
    assert admin_role_client.get(detail_url(patient)).status_code == 200


def test_the_new_patient_link_shows_only_to_those_who_may_add(admin_role_client, surgeon_client):
    create_url = reverse("patient_create")
    assert create_url in surgeon_client.get(reverse("patient_list")).text
    assert create_url not in admin_role_client.get(reverse("patient_list")).text


def test_a_surgeon_edits_a_patient(surgeon_client, patient):
    data = form_data(chart_number=patient.chart_number, name="Alice Renamed", smoker="on")
    response = surgeon_client.post(edit_url(patient), data)
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.name == "Alice Renamed"
    assert patient.smoker is True


def test_it_keeps_a_patients_own_chart_number_on_edit(surgeon_client, patient):
    response = surgeon_client.post(edit_url(patient), form_data(chart_number=patient.chart_number))
    assert response.status_code == 302


def assert_refused_with(response, field: str, message: str) -> None:
    assert response.status_code == 422
    assert message in " ".join(response.context["form"].errors[field])
    assert message in response.text
    assert "nothing was saved" in response.text


def test_it_refuses_a_date_of_birth_in_the_future(surgeon_client):
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    response = surgeon_client.post(
        reverse("patient_create"), form_data(date_of_birth=tomorrow.isoformat())
    )
    assert_refused_with(response, "date_of_birth", "cannot be in the future")
    assert not Patient.objects.exists()


def test_it_refuses_a_date_of_birth_before_1900(surgeon_client):
    response = surgeon_client.post(reverse("patient_create"), form_data(date_of_birth="1899-12-31"))
    assert_refused_with(response, "date_of_birth", "after 1 January 1900")


def test_it_refuses_a_date_of_birth_that_is_not_a_date(surgeon_client):
    response = surgeon_client.post(reverse("patient_create"), form_data(date_of_birth="31/02/1980"))
    assert response.status_code == 422
    assert "date_of_birth" in response.context["form"].errors
    assert 'value="31/02/1980"' in response.text


def test_it_refuses_a_chart_number_already_used_in_the_clinic(surgeon_client, patient):
    response = surgeon_client.post(
        reverse("patient_create"), form_data(chart_number=patient.chart_number.lower())
    )
    assert_refused_with(response, "chart_number", "already used by another patient")
    assert Patient.objects.count() == 1


def test_it_accepts_a_chart_number_used_only_in_another_clinic(outsider_client, patient):
    response = outsider_client.post(
        reverse("patient_create"), form_data(chart_number=patient.chart_number)
    )
    assert response.status_code == 302
    assert Patient.objects.filter(chart_number=patient.chart_number).count() == 2


def test_it_refuses_an_edit_onto_another_patients_chart_number(surgeon_client, patient, clinic):
    other = PatientFactory(clinic=clinic, chart_number="A-0002")
    response = surgeon_client.post(edit_url(other), form_data(chart_number=patient.chart_number))
    assert_refused_with(response, "chart_number", "already used by another patient")
    other.refresh_from_db()
    assert other.chart_number == "A-0002"


def test_it_refuses_a_patient_without_a_name(surgeon_client):
    response = surgeon_client.post(reverse("patient_create"), form_data(name=""))
    assert_refused_with(response, "name", "This field is required")


def test_it_keeps_what_was_typed_when_refusing_the_form(surgeon_client):
    data = form_data(
        name="Nora Newcomer", chart_number="KEEP-77", allergies="latex", date_of_birth="1899-01-01"
    )
    response = surgeon_client.post(reverse("patient_create"), data)
    assert response.status_code == 422
    for typed in (
        'value="Nora Newcomer"',
        'value="KEEP-77"',
        'value="latex"',
        'value="1899-01-01"',
    ):
        assert typed in response.text


def test_it_refuses_a_text_direction_override_in_the_name(surgeon_client):
    response = surgeon_client.post(reverse("patient_create"), form_data(name="Eve \u202etxt.exe"))
    assert_refused_with(response, "name", "text-direction control characters")
    assert not Patient.objects.exists()


def test_it_stores_names_without_surrounding_blanks(surgeon_client):
    surgeon_client.post(reverse("patient_create"), form_data(name="  Nora Newcomer  "))
    assert Patient.objects.get().name == "Nora Newcomer"


# --- Audit and caching ----------------------------------------------------------------------


def test_it_audits_viewing_a_patient(surgeon_client, surgeon, patient):
    surgeon_client.get(detail_url(patient))
    entry = AuditEntry.objects.get(action=AuditAction.VIEW)
    assert (entry.actor, entry.patient, entry.clinic) == (surgeon, patient, patient.clinic)
    assert entry.object_type == "patient"
    assert entry.object_id == str(patient.pk)


def test_it_audits_creating_a_patient(colleague_client, colleague):
    colleague_client.post(reverse("patient_create"), form_data())
    entry = AuditEntry.objects.get(action=AuditAction.CREATE)
    assert entry.actor == colleague
    assert entry.patient == Patient.objects.get(chart_number="A-0100")


def test_it_audits_changing_a_patient_with_the_fields_changed(surgeon_client, surgeon, patient):
    surgeon_client.post(edit_url(patient), form_data(chart_number=patient.chart_number))
    entry = AuditEntry.objects.get(action=AuditAction.CHANGE)
    assert (entry.actor, entry.patient) == (surgeon, patient)
    assert "name" in entry.changes["fields"]


def test_it_writes_no_audit_entry_for_a_refused_form(surgeon_client):
    surgeon_client.post(reverse("patient_create"), form_data(name=""))
    assert not AuditEntry.objects.filter(action=AuditAction.CREATE).exists()


def test_it_does_not_audit_a_view_refused_with_404(outsider_client, patient):
    outsider_client.get(detail_url(patient))
    assert not AuditEntry.objects.filter(action=AuditAction.VIEW).exists()


@pytest.mark.parametrize("page", ["list", "detail", "create", "edit"])
def test_patient_pages_are_never_stored_by_a_cache(surgeon_client, patient, page):
    url = {
        "list": reverse("patient_list"),
        "detail": detail_url(patient),
        "create": reverse("patient_create"),
        "edit": edit_url(patient),
    }[page]
    response = surgeon_client.get(url)
    assert response.status_code == 200
    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"no-store", "private"} <= directives

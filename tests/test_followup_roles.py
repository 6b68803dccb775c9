"""Who gets what on every follow-up, photo and export URL: anonymous, the surgeon, staff and
clinic admin of clinic A, and ``outsider`` (a surgeon of clinic B), who must get a 404 for
anything of clinic A addressed by id. ``test_every_follow_up_url_is_covered`` fails when a URL
is added to the follow-up block of planner/urls.py without a row here."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from planner.models import Photo
from tests.followup_support import FOLLOW_UP_URL_NAMES, jpeg_bytes, perform, visit_post

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "surgeon", "staff", "admin", "outsider")
LOGIN = "login"

#: (url name, method, object, payload, expected per role)
MATRIX = [
    ("dashboard", "GET", None, None, (LOGIN, 200, 200, 200, 200)),
    ("plan_followup", "GET", "plan", None, (LOGIN, 200, 200, 200, 404)),
    ("followup_schedule", "POST", "plan", None, (LOGIN, 302, 403, 403, 404)),
    ("followup_unscheduled", "POST", "plan", "unscheduled", (LOGIN, 302, 403, 403, 404)),
    ("plan_followup_chart", "GET", "plan", None, (LOGIN, 200, 200, 200, 404)),
    ("followup_summary_pdf", "GET", "plan", None, (LOGIN, 200, 200, 200, 404)),
    ("followup_visit", "GET", "follow_up", None, (LOGIN, 200, 200, 200, 404)),
    ("followup_visit", "POST", "follow_up", "visit", (LOGIN, 302, 403, 403, 404)),
    ("followup_status", "POST", "follow_up", "missed", (LOGIN, 302, 403, 403, 404)),
    ("patient_followup", "GET", "patient", None, (LOGIN, 200, 200, 200, 404)),
    ("patient_followup_chart", "GET", "patient", None, (LOGIN, 200, 200, 200, 404)),
    ("plan_photos", "GET", "plan", None, (LOGIN, 200, 200, 200, 404)),
    ("plan_photos", "POST", "plan", "photo", (LOGIN, 302, 302, 403, 404)),
    ("photo_compare", "GET", "plan", None, (LOGIN, 200, 200, 200, 404)),
    ("photo_file", "GET", "photo", None, (LOGIN, 200, 200, 200, 404)),
    ("photo_delete", "POST", "photo", None, (LOGIN, 302, 403, 403, 404)),
    ("export_page", "GET", None, None, (LOGIN, 403, 403, 200, 403)),
    ("export_audit_csv", "GET", None, None, (LOGIN, 403, 403, 200, 403)),
    ("export_audit_csv", "POST", None, "identifiable", (LOGIN, 403, 403, 200, 403)),
]


@pytest.fixture(autouse=True)
def photo_root(tmp_path, settings):
    settings.PHOTO_ROOT = tmp_path / "photos"


@pytest.fixture
def scenario(plan, surgeon, colleague, clinic_admin, outsider, patient):
    performed = perform(plan, surgeon)
    follow_up = performed.follow_ups.order_by("due_on").first()
    client = Client()
    client.force_login(surgeon)
    client.post(
        reverse("plan_photos", args=[performed.pk]),
        {
            "timepoint": "baseline",
            "view": "front",
            "taken_on": timezone.localdate().isoformat(),
            "image": SimpleUploadedFile("a.jpg", jpeg_bytes(), content_type="image/jpeg"),
        },
    )
    return {
        "users": dict(zip(ROLES, (None, surgeon, colleague, clinic_admin, outsider), strict=True)),
        "plan": performed,
        "patient": patient,
        "follow_up": follow_up,
        "photo": Photo.objects.get(),
    }


def payload(name: str | None, scenario) -> dict:
    if name == "visit":
        scenario["follow_up"].refresh_from_db()
        return visit_post(scenario["follow_up"])
    if name == "unscheduled":
        return {"due_on": timezone.localdate().isoformat()}
    if name == "missed":
        return {"status": "missed"}
    if name == "photo":
        return {
            "timepoint": "baseline",
            "view": "profile_left",
            "taken_on": timezone.localdate().isoformat(),
            "image": SimpleUploadedFile("b.jpg", jpeg_bytes(), content_type="image/jpeg"),
        }
    if name == "identifiable":
        return {"identifiable": "on", "reason": "Matrix check"}
    return {}


@pytest.mark.parametrize("role_index", range(len(ROLES)), ids=ROLES)
@pytest.mark.parametrize("row", MATRIX, ids=lambda row: f"{row[1]} {row[0]}")
def test_the_follow_up_role_matrix(scenario, row, role_index):
    name, method, target, data, expected = row
    if name == "followup_schedule":
        scenario["plan"].follow_ups.all().delete()  # a plan without its schedule yet
    url = reverse(name, args=[scenario[target].pk] if target else [])
    client = Client()
    user = scenario["users"][ROLES[role_index]]
    if user is not None:
        client.force_login(user)
    body = payload(data, scenario)
    response = client.post(url, body) if method == "POST" else client.get(url)
    want = expected[role_index]
    if want == LOGIN:
        assert response.status_code == 302
        assert response["Location"].split("?")[0] == reverse("login")
    else:
        assert response.status_code == want, response.content[:400]


def test_every_follow_up_url_is_covered():
    from planner import urls

    source = Path(urls.__file__).read_text()
    block = source.split("# --- follow-up and outcomes")[1].split("# --- end follow-up")[0]
    names = {part.split('"')[1] for part in block.split("name=")[1:]}
    assert names == FOLLOW_UP_URL_NAMES
    assert {row[0] for row in MATRIX} == FOLLOW_UP_URL_NAMES

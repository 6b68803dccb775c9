"""Score charts: valid SVG for 0, 1 and many follow-ups, served to the clinic only, and the
printable follow-up summary that embeds them."""

import datetime
import re
import xml.etree.ElementTree as ET

import pytest
from django.urls import reverse
from django.utils import timezone

from planner import charts
from planner.models import FollowUp
from tests.followup_support import make_scar_plan, perform

SVG = "{http://www.w3.org/2000/svg}svg"


def parse(svg: bytes) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314  (our own renderer's output)
    assert root.tag == SVG
    assert root.get("viewBox")
    return root


def day(n: int) -> datetime.date:
    return datetime.date(2026, 1, 1) + datetime.timedelta(days=n)


# --- the pure renderer ---------------------------------------------------------------------------


def test_no_follow_up_gives_a_valid_svg_saying_so():
    svg = charts.trajectory_svg([])
    root = parse(svg)
    assert float(root.get("height").removesuffix("pt")) < 200  # the small "no scores" picture
    assert b"<script" not in svg


def test_one_follow_up_gives_a_valid_svg_with_its_points():
    point = charts.Point(on=day(7), label="1 week", gais_surgeon=2, gais_patient=3)
    root = parse(charts.trajectory_svg([point], sessions=[charts.Session(day(0), "Session")]))
    assert len(root.findall(".//{http://www.w3.org/2000/svg}g")) > 10


def test_many_follow_ups_give_a_valid_deterministic_svg():
    points = [
        charts.Point(
            on=day(30 * i + 7),
            label=f"visit {i}",
            posas_patient=40 - 3 * i,
            posas_observer=38 - 3 * i,
            vss=max(0, 10 - i),
            gais_surgeon=max(1, 4 - i // 2),
            gais_patient=max(1, 5 - i // 2),
        )
        for i in range(12)
    ]
    first = charts.trajectory_svg(points, sessions=[charts.Session(day(0), "Session")])
    parse(first)
    assert first == charts.trajectory_svg(points, sessions=[charts.Session(day(0), "Session")])
    assert b"<script" not in first
    # Namespaces and RDF metadata name URLs; nothing is ever loaded from one.
    assert not re.search(rb'(href|src)="(https?:|//)', first)


def test_visits_with_only_some_scales_still_render():
    points = [charts.Point(on=day(7), vss=5), charts.Point(on=day(40), posas_patient=20)]
    parse(charts.trajectory_svg(points))


# --- the endpoints -------------------------------------------------------------------------------


@pytest.fixture
def performed(plan, surgeon, db):
    return perform(make_scar_plan(plan), surgeon)


def record(follow_up: FollowUp, on: datetime.date, **scores) -> None:
    FollowUp.objects.filter(pk=follow_up.pk).update(status="done", visited_on=on, **scores)


@pytest.mark.django_db
@pytest.mark.parametrize("visits", [0, 1, 5])
def test_the_plan_chart_is_an_svg_image_for_0_1_and_many_visits(performed, surgeon_client, visits):
    today = timezone.localdate()
    for index, follow_up in enumerate(performed.follow_ups.order_by("due_on")[:visits]):
        record(
            follow_up,
            today,
            gais_surgeon=3 - min(index, 2),
            gais_patient=3,
            vss_vascularity=1,
            vss_pigmentation=1,
            vss_pliability=2,
            vss_height=index % 4,
            vss_version="vss_1990",
        )
    response = surgeon_client.get(reverse("plan_followup_chart", args=[performed.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/svg+xml")
    assert "no-store" in response["Cache-Control"]
    assert "default-src 'none'" in response["Content-Security-Policy"]
    parse(response.content)
    page = surgeon_client.get(reverse("plan_followup", args=[performed.pk])).content.decode()
    assert (reverse("plan_followup_chart", args=[performed.pk]) in page) == (visits > 0)


@pytest.mark.django_db
def test_the_patient_chart_spans_every_performed_session(performed, surgeon_client):
    record(performed.follow_ups.order_by("due_on").first(), timezone.localdate(), gais_surgeon=2)
    response = surgeon_client.get(reverse("patient_followup_chart", args=[performed.patient.pk]))
    parse(response.content)
    page = surgeon_client.get(reverse("patient_followup", args=[performed.patient.pk]))
    assert "Much improved" in page.content.decode()


@pytest.mark.django_db
def test_the_follow_up_summary_embeds_the_chart_and_prints(performed, surgeon_client):
    pdf = pytest.importorskip("planner.pdf")
    from planner.views.followup import summary_html

    record(performed.follow_ups.order_by("due_on").first(), timezone.localdate(), gais_surgeon=2)
    html = summary_html(performed)
    assert "data:image/svg+xml;base64," in html
    assert "Much improved" in html
    rendered = pdf.render_here(html, pdf.static_roots())
    assert rendered.pdf.startswith(b"%PDF")
    assert rendered.refused == ()
    response = surgeon_client.get(reverse("followup_summary_pdf", args=[performed.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")


@pytest.mark.django_db
def test_the_summary_of_a_draft_plan_is_refused(plan, surgeon_client):
    response = surgeon_client.get(reverse("followup_summary_pdf", args=[plan.pk]), follow=True)
    assert "once the plan is performed" in response.content.decode()

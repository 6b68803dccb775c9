"""The consent and procedure sheet: content, hardening, access, printing and the signed record."""

import datetime
import hashlib
import html
import io
import re
import shutil
import subprocess
import time
from decimal import Decimal

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from planner import consent, engine, pdf
from planner.choices import AuditAction, PlanStatus
from planner.models import (
    AuditEntry,
    ConsentRecord,
    ConsentText,
    Patient,
    ReferenceValue,
    RuleSet,
    TreatmentPlan,
    TreatmentZone,
    WarningAcknowledgement,
)
from planner.templatetags.consent_tags import wording
from tests.factories import PatientFactory, PlannedInjectionFactory, TreatmentPlanFactory

DRAFT_MARK = "DRAFT \u2013 not for signature"
PDFTOTEXT = shutil.which("pdftotext") or "/usr/bin/pdftotext"  # Debian's poppler-utils
PAYLOADS = (
    '<img src="file:///etc/passwd">',
    '<link rel=attachment href="file:///etc/passwd">',
    '<link rel=stylesheet href="http://127.0.0.1:9/x.css">',
    "<style>body { background: url(file:///etc/passwd) }</style>",
    '<p style="background: url(http://127.0.0.1:9/y.png)">',
)


# --- helpers -------------------------------------------------------------------------------------


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def squeezed(text: str) -> str:
    """The text without any whitespace: long strings wrap over lines in a PDF."""
    return re.sub(r"\s+", "", text)


def page_count(data: bytes) -> int:
    return len(PdfReader(io.BytesIO(data)).pages)


def make_ready(plan: TreatmentPlan) -> TreatmentPlan:
    TreatmentPlan.objects.filter(pk=plan.pk).update(status=PlanStatus.READY)
    plan.refresh_from_db()
    return plan


def acknowledge_all(plan: TreatmentPlan, reason: str = "Patient prefers it; discussed.") -> None:
    review = engine.review_plan(plan, finalising=True)
    for finding in review.warnings:
        WarningAcknowledgement.objects.create(
            plan=plan,
            finding_key=review.key(finding),
            rule=finding.rule,
            message=finding.message,
            reason=reason,
            acknowledged_by=plan.surgeon,
        )


def sign(client, plan: TreatmentPlan, **overrides):
    data = {
        "version": plan.version,
        "patient_signed": "on",
        "document_id": consent.current_document_id(plan),
        "signed_on": timezone.localdate().isoformat(),
        "witness_name": "Wendy Witness",
    } | overrides
    return client.post(reverse("consent_sheet", args=[plan.pk]), data)


def new_rule_set_with(**changes) -> RuleSet:
    """A new rule-set version (as an admin would save it), with some values changed."""
    current = RuleSet.current()
    new = RuleSet.objects.create(version=current.version + 1, reason="Test change")
    for value in ReferenceValue.objects.filter(rule_set=current):
        value.pk = None
        value.rule_set = new
        for field, new_value in changes.get(value.key, {}).items():
            setattr(value, field, new_value)
        value.save()
    return new


@pytest.fixture
def ready_plan(plan):
    return make_ready(plan)


# --- content -------------------------------------------------------------------------------------


def test_staff_print_the_sheet_with_every_zone_volume_and_the_page_count(
    colleague_client, ready_plan
):
    response = colleague_client.get(reverse("consent_pdf", args=[ready_plan.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "no-store" in response["Cache-Control"]
    assert response["Content-Disposition"] == (
        f'inline; filename="consent-plan-{ready_plan.pk}-v{ready_plan.version}.pdf"'
    )
    text = pdf_text(response.content)
    pages = page_count(response.content)
    assert "Alice Example" in text
    assert "A-0001" in text
    for zone, volume in (("Cheek (left)", "0.3"), ("Upper lip", "0.2")):
        assert zone in text
        assert re.search(rf"{re.escape(zone)}.*\b{re.escape(volume)}\b", text)
    assert "Overall (2 zones, 2 injections)" in text
    for number in range(1, pages + 1):
        assert f"Page {number} of {pages}" in text
    assert text.count("Patient's initials") == pages
    assert "Rule set v" in text
    assert "DRAFT" not in text
    assert "Abdomen" in text  # the donor site
    assert "does not last beyond 3 months" in text
    assert "ref 5" in text


def test_the_sheet_names_each_acknowledged_warning_with_its_reason_and_who(
    colleague_client, plan, surgeon
):
    PlannedInjectionFactory(plan=plan, zone_code="FOREHEAD", technique="fanning", position=2)
    acknowledge_all(plan, reason="Fanning suits this broad forehead; discussed with the patient.")
    make_ready(plan)

    response = colleague_client.get(reverse("consent_pdf", args=[plan.pk]))

    text = pdf_text(response.content)
    assert "DRAFT" not in text
    # In the patient's words: the rule's title and the zone's name, never their codes.
    assert "An injection technique other than the documented one" in " ".join(text.split())
    assert "Forehead: fanning technique" in " ".join(text.split())
    assert "TECHNIQUE_NOT_RETROGRADE" not in text
    assert "FOREHEAD:" not in text
    assert "Fanning suits this broad forehead" in squeezed(text) or (
        "Fanning suits this broad forehead" in text
    )
    assert surgeon.display_name in text


def test_the_combination_block_appears_only_when_planned(colleague_client, ready_plan):
    text = pdf_text(colleague_client.get(reverse("consent_pdf", args=[ready_plan.pk])).content)
    assert "Combination with PRF or PRP" not in text

    TreatmentPlan.objects.filter(pk=ready_plan.pk).update(combination="prf")
    text = pdf_text(colleague_client.get(reverse("consent_pdf", args=[ready_plan.pk])).content)
    assert "Combination with PRF or PRP" in text
    assert "more than 90% of patients" in text


def test_every_print_is_an_audit_entry_with_the_plan_version(
    colleague_client, colleague, ready_plan
):
    colleague_client.get(reverse("consent_pdf", args=[ready_plan.pk]))
    colleague_client.get(reverse("consent_pdf", args=[ready_plan.pk]))

    entries = AuditEntry.objects.filter(action=AuditAction.PRINT, object_id=str(ready_plan.pk))
    assert entries.count() == 2
    entry = entries.first()
    assert entry.actor == colleague
    assert entry.plan_version == ready_plan.version
    assert entry.changes["copy"] == "for signature"
    assert entry.changes["document_id"].startswith("NF-")


# --- draft previews ------------------------------------------------------------------------------


def test_a_draft_plan_gives_a_marked_draft_preview_to_staff_and_surgeons(
    colleague_client, surgeon_client, plan
):
    for client in (colleague_client, surgeon_client):
        response = client.get(reverse("consent_pdf", args=[plan.pk]))
        assert response.status_code == 200
        text = pdf_text(response.content)
        assert DRAFT_MARK in text
        assert "The plan is a draft" in text


def test_a_surgeon_never_gets_the_copy_for_signature(surgeon_client, ready_plan):
    text = pdf_text(surgeon_client.get(reverse("consent_pdf", args=[ready_plan.pk])).content)
    assert DRAFT_MARK in text
    assert "Only clinic staff print the sheet for signature." in text


def test_a_ready_plan_without_a_harvest_volume_is_not_printed_for_consent(
    colleague_client, ready_plan
):
    # A plan marked ready before the harvest volume was required.
    TreatmentPlan.objects.filter(pk=ready_plan.pk).update(harvest_volume_ml=None)

    text = pdf_text(colleague_client.get(reverse("consent_pdf", args=[ready_plan.pk])).content)

    assert DRAFT_MARK in text
    assert "The harvest volume is not recorded" in " ".join(text.split())


def test_an_unacknowledged_warning_blocks_printing_for_consent(colleague_client, plan):
    PlannedInjectionFactory(plan=plan, zone_code="FOREHEAD", technique="bolus", position=2)
    make_ready(plan)

    text = pdf_text(colleague_client.get(reverse("consent_pdf", args=[plan.pk])).content)

    assert DRAFT_MARK in text
    assert "1 warning(s) are not acknowledged" in text
    # The warnings section says so too, instead of "None: the plan stays within the practice".
    assert "1 warning not yet acknowledged in the plan" in " ".join(text.split())
    assert "stays within the documented practice" not in text


def test_an_error_finding_blocks_printing_for_consent(colleague_client, plan):
    PlannedInjectionFactory(plan=plan, zone_code="CHEEK_L", volume_ml=Decimal("0.5"), position=2)
    make_ready(plan)

    text = pdf_text(colleague_client.get(reverse("consent_pdf", args=[plan.pk])).content)

    assert DRAFT_MARK in text
    assert "ZONE_VOLUME_ABOVE_MAX" in text
    assert "1 error finding in the plan" in " ".join(text.split())
    assert "stays within the documented practice" not in text


def test_a_plan_validated_against_an_older_rule_set_is_not_printed_for_consent(
    colleague_client, ready_plan
):
    new_rule_set_with()
    text = pdf_text(colleague_client.get(reverse("consent_pdf", args=[ready_plan.pk])).content)
    assert DRAFT_MARK in text
    assert "reference values changed" in text


# --- access --------------------------------------------------------------------------------------


def test_an_anonymous_user_is_sent_to_login(client, ready_plan):
    for name in ("consent_pdf", "consent_sheet"):
        response = client.get(reverse(name, args=[ready_plan.pk]))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_another_clinic_gets_404(outsider_client, ready_plan):
    assert outsider_client.get(reverse("consent_pdf", args=[ready_plan.pk])).status_code == 404
    assert outsider_client.get(reverse("consent_sheet", args=[ready_plan.pk])).status_code == 404
    assert sign(outsider_client, ready_plan).status_code == 404
    assert not AuditEntry.objects.filter(action=AuditAction.PRINT).exists()


def test_surgeons_and_admins_cannot_record_consent(surgeon_client, admin_role_client, ready_plan):
    for client in (surgeon_client, admin_role_client):
        assert sign(client, ready_plan).status_code == 403
    ready_plan.refresh_from_db()
    assert ready_plan.status == PlanStatus.READY
    assert not ConsentRecord.objects.exists()


# --- the print preview -------------------------------------------------------------------------


def test_the_preview_shows_the_sheet_and_the_signature_form_to_staff(colleague_client, ready_plan):
    response = colleague_client.get(reverse("consent_sheet", args=[ready_plan.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Nanofat treatment: consent and procedure sheet" in html
    assert "Record the patient's signature" in html
    assert reverse("consent_pdf", args=[ready_plan.pk]) in html
    assert 'style="' not in html  # no inline style: the CSP allows none
    # An icon of its own, so the browser does not ask for /favicon.ico (a 404 in its console).
    assert '<link rel="icon" href="data:,">' in html


def test_the_preview_has_no_signature_form_for_a_draft(colleague_client, plan):
    html = colleague_client.get(reverse("consent_sheet", args=[plan.pk])).content.decode()
    assert DRAFT_MARK in html
    assert "Record consent" not in html


# --- recording the signature ---------------------------------------------------------------------


def test_recording_consent_stores_the_signed_pdf_and_locks_the_plan(
    colleague_client, colleague, ready_plan
):
    printed = colleague_client.get(reverse("consent_pdf", args=[ready_plan.pk])).content
    signed_version = ready_plan.version

    response = sign(colleague_client, ready_plan)

    assert response.status_code == 302
    ready_plan.refresh_from_db()
    assert ready_plan.status == PlanStatus.CONSENTED
    assert ready_plan.version == signed_version + 1
    record = ConsentRecord.objects.get(plan=ready_plan)
    assert record.patient_signed
    assert record.witness_name == "Wendy Witness"
    assert record.recorded_by == colleague
    assert record.plan_version == signed_version
    assert record.rule_set == RuleSet.current()
    assert record.consent_text_versions["risks"] == 1
    assert record.sha256 == hashlib.sha256(bytes(record.pdf)).hexdigest()
    # The sheet the patient signed is the sheet that was printed, byte for byte.
    assert bytes(record.pdf) == printed
    entry = AuditEntry.objects.get(action=AuditAction.CONSENT)
    assert entry.changes["sha256"] == record.sha256
    assert entry.plan_version == ready_plan.version


def test_the_consented_sheet_downloads_byte_identical_after_admin_changes(
    colleague_client, surgeon_client, ready_plan
):
    sign(colleague_client, ready_plan)
    record = ConsentRecord.objects.get(plan=ready_plan)

    first = colleague_client.get(reverse("consent_pdf", args=[ready_plan.pk]))
    TreatmentZone.objects.filter(code="CHEEK_L").update(name="Renamed cheek")
    new_rule_set_with(zone_volume_ml={"maximum": Decimal("0.4")})
    ConsentText.objects.create(
        key="risks", version=2, title="Risks (new)", body="Changed.", reason="Test"
    )
    second = colleague_client.get(reverse("consent_pdf", args=[ready_plan.pk]))
    by_surgeon = surgeon_client.get(reverse("consent_pdf", args=[ready_plan.pk]))

    for response in (first, second, by_surgeon):
        assert response.status_code == 200
        assert response.content == bytes(record.pdf)
        assert response["Content-Disposition"] == (
            f'inline; filename="consent-plan-{ready_plan.pk}-v{record.plan_version}.pdf"'
        )
    assert "Renamed cheek" not in pdf_text(second.content)
    copies = AuditEntry.objects.filter(action=AuditAction.PRINT, changes__copy="signed")
    assert copies.count() == 3


def test_the_consent_page_shows_the_record_once_signed(colleague_client, ready_plan):
    sign(colleague_client, ready_plan)
    record = ConsentRecord.objects.get(plan=ready_plan)

    html = colleague_client.get(reverse("consent_sheet", args=[ready_plan.pk])).content.decode()

    assert record.sha256 in html
    assert "Wendy Witness" in html
    assert "Record consent" not in html


def test_a_stale_version_is_refused_with_409(colleague_client, ready_plan):
    stale = ready_plan.version
    TreatmentPlan.objects.filter(pk=ready_plan.pk).update(version=stale + 1)

    response = sign(colleague_client, ready_plan, version=stale)

    assert response.status_code == 409
    assert "changed since you opened this page" in response.content.decode()
    ready_plan.refresh_from_db()
    assert ready_plan.status == PlanStatus.READY
    assert not ConsentRecord.objects.exists()


def test_a_second_recording_of_a_consented_plan_is_refused(colleague_client, ready_plan):
    version = ready_plan.version
    sign(colleague_client, ready_plan)
    response = sign(colleague_client, ready_plan, version=version)
    assert response.status_code == 409
    assert ConsentRecord.objects.count() == 1


def test_a_draft_plan_cannot_be_recorded_as_consented(colleague_client, plan):
    response = sign(colleague_client, plan)
    assert response.status_code == 409
    plan.refresh_from_db()
    assert plan.status == PlanStatus.DRAFT


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"patient_signed": ""}, "only once the patient has signed"),
        ({"signed_on": "2999-01-01"}, "cannot be in the future"),
        ({"witness_name": "  "}, "name of the witness"),
    ],
)
def test_bad_signature_details_are_refused(colleague_client, ready_plan, overrides, message):
    response = sign(colleague_client, ready_plan, **overrides)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not ConsentRecord.objects.exists()


def _days_ago(days: int) -> datetime.date:
    return timezone.localdate() - datetime.timedelta(days=days)


def test_a_sheet_printed_before_a_change_is_never_recorded_as_signed(colleague_client, ready_plan):
    printed_id = consent.current_document_id(ready_plan)
    # The patient's details change after the sheet was printed (the plan's version does not).
    Patient.objects.filter(pk=ready_plan.patient_id).update(name="Alice Changed-Name")
    ready_plan.patient.refresh_from_db()
    current_id = consent.current_document_id(ready_plan)
    assert current_id != printed_id

    response = sign(colleague_client, ready_plan, document_id=printed_id, witness_name="Wendy W")

    assert response.status_code == 409
    page = response.content.decode()
    assert f"The signed sheet is document {printed_id}" in page
    assert f"this plan&#x27;s sheet is now {current_id}" in page
    assert "Print the current sheet and have it signed" in page
    assert 'value="Wendy W"' in page  # what staff typed is kept
    assert not ConsentRecord.objects.exists()
    ready_plan.refresh_from_db()
    assert ready_plan.status == PlanStatus.READY


def test_the_document_id_may_be_typed_in_lower_case_and_with_spaces(colleague_client, ready_plan):
    typed = " " + consent.current_document_id(ready_plan).lower().replace("-", " - ") + " "

    response = sign(colleague_client, ready_plan, document_id=typed)

    assert response.status_code == 302
    assert ConsentRecord.objects.get(plan=ready_plan).document_id == (
        consent.current_document_id(ready_plan)
    )


@pytest.mark.parametrize("typed", ["", "NF-123", "NF-ABCDE-FGHI1", "3WZ77-NJFAX", "x" * 41])
def test_a_malformed_document_id_is_refused_with_an_example(colleague_client, ready_plan, typed):
    response = sign(colleague_client, ready_plan, document_id=typed)

    assert response.status_code == 422
    assert "document id" in response.content.decode()
    assert not ConsentRecord.objects.exists()


def test_a_signing_date_before_the_sheet_was_first_printed_is_refused(colleague_client, ready_plan):
    TreatmentPlan.objects.filter(pk=ready_plan.pk).update(
        updated_at=timezone.now() - datetime.timedelta(days=10)
    )
    colleague_client.get(reverse("consent_pdf", args=[ready_plan.pk]))  # printed today

    response = sign(colleague_client, ready_plan, signed_on=_days_ago(1).isoformat())

    assert response.status_code == 409
    assert "was first printed" in response.content.decode()
    assert not ConsentRecord.objects.exists()


def test_a_sheet_never_downloaded_may_be_signed_from_the_plans_last_change_on(
    colleague_client, ready_plan
):
    # Printed from the browser's preview: no download, so the plan's last change is the bound.
    refused = sign(colleague_client, ready_plan, signed_on=_days_ago(1).isoformat())
    assert refused.status_code == 409
    assert "shows the plan as it has been since" in refused.content.decode()

    TreatmentPlan.objects.filter(pk=ready_plan.pk).update(
        updated_at=timezone.now() - datetime.timedelta(days=10)
    )
    ready_plan.refresh_from_db()
    accepted = sign(colleague_client, ready_plan, signed_on=_days_ago(1).isoformat())
    assert accepted.status_code == 302
    assert ConsentRecord.objects.get(plan=ready_plan).signed_on == _days_ago(1)


def test_a_second_submission_says_the_consent_is_already_recorded(colleague_client, ready_plan):
    assert sign(colleague_client, ready_plan).status_code == 302

    response = sign(colleague_client, ready_plan)

    assert response.status_code == 409
    assert "consent has already been recorded" in response.content.decode()
    assert ConsentRecord.objects.count() == 1


# --- hostile and unusual text --------------------------------------------------------------------


def _render(plan: TreatmentPlan) -> tuple[str, pdf.RenderResult]:
    state = consent.sheet_state(plan)
    html, _ = consent.render_html(state, for_pdf=True)
    return html, pdf.render_pdf(html)


def test_markup_and_urls_in_patient_text_render_as_text_and_fetch_nothing(clinic, surgeon):
    patient = PatientFactory(
        clinic=clinic, name=PAYLOADS[0], notes="\n".join(PAYLOADS), allergies=PAYLOADS[2][:300]
    )
    plan = TreatmentPlanFactory(patient=patient, surgeon=surgeon, notes="\n".join(PAYLOADS))
    PlannedInjectionFactory(plan=plan, notes=PAYLOADS[1], position=0)

    html, result = _render(plan)

    # Escaped in the HTML: no element, no style attribute, no URL made of a user value.
    assert "<img" not in html
    assert "&lt;img src=&quot;file:///etc/passwd&quot;&gt;" in html
    assert 'style="' not in html
    assert "<link rel=attachment" not in html
    # The renderer was asked for nothing but the static files.
    static = [root.as_uri() + "/" for root in pdf.static_roots()]
    assert result.refused == ()
    assert all(any(url.startswith(root) for root in static) for url in result.requested)
    # Shown as text, and no attachment in the PDF.
    text = squeezed(pdf_text(result.pdf))
    for payload in PAYLOADS:
        assert squeezed(payload) in text
    assert PdfReader(io.BytesIO(result.pdf)).attachments == {}
    assert b"/EmbeddedFile" not in result.pdf


def test_a_20000_character_word_wraps_and_renders_completely(clinic, surgeon):
    word = "x" * 20_000
    patient = PatientFactory(clinic=clinic, notes=f"Start {word} end")
    plan = TreatmentPlanFactory(patient=patient, surgeon=surgeon)
    PlannedInjectionFactory(plan=plan, position=0)

    _, result = _render(plan)

    # Page breaks put the running header and footer between the pieces of the word.
    text = squeezed(pdf_text(result.pdf))
    assert "Startxxxx" in text
    assert "xxxxend" in text
    assert text.count("x") >= 20_000
    # Wrapped onto the page: every word box lies inside the page width.
    assert_inside_pages(result.pdf)


def test_a_200_kb_note_renders_completely_or_fails_cleanly_within_the_limit(clinic, surgeon):
    sentence = "The patient read the leaflet and asked about bruising. "
    note = (sentence * (200_000 // len(sentence) + 1))[:200_000]
    patient = PatientFactory(clinic=clinic, notes=note)
    plan = TreatmentPlanFactory(patient=patient, surgeon=surgeon, notes=note)
    PlannedInjectionFactory(plan=plan, position=0)
    limit = 20.0

    state = consent.sheet_state(plan)
    html, _ = consent.render_html(state, for_pdf=True)
    start = time.monotonic()
    try:
        result = pdf.render_pdf(html, timeout=limit)
    except pdf.PdfRenderTimeout:
        assert time.monotonic() - start < limit + 5
    else:
        assert time.monotonic() - start < limit + 5
        text = pdf_text(result.pdf)
        assert text.count("leaflet") == 2 * (200_000 // len(sentence))
    # The renderer serves the next request either way.
    assert pdf.render_pdf(pdf.MINIMAL_DOCUMENT).pdf.startswith(b"%PDF")


def test_a_render_over_the_time_limit_is_stopped_and_the_next_one_works(clinic, surgeon):
    patient = PatientFactory(clinic=clinic, notes="word " * 40_000)
    plan = TreatmentPlanFactory(patient=patient, surgeon=surgeon)
    html, _ = consent.render_html(consent.sheet_state(plan), for_pdf=True)

    start = time.monotonic()
    with pytest.raises(pdf.PdfRenderTimeout):
        pdf.render_pdf(html, timeout=0.2)
    assert time.monotonic() - start < 3

    assert pdf.render_pdf(pdf.MINIMAL_DOCUMENT).pdf.startswith(b"%PDF")


def test_a_timeout_answers_with_an_error_page(colleague_client, ready_plan, settings):
    settings.PDF_RENDER_TIMEOUT_SECONDS = 0.01
    response = colleague_client.get(reverse("consent_pdf", args=[ready_plan.pk]))
    assert response.status_code == 503
    assert "could not be made" in response.content.decode()
    assert not AuditEntry.objects.filter(action=AuditAction.PRINT).exists()
    settings.PDF_RENDER_TIMEOUT_SECONDS = 20
    assert colleague_client.get(reverse("consent_pdf", args=[ready_plan.pk])).status_code == 200


@pytest.mark.parametrize(
    ("name", "font"),
    [
        ("Zoë Ångström-Çelik Øster", "Nanofat-Sans"),
        ("王小明", "Nanofat-CJK"),
        ("ليلى حسن", "Nanofat-Arabic"),
    ],
)
def test_names_in_other_scripts_render_with_the_bundled_fonts(clinic, surgeon, name, font):
    patient = PatientFactory(clinic=clinic, name=name)
    plan = TreatmentPlanFactory(patient=patient, surgeon=surgeon)
    PlannedInjectionFactory(plan=plan, position=0)

    _, result = _render(plan)

    fonts = embedded_fonts(result.pdf)
    assert any(f.endswith(font) for f in fonts), fonts
    # Only the project's own fonts: nothing came from the machine's font folders.
    assert all("+Nanofat-" in f for f in fonts), fonts
    text = pdftotext(result.pdf)
    letters = name.replace(" ", "")
    if font == "Nanofat-Arabic":  # extraction may give right-to-left text in visual order
        assert letters in squeezed(text) or letters[::-1] in squeezed(text)
    else:
        assert name in text


def test_a_40_injection_plan_fits_the_layout(clinic, surgeon):
    patient = PatientFactory(clinic=clinic)
    plan = TreatmentPlanFactory(patient=patient, surgeon=surgeon, rule_set=RuleSet.current())
    zones = list(TreatmentZone.objects.exclude(region="perioral"))
    for index in range(40):
        PlannedInjectionFactory(
            plan=plan,
            zone_code=zones[index % len(zones)].code,
            volume_ml=Decimal("0.15"),
            gauge=27 + index % 4,
            notes="Microdroplets" if index % 3 == 0 else "",
            position=index,
        )
    make_ready(plan)

    state = consent.sheet_state(plan)
    assert state.signable, state.blockers
    html, _ = consent.render_html(state, for_pdf=True)
    result = pdf.render_pdf(html)

    text = pdf_text(result.pdf)
    assert f"Overall ({len(zones)} zones, 40 injections)" in text
    for zone in zones:
        assert zone.name in text
    assert re.search(r"\b40\s+\S", text)  # the last row's number
    assert page_count(result.pdf) <= 6
    assert_inside_pages(result.pdf)
    assert len(result.pdf) < 100 * 1024


def test_the_face_map_hatches_and_labels_every_planned_zone(ready_plan):
    state = consent.sheet_state(ready_plan)
    html, _ = consent.render_html(state, for_pdf=True)
    svg = re.search(r"<svg.*?</svg>", html, flags=re.S).group(0)

    # The builder's whole outline, drawn as one path.
    outline = render_to_string(consent.FACE_OUTLINE)
    for shape in re.findall(r' d="([^"]+)"', outline):
        assert shape in consent.face_outline_path()
    subpaths = outline.count("<path") + outline.count("<circle")
    assert consent.face_outline_path().count("M") >= subpaths
    # One hatched path holds every planned zone; each zone has its code and volume on the map.
    (hatched,) = re.findall(r'<path d="([^"]*)" fill="url\(#hatch\)"', svg)
    labels = re.findall(r"<text [^>]*>([^<]*)</text>", svg)
    planned = state.builder.zone_totals
    assert len(planned) == 2
    for view in planned:
        assert view.zone.shape.strip() in hatched
        assert view.zone.short_label in labels
    assert sorted(labels[len(planned) :]) == ["0.2", "0.3"]


def test_every_signer_has_lines_to_sign_and_date_on(ready_plan):
    from weasyprint.formatting_structure.boxes import TableCellBox

    html, _ = consent.render_html(consent.sheet_state(ready_plan), for_pdf=True)
    fetcher = pdf.StaticOnlyFetcher(pdf.static_roots())
    document = pdf._Html(
        string=html, base_url=pdf.base_url_for(fetcher.roots), url_fetcher=fetcher
    ).render(font_config=pdf.font_config())

    lines = [
        box
        for page in document.pages
        for box in page._page_box.descendants()
        if isinstance(box, TableCellBox) and "rule-line" in (box.element.get("class") or "")
    ]
    # A signature line for the patient, the surgeon and the witness, and the witness's name.
    assert len(lines) == 4
    assert all(box.border_bottom_width > 0 and box.width > 0 for box in lines)


# --- the wording ---------------------------------------------------------------------------------


def test_an_admin_edit_of_the_wording_is_a_new_version_the_sheet_uses(
    admin_role_client, colleague_client, ready_plan
):
    old = ConsentText.objects.get(key="alternatives", version=1)
    url = reverse("admin:planner_consenttext_change", args=[old.pk])
    data = {
        "title": "Other options",
        "body": "Hyaluronic acid fillers remain an option for volume (ref 5).",
        "sources": "5",
        "reason": "Clinic's legal wording",
    }

    response = admin_role_client.post(url, data)

    assert response.status_code == 302, response.content.decode()[:2000]
    old.refresh_from_db()
    assert old.title == "Alternatives"  # unchanged
    new = ConsentText.objects.get(key="alternatives", version=2)
    assert new.reason == "Clinic's legal wording"
    text = pdf_text(colleague_client.get(reverse("consent_pdf", args=[ready_plan.pk])).content)
    assert "Other options" in text
    assert "alternatives v2" in text
    sign(colleague_client, ready_plan)
    assert ConsentRecord.objects.get().consent_text_versions["alternatives"] == 2


def test_a_wording_change_needs_a_reason(admin_role_client):
    old = ConsentText.objects.get(key="risks", version=1)
    url = reverse("admin:planner_consenttext_change", args=[old.pk])
    response = admin_role_client.post(
        url, {"title": old.title, "body": old.body, "sources": old.sources, "reason": ""}
    )
    assert response.status_code == 200
    assert not ConsentText.objects.filter(key="risks", version=2).exists()


def _wording_change(old: ConsentText, **changes) -> dict:
    fields = {"title": old.title, "body": old.body, "sources": old.sources}
    return fields | {"reason": "Clinic's legal wording"} | changes


def test_save_and_continue_goes_on_to_the_new_wording_version(admin_role_client):
    old = ConsentText.objects.get(key="alternatives", version=1)
    url = reverse("admin:planner_consenttext_change", args=[old.pk])
    body = old.body + "\n\nAsk your surgeon about the options (ref 5)."

    response = admin_role_client.post(url, _wording_change(old, body=body, _continue="1"))

    new = ConsentText.objects.get(key="alternatives", version=2)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:planner_consenttext_change", args=[new.pk])
    assert "Ask your surgeon" in admin_role_client.get(response["Location"]).content.decode()


def test_an_older_wording_version_is_read_only(admin_role_client):
    old = ConsentText.objects.get(key="alternatives", version=1)
    url = reverse("admin:planner_consenttext_change", args=[old.pk])
    admin_role_client.post(url, _wording_change(old, title="Other options"))

    response = admin_role_client.post(url, _wording_change(old, title="Back to the old"))

    assert response.status_code == 403
    assert ConsentText.current()["alternatives"].title == "Other options"


def test_a_wording_version_without_a_change_is_refused(admin_role_client):
    old = ConsentText.objects.get(key="alternatives", version=1)
    url = reverse("admin:planner_consenttext_change", args=[old.pk])

    response = admin_role_client.post(url, _wording_change(old))

    assert response.status_code == 200
    assert "Nothing changed" in response.content.decode()
    assert not ConsentText.objects.filter(key="alternatives", version=2).exists()


@pytest.mark.parametrize(
    ("changes", "cited"),
    [
        ({"body": "A claim of our own (ref 9)."}, "9"),
        ({"body": "Two claims (refs 1-4, 7)."}, "7"),
        ({"sources": "5, 12"}, "12"),
    ],
)
def test_wording_may_cite_only_the_clinical_summarys_references(admin_role_client, changes, cited):
    old = ConsentText.objects.get(key="alternatives", version=1)
    url = reverse("admin:planner_consenttext_change", args=[old.pk])

    response = admin_role_client.post(url, _wording_change(old, **changes))

    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert (
        f"Cites reference {cited}, but the clinical summary's references run from 1 to 6." in page
    )
    assert not ConsentText.objects.filter(key="alternatives", version=2).exists()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "One (ref 1).\n\n- two\n- three",
            "<p>One (ref 1).</p>|<ul><li>two</li><li>three</li></ul>",
        ),
        (
            "Before:\n- two\n- three\nAfter.",
            "<p>Before:</p>|<ul><li>two</li><li>three</li></ul>|<p>After.</p>",
        ),
        ("A line\nand its continuation", "<p>A line and its continuation</p>"),
        ("- <b>bold</b>", "<ul><li>&lt;b&gt;bold&lt;/b&gt;</li></ul>"),
    ],
)
def test_wording_blocks_become_paragraphs_and_lists(body, expected):
    rendered = wording(body).replace('<span class="ref">', "").replace("</span>", "")
    assert rendered.split("\n") == expected.split("|")


def test_the_default_wording_cites_the_clinical_summary(db):
    texts = ConsentText.current()
    assert set(texts) == {
        "what_is_nanofat",
        "what_it_is_not",
        "harvest",
        "benefits",
        "expected_course",
        "risks",
        "alternatives",
        "combination",
        "declaration",
    }
    for key, text in texts.items():
        if key == "declaration":  # the patient's statement: no clinical claim
            continue
        for sentence in re.split(r"(?<=[.)])\s+(?=[A-Z-])", text.body.replace("\n", " ")):
            assert re.search(r"\(refs? [0-9]", sentence), (key, sentence)


# --- PDF inspection helpers ---------------------------------------------------------------------


def embedded_fonts(data: bytes) -> set[str]:
    names = set()
    for page in PdfReader(io.BytesIO(data)).pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            names.add(str(font.get_object()["/BaseFont"]).lstrip("/"))
    return names


def pdftotext(data: bytes) -> str:
    return subprocess.run(  # noqa: S603  (a fixed program, our own PDF on stdin)
        [PDFTOTEXT, "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()


def assert_inside_pages(data: bytes) -> None:
    """Every word that pdftotext finds lies within its page's width."""
    xml = subprocess.run(  # noqa: S603  (a fixed program, our own PDF on stdin)
        [PDFTOTEXT, "-bbox", "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()
    for page in re.finditer(r'<page width="([\d.]+)".*?</page>', xml, flags=re.S):
        width = float(page.group(1))
        for x_max in re.findall(r'xMax="([\d.]+)"', page.group(0)):
            assert float(x_max) <= width, (x_max, width)


def test_the_signed_on_date_must_not_be_before_2000(colleague_client, ready_plan):
    response = sign(colleague_client, ready_plan, signed_on=datetime.date(1999, 12, 31).isoformat())
    assert response.status_code == 422

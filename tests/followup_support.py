"""Helpers shared by the follow-up tests: performing a plan for real, building photos."""

import datetime
import io
from decimal import Decimal

from PIL import Image

#: The URL names of the follow-up block of planner/urls.py. Their role matrix is
#: tests/test_followup_roles.py (which checks this set against planner/urls.py);
#: tests/test_role_matrix.py leaves them to it.
FOLLOW_UP_URL_NAMES = frozenset(
    {
        "dashboard",
        "plan_followup",
        "followup_schedule",
        "followup_unscheduled",
        "plan_followup_chart",
        "followup_summary_pdf",
        "followup_visit",
        "followup_status",
        "patient_followup",
        "patient_followup_chart",
        "plan_photos",
        "photo_compare",
        "photo_file",
        "photo_delete",
        "export_page",
        "export_audit_csv",
    }
)

VISIT_OK = {
    "visited_on": "",
    "gais_surgeon": "2",
    "gais_patient": "3",
    "satisfaction": "4",
    "faceq_scale": "",
    "faceq_total": "",
    "notes": "",
}
POSAS_PATIENT_OK = {
    "posas_patient_pain": "2",
    "posas_patient_itching": "3",
    "posas_patient_colour": "4",
    "posas_patient_stiffness": "3",
    "posas_patient_thickness": "2",
    "posas_patient_irregularity": "5",
    "posas_patient_overall": "4",
}
POSAS_OBSERVER_OK = {
    "posas_observer_vascularity": "3",
    "posas_observer_pigmentation": "2",
    "posas_observer_thickness": "4",
    "posas_observer_relief": "3",
    "posas_observer_pliability": "2",
    "posas_observer_surface_area": "2",
    "posas_observer_overall": "3",
}
VSS_OK = {
    "vss_vascularity": "1",
    "vss_pigmentation": "1",
    "vss_pliability": "2",
    "vss_height": "1",
    "vss_version": "vss_1990",
}


def perform(plan, actor):
    """Takes a draft plan through consent and the procedure day's completion, as the procedure
    page does (``procedure_complete`` is where the follow-up schedule is made)."""
    from planner import procedure
    from planner.models import PerformedInjection, ProcessingRecord, TreatmentPlan

    TreatmentPlan.objects.filter(pk=plan.pk).update(status="consented")
    plan.refresh_from_db()
    ProcessingRecord.objects.create(
        plan=plan,
        donor_site="abdomen",
        harvest_volume_ml=Decimal("20"),
        nanofat_yield_ml=Decimal("4"),
        recorded_by=actor,
    )
    for injection in plan.injections.all():
        PerformedInjection.objects.create(
            plan=plan,
            zone=injection.zone,
            volume_ml=injection.volume_ml,
            instrument=injection.instrument,
            gauge=injection.gauge,
            depth=injection.depth,
            technique=injection.technique,
            position=injection.position,
        )
    procedure.procedure_complete(
        plan=plan,
        reasons={},
        adverse_events="",
        stamp=procedure.procedure_state(plan).stamp,
        actor=actor,
    )
    plan.refresh_from_db()
    return plan


def make_scar_plan(plan):
    from planner.models import TreatmentPlan

    TreatmentPlan.objects.filter(pk=plan.pk).update(goal="scar", indications=["scars"])
    plan.refresh_from_db()
    return plan


def visit_post(follow_up, **overrides) -> dict:
    data = dict(VISIT_OK)
    data["visited_on"] = datetime.date.today().isoformat()
    data["version"] = str(follow_up.version)
    data.update(overrides)
    return data


def jpeg_bytes(size=(320, 240), colour="red", exif=None, **save) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", size, colour)
    if exif is not None:
        save["exif"] = exif
    image.save(buffer, format="JPEG", **save)
    return buffer.getvalue()


def png_bytes(size=(200, 150), colour="blue") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def gps_exif():
    """An EXIF block with a GPS position (51.5N, 0.12W), a camera make and a serial number."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0xA431] = "SERIAL-123456"  # BodySerialNumber
    exif[0x0112] = 1  # Orientation
    gps = {
        1: "N",
        2: (51.0, 30.0, 0.0),
        3: "W",
        4: (0.0, 7.0, 0.0),
    }
    exif[0x8825] = gps  # GPSInfo IFD
    return exif

"""Clinical photos: validation by content, EXIF stripped, private storage, clinic-checked
serving, comparison and permissions."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from planner import photos
from planner.models import AuditEntry, Photo
from tests.followup_support import gps_exif, jpeg_bytes, perform, png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def photo_root(tmp_path, settings):
    settings.PHOTO_ROOT = tmp_path / "photos"
    return settings.PHOTO_ROOT


@pytest.fixture
def performed(plan, surgeon):
    return perform(plan, surgeon)


def upload_url(plan) -> str:
    return reverse("plan_photos", args=[plan.pk])


def upload(client, plan, content: bytes, *, name="face.jpg", content_type="image/jpeg", **fields):
    data = {
        "timepoint": "baseline",
        "view": "front",
        "zone": "",
        "taken_on": timezone.localdate().isoformat(),
        "image": SimpleUploadedFile(name, content, content_type=content_type),
    } | fields
    return client.post(upload_url(plan), data)


def stored_files(root) -> list:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


# --- validation --------------------------------------------------------------------------------


def test_a_jpeg_is_stored_outside_the_public_paths_and_served_to_the_clinic(
    surgeon_client, performed, photo_root, settings
):
    response = upload(surgeon_client, performed, jpeg_bytes())
    assert response.status_code == 302, response.content.decode()[:2000]
    photo = Photo.objects.get()
    path = photos.path_of(photo.file_name)
    assert path.is_relative_to(photo_root)
    assert not path.is_relative_to(settings.STATIC_ROOT)
    assert all(not path.is_relative_to(d) for d in settings.STATICFILES_DIRS)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    served = surgeon_client.get(reverse("photo_file", args=[photo.pk]))
    assert served.status_code == 200
    assert served["Content-Type"] == "image/jpeg"
    assert "no-store" in served["Cache-Control"]
    assert b"".join(served.streaming_content) == path.read_bytes()
    assert AuditEntry.objects.filter(object_type="photo", action="create").exists()


def test_gps_and_camera_exif_are_stripped(surgeon_client, performed):
    original = jpeg_bytes(exif=gps_exif())
    with Image.open(io.BytesIO(original)) as check:  # the test photo does carry a location
        assert check.getexif().get_ifd(0x8825)
    assert upload(surgeon_client, performed, original).status_code == 302
    photo = Photo.objects.get()
    stored = photos.path_of(photo.file_name).read_bytes()
    assert b"Exif" not in stored
    assert b"SERIAL-123456" not in stored
    assert b"PhoneMaker" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert dict(image.getexif()) == {}
        assert not image.getexif().get_ifd(0x8825)
        assert "exif" not in image.info
        assert image.size == (320, 240)


def test_the_exif_orientation_is_applied_before_it_is_removed(surgeon_client, performed):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    assert upload(surgeon_client, performed, jpeg_bytes(size=(400, 200), exif=exif)).status_code
    photo = Photo.objects.get()
    assert (photo.width, photo.height) == (200, 400)


def test_a_forged_content_type_is_refused_with_a_clear_message(surgeon_client, performed):
    script = b"<?php system($_GET['c']); ?>" + b"\x00" * 200
    response = upload(surgeon_client, performed, script, name="face.jpg", content_type="image/jpeg")
    assert response.status_code == 422
    page = response.content.decode()
    assert "not a JPEG, PNG or HEIC photo although it was sent as image/jpeg" in page
    assert not Photo.objects.exists()


def test_a_gif_renamed_as_jpeg_is_refused_by_its_content(surgeon_client, performed):
    buffer = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buffer, format="GIF")
    response = upload(surgeon_client, performed, buffer.getvalue(), name="x.jpg")
    assert response.status_code == 422
    assert "This is a GIF image" in response.content.decode()


def test_a_truncated_jpeg_is_refused(surgeon_client, performed, photo_root):
    response = upload(surgeon_client, performed, jpeg_bytes()[:300])
    assert response.status_code == 422
    assert "damaged or incomplete" in response.content.decode()
    assert stored_files(photo_root) == []


def test_an_oversized_file_is_refused(surgeon_client, performed, settings, photo_root):
    settings.PHOTO_MAX_BYTES = 20_000
    buffer = io.BytesIO()
    Image.effect_noise((200, 150), 120).convert("RGB").save(buffer, format="JPEG", quality=100)
    big = buffer.getvalue()
    assert 20_000 < len(big) < 60_000  # past the limit, within the request's allowance
    response = upload(surgeon_client, performed, big)
    assert response.status_code == 422
    assert "photos may be at most 20 KB" in response.content.decode()
    assert not Photo.objects.exists()
    assert stored_files(photo_root) == []


def test_a_huge_request_is_refused_before_it_is_read(surgeon_client, performed, settings):
    settings.PHOTO_MAX_BYTES = 10_000
    response = upload(surgeon_client, performed, b"\xff" * 200_000)
    assert response.status_code == 413
    assert "larger than" in response.content.decode()


def test_too_many_pixels_are_refused(surgeon_client, performed, settings):
    settings.PHOTO_MAX_DIMENSION = 100
    response = upload(surgeon_client, performed, png_bytes(size=(120, 80)), name="a.png")
    assert response.status_code == 422
    assert "120 x 80 pixels" in response.content.decode()


def test_a_png_stays_a_png_without_its_text_chunks(surgeon_client, performed):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Location", "51.5N 0.12W")
    buffer = io.BytesIO()
    Image.new("RGB", (50, 40), "green").save(buffer, format="PNG", pnginfo=info)
    response = upload(
        surgeon_client, performed, buffer.getvalue(), name="a.png", content_type="image/png"
    )
    assert response.status_code == 302
    photo = Photo.objects.get()
    assert photo.content_type == "image/png"
    assert b"51.5N" not in photos.path_of(photo.file_name).read_bytes()


def test_a_heic_photo_is_converted_to_jpeg(surgeon_client, performed):
    pytest.importorskip("pillow_heif")
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(buffer, format="HEIF")
    response = upload(
        surgeon_client, performed, buffer.getvalue(), name="a.heic", content_type="image/heic"
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    photo = Photo.objects.get()
    assert (photo.content_type, photo.original_format) == ("image/jpeg", "HEIF")
    assert photos.path_of(photo.file_name).read_bytes()[:3] == b"\xff\xd8\xff"


def test_a_close_up_needs_its_zone(surgeon_client, performed):
    response = upload(surgeon_client, performed, jpeg_bytes(), view="close_up")
    assert response.status_code == 422
    assert "Choose the zone this close-up shows." in response.content.decode()
    ok = upload(surgeon_client, performed, jpeg_bytes(), view="close_up", zone="CHEEK_L")
    assert ok.status_code == 302
    assert Photo.objects.get().zone.code == "CHEEK_L"


def test_the_clean_module_refuses_an_empty_file():
    with pytest.raises(photos.PhotoRejected, match="empty"):
        photos.clean_upload(SimpleUploadedFile("a.jpg", b"", content_type="image/jpeg"))


def test_a_stored_name_cannot_leave_the_photo_root(photo_root):
    with pytest.raises(photos.PhotoRejected):
        photos.path_of("../../etc/passwd")


# --- access -------------------------------------------------------------------------------------


@pytest.fixture
def photo(surgeon_client, performed):
    assert upload(surgeon_client, performed, jpeg_bytes()).status_code == 302
    return Photo.objects.get()


def test_another_clinics_photo_url_is_404(outsider_client, photo):
    assert outsider_client.get(reverse("photo_file", args=[photo.pk])).status_code == 404
    assert outsider_client.post(reverse("photo_delete", args=[photo.pk])).status_code == 404
    assert Photo.objects.filter(pk=photo.pk).exists()


def test_anonymous_users_are_sent_to_login(photo):
    response = Client().get(reverse("photo_file", args=[photo.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_photos_are_never_reachable_as_static_or_media_files(client, photo, settings):
    assert not str(settings.PHOTO_ROOT).startswith(str(settings.STATIC_ROOT))
    assert client.get("/static/" + photo.file_name).status_code == 404
    assert client.get("/media/" + photo.file_name).status_code in (302, 404)


def test_staff_upload_and_view_but_cannot_delete(colleague_client, performed, photo):
    assert colleague_client.get(reverse("photo_file", args=[photo.pk])).status_code == 200
    response = upload(colleague_client, performed, png_bytes(), name="b.png")
    assert response.status_code == 302
    assert colleague_client.post(reverse("photo_delete", args=[photo.pk])).status_code == 403


def test_a_surgeon_deletes_a_photo_and_its_file(
    surgeon_client, photo, django_capture_on_commit_callbacks
):
    path = photos.path_of(photo.file_name)
    with django_capture_on_commit_callbacks(execute=True):
        response = surgeon_client.post(reverse("photo_delete", args=[photo.pk]))
    assert response.status_code == 302
    assert not Photo.objects.filter(pk=photo.pk).exists()
    assert not path.exists()
    assert AuditEntry.objects.filter(object_type="photo", action="delete").exists()


def test_the_clinic_admin_views_but_cannot_upload(admin_role_client, performed, photo):
    assert admin_role_client.get(reverse("photo_file", args=[photo.pk])).status_code == 200
    assert upload(admin_role_client, performed, jpeg_bytes()).status_code == 403


# --- comparison ----------------------------------------------------------------------------------


def test_baseline_and_follow_up_are_shown_side_by_side(surgeon_client, performed):
    follow_up = performed.follow_ups.order_by("due_on").first()
    upload(surgeon_client, performed, jpeg_bytes(colour="red"))
    upload(surgeon_client, performed, jpeg_bytes(colour="green"), timepoint=str(follow_up.pk))
    baseline, later = Photo.objects.order_by("pk")
    assert later.follow_up == follow_up
    page = surgeon_client.get(
        reverse("photo_compare", args=[performed.pk]), {"view": "front", "with": follow_up.pk}
    ).content.decode()
    assert reverse("photo_file", args=[baseline.pk]) in page
    assert reverse("photo_file", args=[later.pk]) in page
    gallery = surgeon_client.get(reverse("plan_photos", args=[performed.pk])).content.decode()
    assert "Standard views not yet taken: Left oblique, Right oblique" in gallery
    profile = surgeon_client.get(
        reverse("photo_compare", args=[performed.pk]), {"view": "profile_left"}
    ).content.decode()
    assert "No baseline photo for this view." in profile


def test_a_photo_uploaded_from_the_visit_page_returns_there(surgeon_client, performed):
    follow_up = performed.follow_ups.order_by("due_on").first()
    response = upload(
        surgeon_client, performed, jpeg_bytes(), timepoint=str(follow_up.pk), next="visit"
    )
    assert response["Location"] == reverse("followup_visit", args=[follow_up.pk])

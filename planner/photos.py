"""Clinical photos: validation by content, re-encoding without metadata, private storage.

An upload is trusted for nothing: not its name, not the browser's content type. Pillow opens
and verifies the bytes; only JPEG, PNG and HEIC/HEIF (converted to JPEG) are kept. Every photo
is re-encoded from its pixels, which drops EXIF (GPS position, camera serial numbers, the time
and place the picture was taken), XMP, IPTC and PNG text chunks; the EXIF orientation is
applied to the pixels first so the photo still stands upright. The colour profile is kept:
colour is part of a scar assessment.

Files live under ``settings.PHOTO_ROOT`` (outside the static files and any media URL), one
folder per clinic, under random names, readable by the server user only. They are served by
``planner.views.photos.photo_file`` after the clinic check, never by a static-file server.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

try:  # HEIC/HEIF (iPhone photos) when pillow-heif is installed; see requirements.txt
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:  # pragma: no cover - the requirements install it
    HEIF_SUPPORTED = False

ACCEPTED_FORMATS = {"JPEG", "PNG"} | ({"HEIF"} if HEIF_SUPPORTED else set())
ACCEPTED_DESCRIPTION = "JPEG, PNG" + (" or HEIC" if HEIF_SUPPORTED else "")
JPEG_QUALITY = 92


class PhotoRejected(ValueError):
    """The upload is not a photo we keep; the message says why and what to do."""


@dataclass(frozen=True)
class CleanPhoto:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int
    original_format: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def max_bytes() -> int:
    return int(settings.PHOTO_MAX_BYTES)


def max_dimension() -> int:
    return int(settings.PHOTO_MAX_DIMENSION)


def _megabytes(size: int) -> str:
    megabytes = size / (1024 * 1024)
    if megabytes < 1:
        return f"{size / 1024:.0f} KB"
    return f"{megabytes:.1f} MB" if megabytes < 10 else f"{megabytes:.0f} MB"


def clean_upload(upload, *, declared_type: str = "") -> CleanPhoto:
    """Validates an uploaded file (a Django UploadedFile or any binary file object) and returns
    the re-encoded photo. Raises PhotoRejected with a message for the person uploading."""
    size = getattr(upload, "size", None)
    if size is not None and size > max_bytes():
        raise PhotoRejected(
            f"The file is {_megabytes(size)}; photos may be at most {_megabytes(max_bytes())}. "
            "Export it at a smaller size and upload it again."
        )
    upload.seek(0)
    data = upload.read(max_bytes() + 1)
    if len(data) > max_bytes():
        raise PhotoRejected(f"Photos may be at most {_megabytes(max_bytes())}.")
    if not data:
        raise PhotoRejected("The file is empty.")
    return clean_bytes(data, declared_type=declared_type)


def clean_bytes(data: bytes, *, declared_type: str = "") -> CleanPhoto:
    with warnings.catch_warnings():
        # A decompression bomb is an error here, not a warning.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as probe:
                found = probe.format or ""
                width, height = probe.size
                probe.verify()
        except (
            UnidentifiedImageError,
            Image.DecompressionBombWarning,
            Image.DecompressionBombError,
        ):
            raise PhotoRejected(_not_a_photo(declared_type)) from None
        except Exception:  # truncated or corrupt files raise many different errors
            raise PhotoRejected(
                "The file is damaged or incomplete and cannot be read as a photo."
            ) from None
        if found not in ACCEPTED_FORMATS:
            raise PhotoRejected(
                f"This is a {found or 'unknown'} image; upload a {ACCEPTED_DESCRIPTION} photo."
            )
        limit = max_dimension()
        if width > limit or height > limit:
            raise PhotoRejected(
                f"The photo is {width} x {height} pixels; at most {limit} pixels on each side "
                "are accepted. Export it at a smaller size."
            )
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                upright = ImageOps.exif_transpose(image)
                return _reencode(upright, found, image.info.get("icc_profile"))
        except PhotoRejected:
            raise
        except Exception:
            raise PhotoRejected(
                "The file is damaged or incomplete and cannot be read as a photo."
            ) from None


def _not_a_photo(declared_type: str) -> str:
    declared = f" although it was sent as {declared_type}" if declared_type else ""
    return (
        f"The file is not a {ACCEPTED_DESCRIPTION} photo{declared}: its content is not an image "
        "we can read. Upload the photo itself, not a renamed file."
    )


def _reencode(image: Image.Image, original_format: str, icc_profile: bytes | None) -> CleanPhoto:
    """Writes the pixels to a new file with nothing but the colour profile."""
    output = io.BytesIO()
    extra = {"icc_profile": icc_profile} if icc_profile else {}
    if original_format == "PNG":
        if image.mode not in ("RGB", "RGBA", "L", "LA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        image.save(output, format="PNG", optimize=True, **extra)
        content_type, extension = "image/png", "png"
    else:
        if image.mode != "RGB":
            image = image.convert("RGB")
        image.save(output, format="JPEG", quality=JPEG_QUALITY, optimize=True, **extra)
        content_type, extension = "image/jpeg", "jpg"
    return CleanPhoto(
        data=output.getvalue(),
        content_type=content_type,
        extension=extension,
        width=image.width,
        height=image.height,
        original_format=original_format,
    )


# --- storage ---


def photo_root() -> Path:
    return Path(settings.PHOTO_ROOT)


def store(photo: CleanPhoto, *, clinic_id: int) -> str:
    """Writes the photo under a new random name; returns the name relative to PHOTO_ROOT."""
    folder = photo_root() / str(int(clinic_id))
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"{int(clinic_id)}/{secrets.token_hex(16)}.{photo.extension}"
    descriptor = os.open(photo_root() / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(photo.data)
    return name


def path_of(file_name: str) -> Path:
    """The stored file's path; refuses any name that would leave PHOTO_ROOT."""
    root = photo_root().resolve()
    path = (root / file_name).resolve()
    if not path.is_relative_to(root):
        raise PhotoRejected("Invalid photo path.")
    return path


def remove(file_name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        path_of(file_name).unlink()

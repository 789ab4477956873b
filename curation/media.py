"""Serving dataset images to logged-in users only, never from a public media URL."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_GET
from PIL import Image as PILImage

from curation.models import Image
from worker.engine.images import InvalidImageError, load_rgb

# Content type from the format the import verified, never from the file name.
CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}


def image_file_path(image: Image) -> Path:
    root = Path(image.dataset.root_path).resolve()
    path = (root / image.relative_path).resolve()
    if not path.is_relative_to(root):
        raise Http404("image outside its dataset")
    return path


@require_GET
@login_required
def image_file(request: HttpRequest, image_id: int) -> FileResponse:
    try:
        image = Image.objects.select_related("dataset").get(pk=image_id, status=Image.Status.OK)
    except Image.DoesNotExist as exc:
        raise Http404("no such image") from exc
    content_type = CONTENT_TYPES.get(image.format)
    path = image_file_path(image)
    if content_type is None or not path.is_file():
        raise Http404("image file unavailable")
    response = FileResponse(open(path, "rb"), content_type=content_type)  # noqa: SIM115
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = "inline"
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# --- Thumbnails ------------------------------------------------------------------------------

THUMBNAIL_MAX_SIDE = 320
THUMBNAIL_QUALITY = 82


def thumbnail_path(sha256: str) -> Path:
    """Where the thumbnail of a content hash lives: identical images share one file."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError("not a SHA-256 hex digest")
    return Path(settings.MEDIA_ROOT) / "thumbnails" / sha256[:2] / f"{sha256}.jpg"


def thumbnail_ensure(image: Image) -> Path:
    """The image's cached JPEG thumbnail (longest side 320 px), generated on first use.

    The file is written under a temporary name and renamed into place, so a concurrent
    request never serves half a file and two generations of the same image are harmless.
    """
    path = thumbnail_path(image.sha256)
    if path.is_file():
        return path
    picture = load_rgb(
        image_file_path(image),
        target_size=THUMBNAIL_MAX_SIDE,
        max_pixels=settings.Q16_MAX_IMAGE_PIXELS,
    )
    picture.thumbnail((THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE), PILImage.Resampling.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".thumb-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            picture.save(handle, format="JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


@require_GET
@login_required
def image_thumbnail(request: HttpRequest, image_id: int) -> FileResponse:
    try:
        image = Image.objects.select_related("dataset").get(pk=image_id, status=Image.Status.OK)
    except Image.DoesNotExist as exc:
        raise Http404("no such image") from exc
    try:
        path = thumbnail_ensure(image)
    except (ValueError, OSError, InvalidImageError) as exc:
        raise Http404("thumbnail unavailable") from exc
    response = FileResponse(open(path, "rb"), content_type="image/jpeg")  # noqa: SIM115
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = "inline"
    response["Cache-Control"] = "private, max-age=86400"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response

"""Serving dataset images to logged-in users only, never from a public media URL."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_GET

from curation.models import Image

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

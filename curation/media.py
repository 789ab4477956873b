"""Serving dataset images to the users who may see them, never from a public media URL.

An image of a dataset the user may not review answers 404, as if it did not exist. The
content type is the format the import verified (never the file name), the file must still
start with that format's signature (a file replaced on disk is refused), and every response
carries nosniff, `Content-Disposition: inline` and a sandboxing CSP, so a browser never
renders it as HTML.

The browser's session login or an API token (`Authorization: Token <key>`, as the review API's
image_url / thumbnail_url are fetched by API clients) authenticate, under the same checks.
Without credentials a browser page load goes to the login page; an API client (a request that
does not accept HTML) gets 401, like the API.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, Http404, HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET
from PIL import Image as PILImage
from rest_framework.authentication import get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from curation.api.authentication import ExpiringTokenAuthentication
from curation.models import Image
from curation.selectors import datasets_visible_to
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


# Leading bytes of each served format: a file that no longer starts with them is refused.
SIGNATURES = {
    "JPEG": (b"\xff\xd8\xff",),
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "GIF": (b"GIF87a", b"GIF89a"),
    "WEBP": (b"RIFF",),
    "BMP": (b"BM",),
    "TIFF": (b"II*\x00", b"MM\x00*"),
}
# Headers of every image response (file or thumbnail).
SAFE_IMAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Disposition": "inline",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


def _unauthorized(detail: str) -> JsonResponse:
    response = JsonResponse({"detail": detail}, status=401)
    response["WWW-Authenticate"] = ExpiringTokenAuthentication.keyword
    return response


def _wants_html(request: HttpRequest) -> bool:
    """A browser loading a page (or a client that names no type): the login redirect."""
    accept = request.META.get("HTTP_ACCEPT", "")
    return not accept or "text/html" in accept


def session_or_token_required(
    view: Callable[..., HttpResponseBase],
) -> Callable[..., HttpResponseBase]:
    """login_required that also accepts an API token, as DRF does (the token first).

    An invalid, expired or inactive user's token answers 401; so does a request without
    credentials that does not accept HTML. A browser without a session goes to the login page.
    """

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
        # DRF's token check, on a DRF view of this plain request (it reads only headers).
        api_request = Request(request)
        if get_authorization_header(api_request):
            try:
                authenticated = ExpiringTokenAuthentication().authenticate(api_request)
            except AuthenticationFailed as exc:
                return _unauthorized(str(exc.detail))
            if authenticated is not None:
                request.user = authenticated[0]
        if not request.user.is_authenticated:
            if _wants_html(request):
                return redirect_to_login(request.get_full_path())
            return _unauthorized("Authentication credentials were not provided.")
        response = view(request, *args, **kwargs)
        patch_vary_headers(response, ("Authorization",))  # the answer depends on the token
        return response

    return wrapped


def _signature_matches(path: Path, image_format: str) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(16)
    if not head.startswith(SIGNATURES.get(image_format, ())):
        return False
    return image_format != "WEBP" or head[8:12] == b"WEBP"


def _visible_image(request: HttpRequest, image_id: int) -> Image:
    """The image if the user may see its dataset; 404 otherwise (no hint that it exists)."""
    try:
        return Image.objects.select_related("dataset").get(
            pk=image_id,
            status=Image.Status.OK,
            dataset__in=datasets_visible_to(request.user),
        )
    except Image.DoesNotExist as exc:
        raise Http404("no such image") from exc


def _safe_image_response(response: FileResponse, *, max_age: int) -> FileResponse:
    for header, value in SAFE_IMAGE_HEADERS.items():
        response[header] = value
    response["Cache-Control"] = f"private, max-age={max_age}"
    return response


def image_file_path(image: Image) -> Path:
    root = Path(image.dataset.root_path).resolve()
    path = (root / image.relative_path).resolve()
    if not path.is_relative_to(root):
        raise Http404("image outside its dataset")
    return path


@require_GET
@session_or_token_required
def image_file(request: HttpRequest, image_id: int) -> FileResponse:
    image = _visible_image(request, image_id)
    content_type = CONTENT_TYPES.get(image.format)
    path = image_file_path(image)
    if content_type is None or not path.is_file():
        raise Http404("image file unavailable")
    if not _signature_matches(path, image.format):
        raise Http404("image file no longer matches its verified format")
    response = FileResponse(open(path, "rb"), content_type=content_type)  # noqa: SIM115
    return _safe_image_response(response, max_age=3600)


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
@session_or_token_required
def image_thumbnail(request: HttpRequest, image_id: int) -> FileResponse:
    image = _visible_image(request, image_id)
    try:
        path = thumbnail_ensure(image)
    except (ValueError, OSError, InvalidImageError) as exc:
        raise Http404("thumbnail unavailable") from exc
    response = FileResponse(open(path, "rb"), content_type="image/jpeg")  # noqa: SIM115
    return _safe_image_response(response, max_age=86400)

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
import io
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET
from PIL import Image as PILImage
from rest_framework.authentication import get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from curation import storage
from curation.api.authentication import ExpiringTokenAuthentication
from curation.models import Image
from curation.selectors import datasets_visible_to
from worker.engine.images import InvalidImageError, load_rgb
from worker.engine.locators import ImageLocator, is_url, read_image_bytes

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
_R = TypeVar("_R", HttpResponse, FileResponse)

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
    return _head_matches(head, image_format)


def _head_matches(head: bytes, image_format: str) -> bool:
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


def _safe_image_response(response: _R, *, max_age: int) -> _R:
    for header, value in SAFE_IMAGE_HEADERS.items():
        response[header] = value
    response["Cache-Control"] = f"private, max-age={max_age}"
    return response


def image_source(image: Image) -> Path | ImageLocator:
    """A loose file's path, or a shard member's locator (read by a range read)."""
    if image.container:
        return ImageLocator(image.container, image.member_offset, image.member_size)
    root = image.dataset.root_path
    if is_url(root):  # an import stored in the bucket: read whole, never a local path
        if ".." in image.relative_path.split("/"):
            raise Http404("image outside its dataset")
        return ImageLocator(f"{root.rstrip('/')}/{image.relative_path}")
    return image_file_path(image)


def _member_response(image: Image, locator: ImageLocator, content_type: str) -> HttpResponse:
    try:
        data = read_image_bytes(locator, max_bytes=settings.Q16_MAX_IMAGE_BYTES)
    except OSError as exc:
        raise Http404("image container unavailable") from exc
    if not _head_matches(data[:16], image.format):
        raise Http404("image member no longer matches its verified format")
    return _safe_image_response(HttpResponse(data, content_type=content_type), max_age=3600)


def image_file_path(image: Image) -> Path:
    root = Path(image.dataset.root_path).resolve()
    path = (root / image.relative_path).resolve()
    if not path.is_relative_to(root):
        raise Http404("image outside its dataset")
    return path


@require_GET
@session_or_token_required
def image_file(request: HttpRequest, image_id: int) -> HttpResponse | FileResponse:
    image = _visible_image(request, image_id)
    content_type = CONTENT_TYPES.get(image.format)
    source = image_source(image)
    if isinstance(source, ImageLocator):
        if content_type is None:
            raise Http404("image file unavailable")
        return _member_response(image, source, content_type)
    path = source
    if content_type is None or not path.is_file():
        raise Http404("image file unavailable")
    if not _signature_matches(path, image.format):
        raise Http404("image file no longer matches its verified format")
    response = FileResponse(open(path, "rb"), content_type=content_type)  # noqa: SIM115
    return _safe_image_response(response, max_age=3600)


# --- Thumbnails ------------------------------------------------------------------------------

THUMBNAIL_MAX_SIDE = 320
THUMBNAIL_QUALITY = 82


def thumbnail_name(sha256: str) -> str:
    """The thumbnail's name in the thumbnails storage: identical images share one file."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError("not a SHA-256 hex digest")
    return f"{sha256[:2]}/{sha256}.jpg"


def thumbnail_path(sha256: str) -> Path:
    """Where the thumbnail of a content hash lives with local storage (under MEDIA_ROOT)."""
    return Path(settings.MEDIA_ROOT) / "thumbnails" / thumbnail_name(sha256)


def thumbnail_ensure(image: Image) -> str:
    """The name of the image's cached JPEG thumbnail (longest side 320 px) in the thumbnails
    storage, generated on first use.

    A local file is written under a temporary name and renamed into place, so a concurrent
    request never serves half a file; a bucket object appears whole on its one put. Two
    generations of the same image are harmless either way (same bytes, same name).
    """
    name = thumbnail_name(image.sha256)
    path = storage.local_path(storage.THUMBNAILS, name)
    if path.is_file() if path is not None else storage.stored_exists(storage.THUMBNAILS, name):
        return name
    picture = load_rgb(
        image_source(image),
        target_size=THUMBNAIL_MAX_SIDE,
        max_pixels=settings.Q16_MAX_IMAGE_PIXELS,
    )
    picture.thumbnail((THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE), PILImage.Resampling.LANCZOS)
    if path is None:
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
        storage.stored_write(storage.THUMBNAILS, name, buffer.getvalue())
        return name
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".thumb-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            picture.save(handle, format="JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return name


def thumbnail_open(image: Image) -> IO[bytes]:
    """The image's thumbnail (generated on first use), open for reading; the caller closes it."""
    return storage.storage(storage.THUMBNAILS).open(thumbnail_ensure(image), "rb")


@require_GET
@session_or_token_required
def image_thumbnail(request: HttpRequest, image_id: int) -> FileResponse:
    image = _visible_image(request, image_id)
    try:
        handle = thumbnail_open(image)
    except (ValueError, OSError, InvalidImageError) as exc:
        raise Http404("thumbnail unavailable") from exc
    # Streamed through this view (not a presigned bucket URL): the access check and the
    # security headers stay on every response.
    response = FileResponse(handle, content_type="image/jpeg")
    return _safe_image_response(response, max_age=86400)

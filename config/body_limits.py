"""How big a request body may be, per endpoint, enforced before anything reads the body.

Limits (bytes):

* every endpoint: ``Q16_MAX_BODY_BYTES`` (1 MiB; login, the review API, forms, the admin);
* prompt-file imports (``prompt-import``, ``api-prompt-versions-import``): a 16 MiB file plus
  ``FORM_OVERHEAD_BYTES``;
* hash-bank uploads (``BANK_FILE_URL_NAMES``): ``Q16_MAX_BANK_BYTES`` plus
  ``FORM_OVERHEAD_BYTES``;
* dataset creation (``dataset-list``, ``api-datasets``: archive uploads, and URL lists of up to
  50 MiB on the API): the larger of ``Q16_MAX_ARCHIVE_BYTES`` and 50 MiB, plus
  ``FORM_OVERHEAD_BYTES``. The archive file itself is held to ``Q16_MAX_ARCHIVE_BYTES`` and
  must start like a zip, both checked as it streams in (``ArchiveUploadHandler``).

The larger limits are only granted to requests that may be an admin's (a staff session, or an
``Authorization`` header, which the API checks before it reads the body); anonymous uploads get
the default, so nobody can make the server spool gigabytes before being asked to log in.

A declared ``Content-Length`` over the limit is answered 413 without reading one byte. A body
without one (``Transfer-Encoding: chunked``) is read here while counting, when the server
de-chunks it (gunicorn says so with ``wsgi.input_terminated``), and refused as soon as it passes
the limit; dataset uploads must declare their size (411), as must any chunked body on a server
that passes the raw chunks on (Django's development server).

A refused archive (too big, or not a zip) stops the multipart parse in the upload handler: the
partial temporary file is closed (so deleted), no view runs, and this middleware answers 413 or
400. Refusals are ``{"detail": ...}`` JSON on /api/ and a short page elsewhere.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import BinaryIO, cast

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.core.handlers.wsgi import LimitedStream, WSGIRequest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.template import engines
from django.urls import Resolver404, resolve

logger = logging.getLogger(__name__)

ARCHIVE_FIELD = "archive"
ARCHIVE_URL_NAMES = frozenset({"dataset-list", "api-datasets"})
PROMPT_FILE_URL_NAMES = frozenset({"prompt-import", "api-prompt-versions-import"})
# Hash-bank uploads (curation/bank_views.py, curation/api/bank_views.py): Q16_MAX_BANK_BYTES.
BANK_FILE_URL_NAMES = frozenset(
    {"hash-bank-list", "hash-bank-detail", "api-hash-banks", "api-hash-bank-entries"}
)
# What the prompt import views accept (curation/forms.py, curation/api/views.py).
PROMPT_FILE_BYTES = 16 * 2**20
# The API's URL list (text or file) on dataset creation (curation/api/views.py).
URL_LIST_BYTES = 50 * 2**20
# Room for the other form fields and the multipart framing around an upload.
FORM_OVERHEAD_BYTES = 2**20
# Leading bytes of a zip: a local file header, or the end record of an empty archive.
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
# Tar uploads (curation/services/archives.py): gzip, bzip2 and xz streams, or a plain tar's
# "ustar" magic at offset 257 of its first header (so up to TAR_HEAD_BYTES are looked at).
COMPRESSED_TAR_SIGNATURES = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")
TAR_MAGIC_OFFSET = 257
TAR_HEAD_BYTES = TAR_MAGIC_OFFSET + 5
READ_CHUNK = 64 * 2**10
# The request attribute where ArchiveUploadHandler leaves a refusal for the middleware.
REFUSAL_ATTRIBUTE = "_q16_refusal"

REFUSAL_PAGE = """{% extends "base.html" %}
{% block title %}{{ title }}{% endblock %}
{% block content %}
<section class="card narrow">
  <h1>{{ title }}</h1>
  <p>{{ message }}</p>
  <p><a class="btn" href="{{ back }}">Back</a></p>
</section>
{% endblock %}"""
TITLES = {400: "Upload refused", 411: "Size required", 413: "Too large"}


def _mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB" if size >= 2**20 else f"{size} bytes"


class UploadRefused(MultiPartParserError):
    """Raised by ArchiveUploadHandler to stop the parse; carries the answer to give."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ArchiveUploadHandler(FileUploadHandler):
    """First upload handler on the dataset-creation endpoints. The ``archive`` file must
    start like a zip and stay within ``max_bytes``, checked on each chunk as it arrives; the
    other files and fields pass through untouched (the next handlers store them)."""

    request: HttpRequest  # always given (the base class allows None)

    def __init__(self, request: HttpRequest, *, max_bytes: int) -> None:
        super().__init__(request)
        self.max_bytes = max_bytes
        self.checking = False
        self.head = b""

    def new_file(self, field_name, *args, **kwargs) -> None:
        super().new_file(field_name, *args, **kwargs)
        self.checking = field_name == ARCHIVE_FIELD
        self.head = b""

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if self.checking:
            if len(self.head) < TAR_HEAD_BYTES:
                self.head += raw_data[: TAR_HEAD_BYTES - len(self.head)]
                if len(self.head) == TAR_HEAD_BYTES:
                    self._check_signature()
            if start + len(raw_data) > self.max_bytes:
                self._refuse(
                    413,
                    f"The archive is larger than the {_mib(self.max_bytes)} this server accepts "
                    "(Q16_MAX_ARCHIVE_BYTES).",
                )
        return raw_data

    def file_complete(self, file_size: int) -> None:
        if self.checking and 0 < len(self.head) < TAR_HEAD_BYTES:
            self._check_signature()
        return None

    def _check_signature(self) -> None:
        is_tar = self.head.startswith(COMPRESSED_TAR_SIGNATURES) or (
            self.head[TAR_MAGIC_OFFSET:TAR_HEAD_BYTES] == b"ustar"
        )
        if not self.head.startswith(ZIP_SIGNATURES) and not is_tar:
            self._refuse(400, "The archive is not a zip file. Upload a .zip archive.")

    def _refuse(self, status: int, message: str) -> None:
        # The next handlers hold the partial file; a temporary upload is deleted on close.
        for handler in self.request.upload_handlers:
            partial = getattr(handler, "file", None)
            if handler is not self and partial is not None:
                partial.close()
        setattr(self.request, REFUSAL_ATTRIBUTE, (status, message))
        raise UploadRefused(status, message)


def refusal_response(request: HttpRequest, status: int, message: str) -> HttpResponse:
    """A refused body: JSON on the API, a page for the browser."""
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status)
    page = engines["django"].from_string(REFUSAL_PAGE)
    context = {"title": TITLES.get(status, "Refused"), "message": message, "back": request.path}
    return HttpResponse(page.render(context, request), status=status)


class RequestBodyLimitMiddleware:
    """Place after AuthenticationMiddleware (it reads `request.user` for the larger limits)
    and before anything that reads the body (CSRF's process_view, the views)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = self._admit(request)
        if refused is not None:
            return refused
        response = self.get_response(request)
        refusal = getattr(request, REFUSAL_ATTRIBUTE, None)
        if refusal is not None:
            return refusal_response(request, *refusal)
        return response

    def _admit(self, request: HttpRequest) -> HttpResponse | None:
        declared = _content_length(request)
        chunked = _chunked(request)
        if not declared and not chunked:
            return None
        url_name = _url_name(request)
        limit = _limit(request, url_name)
        if declared is not None and declared > limit:
            return self._too_large(request, limit, declared)
        if chunked and declared is None:
            problem = self._read_chunked(request, limit, archive=url_name in ARCHIVE_URL_NAMES)
            if problem is not None:
                return problem
        if url_name in ARCHIVE_URL_NAMES and limit > settings.Q16_MAX_BODY_BYTES:
            request.upload_handlers.insert(
                0, ArchiveUploadHandler(request, max_bytes=settings.Q16_MAX_ARCHIVE_BYTES)
            )
        return None

    def _too_large(self, request: HttpRequest, limit: int, size: int | None) -> HttpResponse:
        logger.warning(
            "refused a %s-byte body on %s (limit %s)", size or "more than", request.path, limit
        )
        return refusal_response(
            request,
            413,
            f"The request body is larger than the {_mib(limit)} this address accepts.",
        )

    def _read_chunked(
        self, request: HttpRequest, limit: int, *, archive: bool
    ) -> HttpResponse | None:
        """Read a body of unknown size up to the limit, or refuse it."""
        # Only a WSGI server can say it de-chunked the body; anywhere else it must be sized.
        environ = request.environ if isinstance(request, WSGIRequest) else {}
        stream = environ.get("wsgi.input")
        if archive or not environ.get("wsgi.input_terminated") or stream is None:
            return refusal_response(
                request, 411, "Send the size of the body (a Content-Length header)."
            )
        body = bytearray()
        while len(body) <= limit:
            block = stream.read(min(READ_CHUNK, limit + 1 - len(body)))
            if not block:
                break
            body += block
        if len(body) > limit:
            return self._too_large(request, limit, None)
        # Hand the body on as if it had come with a Content-Length (Django reads no body
        # without one): the WSGI request reads from `_stream` and sizes it from META.
        request.META["CONTENT_LENGTH"] = str(len(body))
        # The stubs type `_stream` as BinaryIO; WSGIRequest itself puts a LimitedStream there.
        request._stream = cast(BinaryIO, LimitedStream(io.BytesIO(bytes(body)), len(body)))
        return None


def _content_length(request: HttpRequest) -> int | None:
    raw = request.META.get("CONTENT_LENGTH") or ""
    return int(raw) if raw.isascii() and raw.isdigit() else None


def _chunked(request: HttpRequest) -> bool:
    encoding = request.META.get("HTTP_TRANSFER_ENCODING", "").strip().lower()
    return bool(encoding) and encoding != "identity"


def _url_name(request: HttpRequest) -> str | None:
    try:
        return resolve(request.path_info).url_name
    except Resolver404:
        return None


def _may_be_admin(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(getattr(user, "is_staff", False)) or "HTTP_AUTHORIZATION" in request.META


def _limit(request: HttpRequest, url_name: str | None) -> int:
    default = settings.Q16_MAX_BODY_BYTES
    if url_name in ARCHIVE_URL_NAMES and _may_be_admin(request):
        return max(settings.Q16_MAX_ARCHIVE_BYTES, URL_LIST_BYTES) + FORM_OVERHEAD_BYTES
    if url_name in PROMPT_FILE_URL_NAMES and _may_be_admin(request):
        return PROMPT_FILE_BYTES + FORM_OVERHEAD_BYTES
    if url_name in BANK_FILE_URL_NAMES and _may_be_admin(request):
        return settings.Q16_MAX_BANK_BYTES + FORM_OVERHEAD_BYTES
    return default

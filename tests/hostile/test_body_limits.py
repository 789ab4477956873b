"""Request body limits: what each endpoint refuses, before or while it reads the body.

The big bodies are never built in memory: they are streamed from generators over a real
socket to the live server (Django's WSGI server), and the client stops sending as soon as
the answer arrives, so a test also shows how much the server read before refusing.
"""

from __future__ import annotations

import http.client
import io
import json
import select
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client, RequestFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from curation.models import Dataset
from tests.hostile import files

MiB = 2**20
BOUNDARY = "q16boundary"


@pytest.fixture
def upload_dirs(settings, tmp_path) -> dict[str, Path]:
    """Uploads over 64 KiB go to a temporary file in a folder the test can look into."""
    temp = tmp_path / "upload-temp"
    temp.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(temp)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 2**10
    settings.MEDIA_ROOT = tmp_path / "media"
    return {"temp": temp, "archives": tmp_path / "media" / "archives"}


def _left_on_disk(dirs: dict[str, Path]) -> list[Path]:
    return [path for folder in dirs.values() if folder.exists() for path in folder.iterdir()]


def _zip(size: int = 0) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("a.png", files.png())
        if size:
            archive.writestr("padding.bin", b"\x00" * size)
    return buffer.getvalue()


def _multipart_head(field: str, filename: str, fields: dict[str, str] | None = None) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in (fields or {}).items()
    ]
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    )
    return "".join(parts).encode()


def _stream(
    url: str,
    path: str,
    chunks: Iterator[bytes],
    *,
    headers: dict[str, str],
    chunked: bool = False,
) -> tuple[int, bytes, int]:
    """POST the chunks; stop sending once the server answers. (status, body, bytes sent)."""
    address = urlsplit(url)
    conn = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    conn.putrequest("POST", path)
    for name, value in headers.items():
        conn.putheader(name, value)
    if chunked:
        conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    sock = conn.sock
    sent = 0
    try:
        for chunk in chunks:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:  # the answer (or a close) is there: stop sending
                break
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        else:
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        response = conn.getresponse()
        return response.status, response.read(), sent
    finally:
        conn.close()


def _repeat(block: bytes, total: int) -> Iterator[bytes]:
    """`total` bytes as a generator of one reused block (nothing large in memory)."""
    while total > 0:
        piece = block[: min(len(block), total)]
        total -= len(piece)
        yield piece


# --- Small endpoints ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_anonymous_300_mib_login_post_is_refused_before_the_body_is_read(live_server, upload_dirs):
    total = 300 * MiB
    head = _multipart_head("file", "big.bin", {"username": "x", "password": "y"})
    status, body, sent = _stream(
        live_server.url,
        "/accounts/login/",
        iter([head, *_repeat(b"\x00" * MiB, total - len(head))]),
        headers={
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(total),
        },
    )
    assert status == 413
    assert b"larger than the 1 MiB this address accepts" in body
    assert b"<html" in body  # a page, not a traceback
    assert sent < 64 * MiB  # answered long before the client could send it all
    assert not _left_on_disk(upload_dirs)


@pytest.mark.django_db(transaction=True)
def test_chunked_body_needs_a_size_on_a_server_that_does_not_dechunk(live_server, upload_dirs):
    """Django's WSGI server passes raw chunks on; such a body is refused with 411."""
    status, body, sent = _stream(
        live_server.url,
        "/accounts/login/",
        _repeat(b"\x00" * MiB, 300 * MiB),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        chunked=True,
    )
    assert status == 411
    assert b"Content-Length" in body
    assert sent < 64 * MiB
    assert not _left_on_disk(upload_dirs)


@pytest.fixture
def gunicorn_url(tmp_path) -> Iterator[str]:
    """The app under gunicorn, as `make run` serves it (gunicorn de-chunks request bodies)."""
    pytest.importorskip("gunicorn")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [sys.executable, "-m", "gunicorn", "config.wsgi:application"]
    argv += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "2"]
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("gunicorn did not start: " + (tmp_path / "gunicorn.log").read_text())
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_chunked_300_mib_body_is_refused_while_streaming_under_gunicorn(gunicorn_url):
    status, body, sent = _stream(
        gunicorn_url,
        "/accounts/login/",
        _repeat(b"a" * MiB, 300 * MiB),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        chunked=True,
    )
    assert status == 413
    assert b"larger than the 1 MiB" in body
    assert sent < 64 * MiB
    # A small chunked body is read and handed on (here: to the CSRF check).
    status, _, _ = _stream(
        gunicorn_url,
        "/accounts/login/",
        iter([b"username=a&password=b"]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        chunked=True,
    )
    assert status == 403


class CountingInput:
    """A wsgi.input that would yield `total` bytes, counting what the app read."""

    def __init__(self, total: int, payload: bytes = b"") -> None:
        self.remaining = total
        self.payload = payload
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        if self.payload:
            data, self.payload = self.payload[:size], self.payload[size:]
        else:
            size = self.remaining if size is None or size < 0 else min(size, self.remaining)
            data = b"\x00" * size
            self.remaining -= size
        self.read_bytes += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


def _call_wsgi(path: str, wsgi_input: CountingInput, **extra) -> tuple[str, bytes]:
    """The WSGI application as gunicorn calls it with a de-chunked body of unknown size."""
    environ = RequestFactory()._base_environ(
        PATH_INFO=path,
        REQUEST_METHOD="POST",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": wsgi_input, "wsgi.input_terminated": True},
        **extra,
    )
    environ.pop("CONTENT_LENGTH", None)
    statuses = []
    # As Django's test client does: the request must not close the test's connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = WSGIHandler()(environ, lambda status, headers: statuses.append(status))
        body = b"".join(response)
        response.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return statuses[0], body


@pytest.mark.django_db
def test_dechunked_300_mib_body_is_refused_while_streaming(settings):
    wsgi_input = CountingInput(300 * MiB)
    status, body = _call_wsgi(
        "/accounts/login/", wsgi_input, CONTENT_TYPE="application/x-www-form-urlencoded"
    )
    assert status.startswith("413")
    assert wsgi_input.read_bytes <= settings.Q16_MAX_BODY_BYTES + 1


@pytest.mark.django_db
def test_dechunked_small_body_is_read(admin_user):
    token = Token.objects.create(user=admin_user).key
    payload = json.dumps({"item_ids": []}).encode()
    status, body = _call_wsgi(
        "/api/review/release/",
        CountingInput(0, payload),
        CONTENT_TYPE="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    assert status.startswith("200"), body
    assert json.loads(body) == {"released": 0}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "admin"),
    [
        ("/api/review/release/", True),
        ("/api/review/preferences/", True),
        ("/api/prompt-jobs/", True),
        ("/datasets/", False),  # anonymous: no upload allowance
        ("/accounts/login/", False),
    ],
)
def test_small_endpoints_refuse_2_mib_with_413(admin_user, url, admin):
    client = APIClient()
    if admin:
        client.force_login(admin_user)
    body = json.dumps({"item_ids": [], "pad": "x" * (2 * MiB)})
    response = client.generic("POST", url, body, content_type="application/json")
    assert response.status_code == 413
    if url.startswith("/api/"):
        assert "larger than the 1 MiB" in response.json()["detail"]
    else:
        assert "larger than the 1 MiB" in response.content.decode()


@pytest.mark.django_db
def test_prompt_import_allows_files_over_1_mib(admin_user):
    client = APIClient()
    client.force_login(admin_user)
    upload = SimpleUploadedFile("p.pkl", b"\x00" * (3 * MiB))
    response = client.post("/api/prompt-versions/import/", {"file": upload}, format="multipart")
    assert response.status_code == 400  # not a prompt file, but read: not 413
    assert "larger than" not in response.content.decode()


# --- Archive uploads --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_archive_over_the_limit_is_refused_while_streaming(
    live_server, settings, upload_dirs, admin_user
):
    settings.Q16_MAX_ARCHIVE_BYTES = 256 * 2**10
    token = Token.objects.create(user=admin_user).key
    archive = _zip(32 * MiB)  # a real zip: passes the signature check
    head = _multipart_head("archive", "big.zip", {"name": "too big"})
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    status, body, sent = _stream(
        live_server.url,
        "/api/datasets/",
        iter([head, *(archive[i : i + MiB] for i in range(0, len(archive), MiB)), tail]),
        headers={
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(len(head) + len(archive) + len(tail)),
            "Authorization": f"Token {token}",
        },
    )
    assert status == 413
    assert "Q16_MAX_ARCHIVE_BYTES" in json.loads(body)["detail"]
    assert sent < 16 * MiB  # refused while it streamed in, not after
    assert not Dataset.objects.exists()
    assert not _left_on_disk(upload_dirs)


@pytest.fixture
def admin_api(admin_user) -> APIClient:
    client = APIClient()
    client.force_login(admin_user)
    return client


@pytest.fixture
def admin_browser(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


NOT_ZIPS = {
    "exe.zip": b"MZ\x90\x00" + b"\x00" * (200 * 2**10),
    "tiny.zip": b"PK",
    "tar.zip": b"ustar" + b"\x00" * (120 * 2**10),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", NOT_ZIPS)
def test_non_zip_archive_is_refused_at_upload_and_nothing_stays(admin_api, upload_dirs, name):
    upload = SimpleUploadedFile(name, NOT_ZIPS[name])
    response = admin_api.post(
        "/api/datasets/", {"name": "not a zip", "archive": upload}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "The archive is not a zip file. Upload a .zip archive."}
    assert not Dataset.objects.exists()
    assert not _left_on_disk(upload_dirs)


@pytest.mark.django_db
def test_non_zip_archive_on_the_form_gets_a_readable_page(admin_browser, upload_dirs):
    upload = SimpleUploadedFile("photos.zip", NOT_ZIPS["exe.zip"])
    response = admin_browser.post("/datasets/", {"name": "not a zip", "archive": upload})
    assert response.status_code == 400
    assert "Upload a .zip archive." in response.content.decode()
    assert not Dataset.objects.exists()
    assert not _left_on_disk(upload_dirs)


@pytest.mark.django_db
def test_archive_over_the_limit_on_the_form_gets_a_readable_413(
    admin_browser, settings, upload_dirs
):
    settings.Q16_MAX_ARCHIVE_BYTES = 100 * 2**10
    upload = SimpleUploadedFile("photos.zip", _zip(300 * 2**10))
    response = admin_browser.post("/datasets/", {"name": "big", "archive": upload})
    assert response.status_code == 413
    assert "Q16_MAX_ARCHIVE_BYTES" in response.content.decode()
    assert not Dataset.objects.exists()
    assert not _left_on_disk(upload_dirs)


@pytest.mark.django_db
def test_small_archive_is_still_accepted(admin_api, admin_browser, settings, upload_dirs):
    settings.Q16_MAX_ARCHIVE_BYTES = 1 * MiB
    api = admin_api.post(
        "/api/datasets/",
        {"name": "api zip", "archive": SimpleUploadedFile("a.zip", _zip(200 * 2**10))},
        format="multipart",
    )
    assert api.status_code == 201, api.content
    page = admin_browser.post(
        "/datasets/", {"name": "form zip", "archive": SimpleUploadedFile("b.zip", _zip())}
    )
    assert page.status_code == 302
    assert Dataset.objects.count() == 2
    assert len(list(upload_dirs["archives"].iterdir())) == 2  # kept for the import task
    assert not list(upload_dirs["temp"].iterdir())

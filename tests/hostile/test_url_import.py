"""URL-list imports: SSRF protections, limits, and the same validation as files.

Everything runs against a threaded http.server on 127.0.0.1. Production refuses
loopback, so these tests pass an address policy that allows exactly 127.0.0.1 and
otherwise applies the production policy; separate tests check that the production
policy refuses loopback, private, link-local and metadata addresses.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from curation.models import Dataset, Image
from curation.services.datasets import dataset_create_from_url_list, dataset_import
from curation.services.url_import import (
    MAX_URL_LENGTH,
    FetchLimits,
    UrlFetcher,
    UrlFetchError,
    default_address_policy,
    fetch_url,
    parse_url_list,
)
from tests.hostile import files

GOOD_PNG = files.png(color=(250, 10, 10))
GOOD_JPEG = files.jpeg(color=(10, 10, 250))
BIG_JPEG = files.jpeg(size=(300, 200))


class Handler(BaseHTTPRequestHandler):
    routes: dict[str, object] = {}
    seen: list[tuple[str, str]] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        Handler.seen.append((self.path, self.headers.get("Host", "")))
        route = Handler.routes.get(self.path.split("?")[0])
        if route is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        route(self)


def _body(data: bytes, content_type: str = "image/png"):
    def send(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return send


def _redirect(location: str):
    def send(handler):
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return send


def _endless(handler):
    handler.send_response(200)
    handler.end_headers()  # no Content-Length: the client must count
    try:
        for _ in range(10_000):
            handler.wfile.write(b"\x00" * 65536)
    except OSError:
        pass


def _lying_length(handler):
    handler.send_response(200)
    handler.send_header("Content-Length", str(10 * 2**30))
    handler.end_headers()


def _slow(handler):
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    try:
        for _ in range(100):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.1)
    except OSError:
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    base = f"http://127.0.0.1:{port}"
    Handler.seen = []
    Handler.routes = {
        "/good.png": _body(GOOD_PNG),
        "/good.jpg": _body(GOOD_JPEG, "image/jpeg"),
        "/dup.png": _body(GOOD_PNG),
        "/redirect": _redirect("/good.jpg"),
        "/redirect-absolute": _redirect(f"{base}/good.png"),
        "/redirect-private": _redirect("http://10.0.0.1/x.png"),
        "/redirect-metadata": _redirect("http://169.254.169.254/latest/meta-data/"),
        "/redirect-loopback-v6": _redirect(f"http://[::1]:{port}/good.png"),
        "/redirect-file": _redirect("file:///etc/passwd"),
        "/loop": _redirect("/loop"),
        "/endless": _endless,
        "/lying-length": _lying_length,
        "/slow": _slow,
        "/page.png": _body(b"<html>not an image</html>", "text/html"),
        "/empty.png": _body(b""),
        "/bomb.png": _body(files.bomb_png()),
        "/vector.eps": _body(files.EPS),
        "/polyglot.png": _body(GOOD_PNG + files.POLYGLOT_HTML),
        "/truncated.jpg": _body(BIG_JPEG[: len(BIG_JPEG) * 2 // 3]),
    }
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.base = base  # type: ignore[attr-defined]
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def local_only(address):
    """Test policy: exactly 127.0.0.1 is allowed; everything else as in production."""
    if address == ipaddress.ip_address("127.0.0.1"):
        return None
    return default_address_policy(address)


LIMITS = FetchLimits(max_bytes=1 * 2**20, connect_timeout=2, total_timeout=1.5, max_redirects=3)
FETCHER = UrlFetcher(address_policy=local_only, limits=LIMITS)


# --- the production address policy ----------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
        "169.254.1.1", "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255",
        "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "::ffff:127.0.0.1",
        "::ffff:169.254.169.254", "2002:7f00:1::", "100.100.100.200",
    ],
)  # fmt: skip
def test_default_policy_refuses_internal_addresses(address):
    assert default_address_policy(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_default_policy_allows_public_addresses(address):
    assert default_address_policy(ipaddress.ip_address(address)) is None


def test_default_policy_refuses_the_local_server_without_connecting(server):
    with pytest.raises(UrlFetchError, match="loopback"):
        fetch_url(f"{server.base}/good.png", limits=LIMITS)
    with pytest.raises(UrlFetchError, match="loopback"):
        fetch_url(f"http://localhost:{server.server_address[1]}/good.png", limits=LIMITS)
    assert Handler.seen == []


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/",
     "http://[fe80::1]/", "http://[fd00:ec2::254]/", "http://0177.0.0.1/", "http://2130706433/"],
)  # fmt: skip
def test_default_policy_refuses_literal_addresses(url):
    def no_dns(host, port):
        # Numeric forms like 2130706433 go to the resolver: answer as libc would.
        return ["127.0.0.1"]

    with pytest.raises(UrlFetchError):
        fetch_url(url, resolver=no_dns, limits=LIMITS)


# --- redirects, DNS rebinding, limits -------------------------------------------------------


def test_redirects_are_followed_and_revalidated(server):
    result = FETCHER.fetch(f"{server.base}/redirect")
    assert result.data == GOOD_JPEG and result.final_url.endswith("/good.jpg")
    assert FETCHER.fetch(f"{server.base}/redirect-absolute").data == GOOD_PNG


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/redirect-private", "private address 10.0.0.1"),
        ("/redirect-metadata", "cloud metadata address 169.254.169.254"),
        ("/redirect-loopback-v6", "loopback address ::1"),
        ("/redirect-file", "scheme file: not allowed"),
        ("/loop", "more than 3 redirects"),
    ],
)
def test_redirect_to_a_refused_target_is_refused(server, path, reason):
    with pytest.raises(UrlFetchError) as caught:
        FETCHER.fetch(f"{server.base}{path}")
    assert reason in caught.value.reason


def test_dns_is_resolved_once_and_the_checked_address_is_used(server, monkeypatch):
    """DNS rebinding: the name resolves to an allowed address at check time and to a
    private one afterwards. The fetcher never asks again and connects to the checked IP,
    sending the original name as Host."""
    answers = iter([["127.0.0.1"], ["10.0.0.1"], ["10.0.0.1"]])
    calls: list[str] = []

    def rebinding_resolver(host, port):
        calls.append(host)
        return next(answers)

    real_getaddrinfo = socket.getaddrinfo

    def numeric_only(host, *args, **kwargs):
        # socket.create_connection passes the pinned IP through getaddrinfo (no DNS query);
        # a name here would mean the fetcher resolved it a second time.
        ipaddress.ip_address(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", numeric_only)
    port = server.server_address[1]
    result = fetch_url(
        f"http://rebind.example:{port}/good.png",
        address_policy=local_only,
        resolver=rebinding_resolver,
        limits=LIMITS,
    )
    assert result.data == GOOD_PNG
    assert calls == ["rebind.example"]
    assert result.ips == ["127.0.0.1"]
    assert Handler.seen[-1] == ("/good.png", f"rebind.example:{port}")


def test_a_name_with_any_refused_answer_is_refused(server):
    with pytest.raises(UrlFetchError, match="private address 10.0.0.1"):
        fetch_url(
            f"http://mixed.example:{server.server_address[1]}/good.png",
            address_policy=local_only,
            resolver=lambda host, port: ["127.0.0.1", "10.0.0.1"],
            limits=LIMITS,
        )


def test_size_and_time_limits(server):
    with pytest.raises(UrlFetchError, match="too large: more than"):
        FETCHER.fetch(f"{server.base}/endless")
    with pytest.raises(UrlFetchError, match="bytes declared"):
        FETCHER.fetch(f"{server.base}/lying-length")
    started = time.monotonic()
    with pytest.raises(UrlFetchError, match="timed out"):
        FETCHER.fetch(f"{server.base}/slow")
    assert time.monotonic() - started < 5
    with pytest.raises(UrlFetchError, match="HTTP 404"):
        FETCHER.fetch(f"{server.base}/missing.png")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/a.png", "scheme ftp: not allowed"),
        ("javascript:alert(1)", "scheme javascript: not allowed"),
        ("file:///etc/passwd", "scheme file: not allowed"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "scheme gopher: not allowed"),
        ("example.com/a.png", "scheme (none) not allowed"),
        ("http://", "no host"),
        ("http://user:secret@example.com/a.png", "credentials"),
        ("http://example.com:99999/a.png", "malformed URL"),
        ("http://exa mple.com/a.png", "spaces or control characters"),
        ("http://example.com/" + "a" * MAX_URL_LENGTH, "longer than"),
    ],
)
def test_bad_urls_are_refused_before_any_network_access(url, reason):
    with pytest.raises(UrlFetchError) as caught:
        fetch_url(url, resolver=lambda *a: pytest.fail("resolved a refused URL"), limits=LIMITS)
    assert reason in caught.value.reason


def test_parse_url_list_skips_comments_blanks_and_duplicates():
    entries = parse_url_list(
        "# list\n\nhttp://a.example/1.png\n  http://a.example/1.png \nftp://x/\n"
    )
    assert entries == [
        ("http://a.example/1.png", None),
        ("ftp://x/", "scheme ftp: not allowed (only http and https)"),
    ]


# --- the import path ------------------------------------------------------------------------


@pytest.mark.django_db
def test_url_list_import_records_every_failure_and_stores_safe_files(server, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    base = server.base
    expected = {
        f"{base}/good.png": None,
        f"{base}/good.jpg": None,
        f"{base}/dup.png": None,  # same bytes as good.png, another URL: its own row
        f"{base}/redirect": None,
        f"{base}/polyglot.png": None,  # accepted as PNG, served only as image/png
        f"{base}/redirect-metadata": "cloud metadata address 169.254.169.254 refused",
        f"{base}/redirect-private": "private address 10.0.0.1 refused",
        f"{base}/page.png": "not an image",
        f"{base}/empty.png": "empty file",
        f"{base}/bomb.png": "decompression bomb",
        f"{base}/vector.eps": "format EPS not allowed",
        f"{base}/truncated.jpg": "truncated or corrupt",
        f"{base}/endless": "too large",
        f"{base}/missing.png": "HTTP 404",
        "ftp://example.com/a.png": "scheme ftp: not allowed",
        "javascript:alert(1)": "scheme javascript: not allowed",
        "http://" + "a" * 3000: "longer than",
    }
    dataset = dataset_create_from_url_list(
        name="from-urls", urls="\n".join(expected) + "\n# comment\n\n", queue=False
    )
    assert dataset.source_kind == Dataset.SourceKind.URLS
    dataset = dataset_import(dataset_id=dataset.pk, url_fetcher=FETCHER)

    assert dataset.state == Dataset.State.READY
    n_failed = sum(1 for reason in expected.values() if reason)
    assert (dataset.total, dataset.processed, dataset.failed) == (
        len(expected),
        len(expected),
        n_failed,
    )
    rows = {image.source_url: image for image in dataset.images.all()}
    assert set(rows) == {url[:2048] for url in expected}
    root = Path(dataset.root_path)
    assert root == Path(settings.MEDIA_ROOT) / "datasets" / str(dataset.pk)
    for url, reason in expected.items():
        row = rows[url[:2048]]
        if reason is None:
            assert row.status == Image.Status.OK, f"{url}: {row.error}"
            name = row.relative_path
            assert "/" not in name and ".." not in name
            prefix, rest = name.split("-", 1)
            assert (
                prefix.isdigit()
                and rest == f"{row.sha256}.{'jpg' if row.format == 'JPEG' else 'png'}"
            )
            assert (root / name).read_bytes()[:4] in (GOOD_PNG[:4], GOOD_JPEG[:4])
        else:
            assert row.status == Image.Status.FAILED, url
            assert reason in row.error, f"{url}: {row.error!r}"
    assert sorted(p.name for p in root.iterdir()) == sorted(
        row.relative_path for row in rows.values() if row.status == Image.Status.OK
    )
    # Running the import again changes nothing.
    again = dataset_import(dataset_id=dataset.pk, url_fetcher=FETCHER)
    assert again.images.count() == len(expected)


@pytest.mark.django_db
def test_url_list_import_uses_the_production_policy_by_default(server, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    dataset = dataset_create_from_url_list(name="u", urls=f"{server.base}/good.png", queue=False)
    dataset = dataset_import(dataset_id=dataset.pk)
    image = dataset.images.get()
    assert image.status == Image.Status.FAILED and "loopback" in image.error
    assert Handler.seen == []


@pytest.mark.django_db
def test_exports_show_the_url_as_the_path(server, settings, tmp_path, admin_user):
    from curation.models import Export
    from labels.exports import export_rows

    settings.MEDIA_ROOT = tmp_path / "media"
    url = f"{server.base}/good.png"
    dataset = dataset_create_from_url_list(name="u", urls=url, queue=False)
    dataset = dataset_import(dataset_id=dataset.pk, url_fetcher=FETCHER)
    from reviewer.models import ReviewItem

    ReviewItem.objects.create(dataset=dataset, image=dataset.images.get(), score=0.9)
    export = Export(dataset=dataset, format=Export.Format.CSV, scope=Export.Scope.FLAGGED)
    rows = export_rows(export=export)
    assert [row["path"] for row in rows] == [url]


@pytest.mark.django_db
def test_api_creates_a_url_list_dataset_from_text_or_file(
    settings, tmp_path, admin_user, django_capture_on_commit_callbacks
):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from rest_framework.test import APIClient

    settings.MEDIA_ROOT = tmp_path / "media"
    client = APIClient()
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(
            "/api/datasets/",
            {"name": "text", "urls": "https://example.com/a.png\nftp://x/y.png\n"},
            format="json",
        )
    assert response.status_code == 201, response.content
    assert response.json()["source_kind"] == "urls" and len(queued) == 1
    upload = SimpleUploadedFile("urls.txt", b"https://example.com/b.png\n", "text/plain")
    with django_capture_on_commit_callbacks():
        response = client.post(
            "/api/datasets/", {"name": "file", "url_list": upload}, format="multipart"
        )
    assert response.status_code == 201, response.content
    stored = Path(Dataset.objects.get(name="file").source).read_text()
    assert stored == "https://example.com/b.png\n"
    both = client.post(
        "/api/datasets/", {"name": "x", "urls": "https://a/b", "folder": "/tmp"}, format="json"
    )
    assert both.status_code == 400
    latin1 = SimpleUploadedFile("urls.txt", b"https://example.com/caf\xe9.png\n")
    bad = client.post("/api/datasets/", {"name": "y", "url_list": latin1}, format="multipart")
    assert bad.status_code == 400 and "UTF-8" in bad.content.decode()

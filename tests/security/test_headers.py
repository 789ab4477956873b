"""Content-Security-Policy on the pages, and images served safely through the authorised view."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

STRICT = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data: blob:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
    "connect-src": "'self'",
}


def directives(header: str) -> dict[str, str]:
    parts = [part.strip() for part in header.split(";") if part.strip()]
    return {part.split()[0]: " ".join(part.split()[1:]) for part in parts}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("role", "url_name", "args"),
    [
        ("assigned", "review", ()),
        ("admin", "review", ()),
        ("admin", "dataset-list", ()),
        ("admin", "dataset-detail", ("dataset",)),
        ("admin", "dataset-stats", ("dataset",)),
        ("admin", "prompt-versions", ()),
        ("admin", "dataset-review-settings", ("dataset",)),
        ("admin", "user-list", ()),
        ("admin", "user-detail", ("assigned",)),
        ("admin", "review-exposure", ()),
        (None, "login", ()),
    ],
)
def test_pages_carry_the_strict_policy(world, role, url_name, args):
    client = _client(getattr(world, role)) if role else Client()
    response = client.get(reverse(url_name, args=[getattr(world, a).pk for a in args]))
    assert response.status_code == 200
    policy = directives(response["Content-Security-Policy"])
    for name, value in STRICT.items():
        assert policy.get(name) == value, (name, policy)
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_templates_have_no_inline_script_or_style(world):
    client = _client(world.admin)
    for url in (reverse("review"), reverse("dataset-detail", args=[world.dataset.pk])):
        page = client.get(url).content.decode()
        for start in range(len(page)):
            start = page.find("<script", start)
            if start < 0:
                break
            tag = page[start : page.index(">", start) + 1]
            assert "src=" in tag, f"inline script in {url}: {tag}"
            assert page[page.index(">", start) + 1 :].startswith("</script>"), url
        assert "<style" not in page and " style=" not in page and "onclick=" not in page


def test_api_docs_relax_only_style_and_load_no_cdn(world):
    client = _client(world.admin)
    response = client.get(reverse("api-docs"))
    assert response.status_code == 200
    policy = directives(response["Content-Security-Policy"])
    assert policy["script-src"] == "'self'"
    assert "unsafe-inline" in policy["style-src"]
    page = response.content.decode()
    assert "cdn" not in page.lower() and "https://" not in page
    assert "<script>" not in page  # the Swagger UI init script is a separate URL


# --- Images -------------------------------------------------------------------------------------


def _assert_safe_image(response, content_type: str) -> None:
    assert response["Content-Type"] == content_type
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert response["Content-Disposition"] == "inline"
    assert response["Cache-Control"].startswith("private")


def test_image_is_served_with_its_verified_type_and_safe_headers(world):
    response = _client(world.assigned).get(reverse("image-file", args=[world.image.pk]))
    assert response.status_code == 200
    _assert_safe_image(response, "image/png")
    assert b"".join(response.streaming_content) == world.image_path.read_bytes()


def test_thumbnail_is_served_with_safe_headers(world):
    response = _client(world.assigned).get(reverse("image-thumbnail", args=[world.image.pk]))
    assert response.status_code == 200
    _assert_safe_image(response, "image/jpeg")
    assert b"".join(response.streaming_content)[:3] == b"\xff\xd8\xff"


def test_image_replaced_by_html_on_disk_is_refused(world):
    world.image_path.write_bytes(b"<html><script>alert(document.cookie)</script></html>")
    response = _client(world.assigned).get(reverse("image-file", args=[world.image.pk]))
    assert response.status_code == 404
    assert b"<script>" not in response.content


def test_png_followed_by_html_is_still_served_as_png_never_html(world):
    polyglot = world.image_path.read_bytes() + b"<html><script>alert(1)</script></html>"
    world.image_path.write_bytes(polyglot)
    response = _client(world.assigned).get(reverse("image-file", args=[world.image.pk]))
    assert response.status_code == 200
    _assert_safe_image(response, "image/png")


def test_content_type_comes_from_the_verified_format_not_the_name(world):
    world.image.relative_path = "street/a.png"
    world.image.format = "JPEG"  # what the import verified; the file no longer matches
    world.image.save()
    response = _client(world.assigned).get(reverse("image-file", args=[world.image.pk]))
    assert response.status_code == 404  # a PNG file under a JPEG record is refused

"""The review page's default keys come from the server: the page hands reviewer.models.
DEFAULT_KEYMAP to static/js/review.js as JSON (a data attribute of #review-app), and the
script keeps no copy."""

from __future__ import annotations

import html as html_lib
import json
import re

from django.urls import reverse

from reviewer.models import DEFAULT_KEYMAP
from tests.conftest import REPO_ROOT

KEYMAP_ATTRIBUTE = re.compile(r'data-default-keymap="([^"]*)"')


def test_review_page_hands_the_default_keymap_to_the_script(client, reviewer_user):
    client.force_login(reviewer_user)
    html = client.get(reverse("review")).content.decode()
    match = KEYMAP_ATTRIBUTE.search(html)
    assert match, "the default keymap is not on the page"
    keymap = json.loads(html_lib.unescape(match.group(1)))
    assert keymap == DEFAULT_KEYMAP
    # The order decides clashes in an old saved keymap (the action listed first wins).
    assert list(keymap) == list(DEFAULT_KEYMAP)
    assert '<script type="module" src="/static/js/review.js">' in html


def test_the_script_keeps_no_copy_of_the_default_keymap():
    scripts = [REPO_ROOT / "static/js/review.js", *(REPO_ROOT / "static/js/review").glob("*.js")]
    for path in scripts:
        text = path.read_text(encoding="utf-8")
        assert "DEFAULT_KEYMAP = {" not in text, path
        assert '"Shift+c"' not in text and '"Shift+r"' not in text, path

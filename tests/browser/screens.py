"""Full-page screenshots of a page at the sizes admins use, when Q16_SCREENSHOT_DIR is set."""

from __future__ import annotations

import os
from pathlib import Path

SHOT_SIZES = ((1366, 900), (1280, 720))


def shots(page, name: str) -> None:
    folder = os.environ.get("Q16_SCREENSHOT_DIR")
    if not folder:
        return
    size = page.viewport_size
    # From the top (the sticky header stays where it belongs), after the resize is painted.
    page.evaluate("window.scrollTo(0, 0)")
    for width, height in SHOT_SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.evaluate(
            "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
        )
        path = Path(folder) / f"{name}-{width}x{height}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)

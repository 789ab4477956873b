"""Example thumbnails of the report: a few confirmed images per category.

The page shows them from the thumbnail URL, blurred by CSS. The downloaded files (HTML, PDF)
embed them as data URIs, blurred here with Pillow before they are encoded, so the file
never holds the picture itself, unless the admin asked for unblurred examples.
"""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from typing import Any

from PIL import Image as PILImage
from PIL import ImageFilter

from curation.media import thumbnail_open
from curation.models import Image
from reviewer.models import Decision
from reviewer.selectors.verdicts import latest_verdicts
from worker.engine.images import InvalidImageError

from .figures import UNCATEGORISED

PER_CATEGORY = 4
CATEGORIES_SHOWN = 6
EMBED_MAX_SIDE = 200
# Radius relative to the embedded thumbnail's longest side: shapes stay, content does not.
BLUR_RADIUS = 14


def report_examples(*, dataset_id: int) -> list[dict[str, Any]]:
    """[{category, images: [Image]}]: the highest-numbered confirmed images of each category
    (latest verdicts first), the categories with the most confirmed images first."""
    by_category: dict[str, list[int]] = defaultdict(list)
    for image_id, (verdict, category) in sorted(
        latest_verdicts(dataset_id=dataset_id).items(), reverse=True
    ):
        if verdict == Decision.Verdict.INAPPROPRIATE:
            by_category[category or UNCATEGORISED].append(image_id)
    chosen = sorted(by_category.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:CATEGORIES_SHOWN]
    wanted = [i for _, ids in chosen for i in ids[:PER_CATEGORY]]
    images = Image.objects.in_bulk(wanted)
    return [
        {"category": name, "images": [images[i] for i in ids[:PER_CATEGORY] if i in images]}
        for name, ids in chosen
    ]


def embedded_thumbnail(image: Image, *, blurred: bool = True) -> str | None:
    """The image's thumbnail as a JPEG data URI, Gaussian-blurred unless blurred=False; None
    when the file can no longer be read."""
    try:
        with thumbnail_open(image) as handle, PILImage.open(handle) as source:
            picture = source.convert("RGB")
    except (OSError, InvalidImageError, ValueError):
        return None
    picture.thumbnail((EMBED_MAX_SIDE, EMBED_MAX_SIDE), PILImage.Resampling.LANCZOS)
    if blurred:
        picture = picture.filter(ImageFilter.GaussianBlur(BLUR_RADIUS))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def embedded_examples(
    examples: list[dict[str, Any]], *, blurred: bool = True
) -> list[dict[str, Any]]:
    """The examples with each image's data URI (unreadable ones left out)."""
    result = []
    for group in examples:
        uris = [
            {"image": image, "uri": uri}
            for image in group["images"]
            if (uri := embedded_thumbnail(image, blurred=blurred)) is not None
        ]
        result.append({"category": group["category"], "images": uris})
    return result

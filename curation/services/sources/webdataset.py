"""WebDataset shards: one shard, a list, or a brace pattern, local or at an fsspec URL, read
as a stream (never extracted).

Samples follow webdataset's convention: consecutive members sharing a key (the path up to
the first dot of the file name) form one sample; the sample's first image member is the
image, its `.json` and `.txt` sidecars become the image's metadata. Each image is recorded
with its shard (`container`) and the member's data offset and size, so scoring and the media
views read it later by a range read. A truncated or corrupt shard fails only its own samples.
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from braceexpand import braceexpand

from curation.errors import ValidationFailed
from curation.models import Dataset, Image
from curation.services.sources.common import (
    IMPORT_BATCH,
    ImportStopped,
    image_limits,
    record_batch,
    still_importing,
)
from worker.engine.images import ImageLimits, InvalidImageError, probe_image_bytes
from worker.engine.locators import open_binary

IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"})
SIDECAR_MAX_BYTES = 1 << 20
MAX_SHARDS = 100_000
COMPRESSED_SUFFIXES = (".gz", ".tgz", ".bz2", ".xz", ".zst")
# webdataset's base_plus_ext: key = everything up to the first dot of the file name.
_KEY_EXT = re.compile(r"^((?:.*/|)[^./]+)[.]([^/]*)$")


def expand_shards(spec: str) -> list[str]:
    """Shard paths or URLs from one per line (or space-separated), brace patterns expanded."""
    shards: list[str] = []
    for line in spec.split():
        try:
            expanded = list(braceexpand(line.strip()))
        except Exception as exc:  # an unbalanced or huge pattern
            raise ValidationFailed(f"Bad shard pattern {line!r}: {exc}") from exc
        shards.extend(expanded)
        if len(shards) > MAX_SHARDS:
            raise ValidationFailed(f"More than {MAX_SHARDS} shards.")
    # Keep order, drop repeats.
    return list(dict.fromkeys(shards))


def split_key(name: str) -> tuple[str, str] | None:
    match = _KEY_EXT.match(name)
    return (match.group(1), match.group(2).lower()) if match else None


@dataclass
class Sample:
    key: str
    image_name: str = ""
    image_data: bytes | None = None
    offset: int | None = None
    size: int | None = None
    metadata: dict = field(default_factory=dict)
    problem: str | None = None


def _read_member(archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = archive.extractfile(member)
    if handle is None:
        raise tarfile.ReadError("member has no data")
    return handle.read()


def iter_shard_samples(
    shard: str, *, limits: ImageLimits, skip: frozenset[str] = frozenset()
) -> Iterator[Sample]:
    """Every sample of one shard, in order. A read error ends the shard with a failed sample
    (the samples before it are yielded normally). Images named in skip are not read."""
    if shard.lower().endswith(COMPRESSED_SUFFIXES):
        yield Sample(key="", problem="compressed shards cannot be range-read: use plain .tar")
        return
    current: Sample | None = None
    try:
        with open_binary(shard) as handle, tarfile.open(fileobj=handle, mode="r|") as archive:
            for member in archive:
                parts = split_key(member.name) if member.isfile() else None
                if parts is None:
                    continue  # folders, links, files without an extension: not a sample part
                key, ext = parts
                if current is not None and key != current.key:
                    yield current
                    current = None
                if current is None:
                    current = Sample(key=key)
                _add_member(current, archive, member, ext, limits=limits, skip=skip)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        reason = f"shard unreadable or truncated: {exc}"
        if current is not None:
            current.problem = current.problem or reason
            yield current
            current = None
        yield Sample(key="", problem=reason)
    if current is not None:
        yield current


def _add_member(
    sample: Sample,
    archive: tarfile.TarFile,
    member: tarfile.TarInfo,
    ext: str,
    *,
    limits: ImageLimits,
    skip: frozenset[str],
) -> None:
    last = ext.rsplit(".", 1)[-1]
    if last in IMAGE_EXTENSIONS and not sample.image_name:
        sample.image_name = member.name
        sample.offset, sample.size = member.offset_data, member.size
        if member.name in skip:
            return
        if member.size > limits.max_bytes:
            sample.problem = f"file too large: {member.size} bytes > limit {limits.max_bytes}"
            return
        sample.image_data = _read_member(archive, member)
    elif ext in ("json", "txt") and member.size <= SIDECAR_MAX_BYTES:
        text = _read_member(archive, member).decode("utf-8", "replace")
        if ext == "txt":
            sample.metadata["txt"] = text
            return
        try:
            parsed = json.loads(text)
        except ValueError:
            sample.metadata["json_error"] = "sidecar .json is not valid JSON"
            return
        if isinstance(parsed, dict):
            sample.metadata.update({k: v for k, v in parsed.items() if k != "txt"})
        else:
            sample.metadata["json"] = parsed


def member_path(shard: str, member: str) -> str:
    """The image's relative_path: unique per shard and member, stable across re-imports."""
    return f"{shard}#{member}"[:1024]


def _row(shard: str, sample: Sample, limits: ImageLimits) -> Image:
    name = sample.image_name or f"[sample {sample.key or 'shard'}]"
    row = Image(
        relative_path=member_path(shard, name),
        sample_key=sample.key[:512],
        metadata=sample.metadata,
        container=shard[:2048],
        member_offset=sample.offset,
        member_size=sample.size,
        status=Image.Status.FAILED,
    )
    problem = sample.problem
    if problem is None and not sample.image_name:
        problem = "sample has no image member"
    if problem is None and sample.image_data is not None:
        try:
            info = probe_image_bytes(sample.image_data, limits=limits)
        except InvalidImageError as exc:
            problem = exc.reason
        else:
            row.sha256, row.phash, row.format = info.sha256, info.phash, info.format
            row.pdq, row.pdq_quality = info.pdq, info.pdq_quality
            row.width, row.height, row.bytes = info.width, info.height, info.bytes
            row.status = Image.Status.OK
    row.error = (problem or "")[:500]
    return row


def index_shard(
    dataset: Dataset,
    shard: str,
    *,
    pool: ThreadPoolExecutor,
    after_batch: Callable[[], None] | None = None,
) -> None:
    """Record every sample of one shard not recorded yet (a re-import or a resumed chunk
    skips the members it has), in batches; raises ImportStopped once cancelled."""
    limits = image_limits()
    prefix = f"{shard}#"
    already = frozenset(
        path.split("#", 1)[1]
        for path in dataset.images.filter(relative_path__startswith=prefix).values_list(
            "relative_path", flat=True
        )
    )
    batch: list[Sample] = []
    for sample in iter_shard_samples(shard, limits=limits, skip=already):
        if sample.image_name in already:
            continue
        batch.append(sample)
        if len(batch) >= IMPORT_BATCH:
            _record(dataset, shard, batch, limits, pool)
            batch = []
            if after_batch:
                after_batch()
            if not still_importing(dataset.pk):
                raise ImportStopped
    _record(dataset, shard, batch, limits, pool)
    if after_batch:
        after_batch()


def _record(
    dataset: Dataset,
    shard: str,
    batch: list[Sample],
    limits: ImageLimits,
    pool: ThreadPoolExecutor,
) -> None:
    if batch:
        rows = list(pool.map(lambda sample: _row(shard, sample, limits), batch))
        record_batch(dataset, rows, total_is_processed=True)

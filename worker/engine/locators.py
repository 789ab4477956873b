"""Where an image's bytes are: a loose file, or a member of a container (a WebDataset shard)
read by a range read, local or at any fsspec URL (s3://...), without extracting anything.

Django-free: scoring (encode_files) and the media views both read through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class LocatorReadError(OSError):
    """The container member could not be read (missing shard, short read)."""


@dataclass(frozen=True)
class ImageLocator:
    """A loose file (offset None) or size bytes at offset in the file path_or_url."""

    path_or_url: str
    offset: int | None = None
    size: int | None = None

    @property
    def is_member(self) -> bool:
        return self.offset is not None and self.size is not None

    @property
    def is_remote(self) -> bool:
        return is_url(self.path_or_url)


def is_url(path_or_url: str) -> bool:
    """An fsspec URL (s3://, gs://, memory://...), not a local path."""
    head, sep, _ = path_or_url.partition("://")
    return bool(sep) and head.isascii() and head.replace("+", "").isalnum()


def open_binary(path_or_url: str):  # type: ignore[no-untyped-def]
    """A binary file object for a local path or an fsspec URL (fsspec loaded only for URLs)."""
    if not is_url(path_or_url):
        return open(path_or_url, "rb")  # noqa: SIM115 - the caller closes it
    import fsspec

    return fsspec.open(path_or_url, "rb").open()


def read_image_bytes(locator: ImageLocator, *, max_bytes: int | None = None) -> bytes:
    """The image's bytes: the whole loose file, or the member's range of its container."""
    if max_bytes is not None and locator.size is not None and locator.size > max_bytes:
        raise LocatorReadError(f"member too large: {locator.size} bytes > limit {max_bytes}")
    if not locator.is_member:
        if locator.is_remote:  # a loose file in a bucket (imports stored through storage)
            from fsspec.core import url_to_fs

            fs, path = url_to_fs(locator.path_or_url)
            if max_bytes is not None and fs.size(path) > max_bytes:
                raise LocatorReadError(f"file too large: over the limit of {max_bytes} bytes")
            return bytes(fs.cat_file(path))
        return Path(locator.path_or_url).read_bytes()
    assert locator.offset is not None and locator.size is not None
    end = locator.offset + locator.size
    if locator.is_remote:
        from fsspec.core import url_to_fs

        # One ranged GET of exactly the member (no read-ahead of the rest of the shard).
        fs, path = url_to_fs(locator.path_or_url)
        data = fs.cat_file(path, start=locator.offset, end=end)
    else:
        with open(locator.path_or_url, "rb") as handle:
            handle.seek(locator.offset)
            data = handle.read(locator.size)
    if len(data) != locator.size:
        raise LocatorReadError(
            f"container member truncated: read {len(data)} of {locator.size} bytes"
        )
    return bytes(data)

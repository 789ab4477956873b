"""Small WebDataset shards, tar archives and img2dataset folders built in tests (no network)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from tests.hostile import files


def add_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1_700_000_000
    archive.addfile(info, io.BytesIO(data))


def sample_members(key: str, *, color=(200, 30, 30), caption: str = "", url: str = "") -> list:
    sidecar = {"url": url or f"https://example.org/{key}.jpg", "width": 50, "height": 40}
    return [
        (f"{key}.jpg", files.jpeg(color=color)),
        (f"{key}.json", json.dumps(sidecar).encode()),
        (f"{key}.txt", (caption or f"caption of {key}").encode()),
    ]


def write_shard(path: Path, members: list[tuple[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as archive:
        for name, data in members:
            add_member(archive, name, data)
    return path


def shard_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members:
            add_member(archive, name, data)
    return buffer.getvalue()


def write_img2dataset_folder(folder: Path) -> Path:
    """img2dataset's webdataset output: 00000.tar (key.jpg/.json/.txt) + 00000.parquet with a
    row per URL (status success / failed_to_download and error_message)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    members = []
    for index, color in enumerate([(200, 0, 0), (0, 200, 0)]):
        key = f"0000000{index:02d}"
        members += sample_members(key, color=color, url=f"https://example.org/{index}.jpg")
    write_shard(folder / "00000.tar", members)
    rows = {
        "key": ["000000000", "000000001", "000000002"],
        "url": [
            "https://example.org/0.jpg",
            "https://example.org/1.jpg",
            "https://example.org/2.jpg",
        ],
        "caption": ["red", "green", "gone"],
        "status": ["success", "success", "failed_to_download"],
        "error_message": [None, None, "HTTP Error 404: Not Found"],
        "width": [50, 50, None],
        "height": [40, 40, None],
    }
    pq.write_table(pa.table(rows), folder / "00000.parquet")
    (folder / "00000_stats.json").write_text(json.dumps({"count": 3, "successes": 2}))
    return folder

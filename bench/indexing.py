"""``python -m bench.indexing``: import indexing in files per second, by where the files live.

The same generated JPEGs are imported three ways, one after another in one run: as loose
files in a folder, as WebDataset shards on local disk, and as the same shards on an
S3-compatible server (moto's server mode on 127.0.0.1, started here). Each import runs the
service in this process (``dataset_import``: header check, SHA-256, pHash and PDQ of every
file), the work an ``index_chunk`` task does on a worker, so the figure is one worker
process's indexing rate; more workers take more chunks in parallel.

    python -m bench.indexing                 # 10,000 images
    python -m bench.indexing --images 2000   # quicker

The database is SQLite in var/bench_indexing (bench.djangoenv): indexing writes one row per
image in batches, which is not what limits it.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARD_SIZE = 1000
S3_KEY, S3_SECRET, S3_REGION = "bench", "bench-secret", "us-east-1"


def _jpeg(rng: np.random.Generator, index: int) -> bytes:
    """A photo-sized (~500x375) JPEG with low-frequency content, distinct per index."""
    base = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    picture = Image.fromarray(base).resize((500, 375), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=85, comment=str(index).encode())
    return buffer.getvalue()


def _generate(folder: Path, shards: Path, count: int) -> int:
    """Write the images as loose files and as shards of SHARD_SIZE samples; returns bytes."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    shards.mkdir(parents=True, exist_ok=True)
    total = 0
    archive: tarfile.TarFile | None = None
    for index in range(count):
        if index % SHARD_SIZE == 0:
            if archive is not None:
                archive.close()
            # Closed when the next shard starts, or after the loop.
            archive = tarfile.open(shards / f"shard-{index // SHARD_SIZE:05d}.tar", "w")  # noqa: SIM115
        data = _jpeg(rng, index)
        total += len(data)
        (folder / f"{index:06d}.jpg").write_bytes(data)
        key = f"{index:09d}"
        sidecar = json.dumps({"key": key, "caption": f"image {index}"}).encode()
        for name, payload in ((f"{key}.jpg", data), (f"{key}.json", sidecar)):
            member = tarfile.TarInfo(name)
            member.size = len(payload)
            assert archive is not None
            archive.addfile(member, io.BytesIO(payload))
    if archive is not None:
        archive.close()
    return total


def _pattern(base: str, count: int) -> str:
    last = (count - 1) // SHARD_SIZE
    return f"{base}/shard-{{00000..{last:05d}}}.tar" if last else f"{base}/shard-00000.tar"


def _timed_import(create: Any, name: str, **source: str) -> dict[str, Any]:
    from curation.services.datasets import dataset_import

    dataset = create(name=name, queue=False, **source)
    started = time.perf_counter()
    dataset = dataset_import(dataset_id=dataset.pk)
    seconds = time.perf_counter() - started
    return {
        "state": dataset.state,
        "images": dataset.total,
        "failed": dataset.failed,
        "seconds": round(seconds, 2),
        "files_per_s": round(dataset.total / seconds, 1) if seconds > 0 else None,
    }


def _start_s3(shards: Path) -> tuple[Any, str]:
    """moto's S3 server on a free loopback port, a bucket holding the shards."""
    import socket

    import boto3  # type: ignore[import-untyped]
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    bucket = f"q16-bench-{uuid.uuid4().hex[:8]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name=S3_REGION,
    )
    client.create_bucket(Bucket=bucket)
    for shard in sorted(shards.glob("*.tar")):
        client.upload_file(str(shard), bucket, f"shards/{shard.name}")
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": S3_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_DEFAULT_REGION": S3_REGION,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ENDPOINT_URL_S3": endpoint,
        }
    )
    import fsspec.config

    fsspec.config.conf["s3"] = {"endpoint_url": endpoint, "key": S3_KEY, "secret": S3_SECRET}
    return server, f"s3://{bucket}/shards"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.indexing", description=__doc__)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--work", type=Path, default=REPO_ROOT / "var" / "bench_indexing")
    parser.add_argument("--skip-s3", action="store_true", help="folder and local shards only")
    args = parser.parse_args(argv)
    if args.images <= 0:
        parser.error("--images must be positive")

    images_root = args.work / "images"
    folder, shards = images_root / "folder", images_root / "shards"
    if (
        not (folder / f"{args.images - 1:06d}.jpg").exists()
        or len(list(folder.glob("*.jpg"))) != args.images
    ):
        import shutil

        shutil.rmtree(images_root, ignore_errors=True)
        started = time.perf_counter()
        size = _generate(folder, shards, args.images)
        print(f"generated {args.images} JPEGs ({size / 2**20:.1f} MiB) in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip

    server, s3_base = (None, "") if args.skip_s3 else _start_s3(shards)
    os.environ["Q16_IMPORT_URL_PREFIXES"] = f"{s3_base}/" if s3_base else ""
    from bench import djangoenv

    djangoenv.setup(args.work, fresh=True)
    from curation.services.datasets import dataset_create_from_folder
    from curation.services.sources.create import dataset_create_from_webdataset

    results: dict[str, dict[str, Any]] = {
        "folder": _timed_import(dataset_create_from_folder, "bench folder", folder=str(folder)),
        "webdataset (local)": _timed_import(
            dataset_create_from_webdataset,
            "bench shards",
            shards=_pattern(str(shards), args.images),
        ),
    }
    if server is not None:
        results["webdataset (S3 server)"] = _timed_import(
            dataset_create_from_webdataset, "bench s3", shards=_pattern(s3_base, args.images)
        )
        server.stop()

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(f"indexing, one process, {args.images} JPEGs of ~500x375 ({cpu}, {os.cpu_count()} cores)")
    print(f"{'source':<24}{'state':>10}{'images':>9}{'failed':>8}{'seconds':>10}{'files/s':>10}")
    for source, row in results.items():
        print(f"{source:<24}{row['state']:>10}{row['images']:>9}{row['failed']:>8}"
              f"{row['seconds']:>10}{row['files_per_s']:>10}")  # fmt: skip
    out = REPO_ROOT / "bench" / "results" / f"indexing-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cpu": cpu, "images": args.images, "results": results}, indent=2))
    print(f"written {out.relative_to(REPO_ROOT)}")
    return 0 if all(row["failed"] == 0 for row in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Peak RSS of a scoring worker (``bench.memory_child``) at two dataset sizes."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import data
from bench.options import ROOT


def bench_memory(args: argparse.Namespace, pool: list[Path], work: Path) -> dict[str, Any]:
    """Peak RSS of a scoring process (a child, like a worker) at two dataset sizes."""
    out: dict[str, Any] = {"model": args.memory_model, "runs": {}}
    for size in args.memory_sizes:
        folder = data.link_folder(work / "images" / f"memory_{size}", pool[:size])
        command = [
            sys.executable,
            "-m",
            "bench.memory_child",
            "--work-dir",
            str(work),
            "--folder",
            str(folder),
            "--model",
            args.memory_model,
            "--threshold",
            str(args.threshold),
        ]
        completed = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=1800
        )
        if completed.returncode != 0:
            raise RuntimeError(f"memory run of {size} failed:\n{completed.stderr[-3000:]}")
        out["runs"][str(size)] = json.loads(completed.stdout.strip().splitlines()[-1])
    small, large = (out["runs"][str(s)] for s in args.memory_sizes)
    growth = large["peak_rss_mib"] - small["peak_rss_mib"]
    out["small_images"], out["large_images"] = args.memory_sizes
    out["peak_rss_mib_small"] = small["peak_rss_mib"]
    out["peak_rss_mib_large"] = large["peak_rss_mib"]
    out["growth_mib"] = growth
    out["growth_ratio"] = large["peak_rss_mib"] / small["peak_rss_mib"]
    # Flat: the 5x larger run peaks within 10 % (or 64 MiB) of the small one.
    out["flat"] = growth <= max(64.0, 0.10 * small["peak_rss_mib"])
    return out

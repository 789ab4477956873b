"""The benchmark run: every section in one process (memory in child processes), side by side.

Sections (see README.md, "Benchmarks"):

- ``model``: image-encoder forward on ready tensors, best batch size, per backend; and
  ``model_paired``, the forward alone over as many tensors as end_to_end encodes, in its
  steps, measured just after it in the same process (the end-to-end ratio's reference).
- ``end_to_end``: JPEG files -> stored scores through the scoring service a Celery
  task calls (``scoring_run_start`` + ``scoring_chunk_process``), per backend.
- ``naive``: the paper repository's loop (open, preprocess, forward at batch 1, softmax).
- ``decode``: decode + preprocess alone on one core, small/large JPEGs, with/without draft.
- ``rescore``: cached embeddings -> stored scores for a new prompt version, through the
  service (``scoring_run_rescore``, SQLite; ``python -m bench.rescore_pg`` for PostgreSQL)
  and as engine math + a bulk SQLite write, 1M each.
- ``train``: ``train_prompts`` on labelled synthetic embeddings, paper settings.
- ``memory``: peak RSS of a scoring worker process for two dataset sizes.
- ``fidelity``: each faster backend's embeddings and flags against fp32 PyTorch.

This module runs them in order (:func:`main`); the sections live in ``options``
(the command line), ``forward`` (model, naive, decode), ``end_to_end`` (and
fidelity), ``rescore``, ``train``, ``memory``, and ``report`` (ratios, table, JSON).
``model`` and ``end_to_end`` run in one child process per backend (``backend_child``),
so that no backend slows another (OpenVINO's threads slow PyTorch in the same process);
this process itself only ever loads the torch backend (naive, decode).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import logging
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import data, djangoenv, procmem
from bench.backend_child import load_kept
from bench.end_to_end import fidelity
from bench.forward import bench_decode, bench_naive
from bench.memory import bench_memory
from bench.options import ROOT, parse_args
from bench.report import TARGETS, format_table, ratios, write_json
from bench.rescore import bench_rescore_engine, bench_rescore_service
from bench.rescore_pg import bench_rescore_pg
from bench.train import bench_train

logger = logging.getLogger("bench")


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.results: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        # Cores kept busy by OTHER processes during each section: on a shared machine
        # a figure measured under load is slower than the hardware allows.
        self.other_load: dict[str, float | None] = {}

    def wanted(self, section: str) -> bool:
        return not self.args.sections or section in self.args.sections

    def section(self, name: str, fn: Callable[[], Any], *, always: bool = False) -> Any:
        if not always and not self.wanted(name):
            return None
        started = time.perf_counter()
        sys.stderr.write(f"[bench] {name} ...\n")
        meter = procmem.LoadMeter()
        try:
            value = fn()
        except Exception as exc:
            self.errors[name] = f"{type(exc).__name__}: {exc}"
            sys.stderr.write(traceback.format_exc())
            return None
        self.results[name] = value
        seconds = time.perf_counter() - started
        if seconds >= 2.0:  # shorter sections give no meaningful reading
            self.other_load[name] = meter.other_cores()
        sys.stderr.write(f"[bench] {name} done in {seconds:.1f}s\n")
        return value


def _meta(args: argparse.Namespace, capabilities: list[str]) -> dict[str, Any]:
    import torch

    from worker.engine.spec import cpu_signature

    signature = cpu_signature()
    versions: dict[str, str] = {"torch": str(torch.__version__)}
    for package in ("openvino", "nncf"):
        # The version without importing the package (its threads would stay loaded).
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": signature["cpu"],
            "flags": signature["flags"],
            "openvino_capabilities": capabilities,
            "cores": len(os.sched_getaffinity(0)),
            "memory_gib": round(
                os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
            ),
            "python": platform.python_version(),
            "torch_threads": torch.get_num_threads(),
        },
        "versions": versions,
        "args": {k: sorted(v) if isinstance(v, set) else v for k, v in vars(args).items()},
    }


def _backend_child(
    args: argparse.Namespace,
    work: Path,
    backend: str,
    *,
    dataset_id: int,
    calibration_folder: Path,
    sections: list[str],
) -> dict[str, Any]:
    """The model and end-to-end sections of one backend, in a child process of its own."""
    command = [
        sys.executable,
        "-m",
        "bench.backend_child",
        "--work-dir",
        str(work),
        "--model",
        args.model,
        "--backend",
        backend,
        "--dataset-id",
        str(dataset_id),
        "--calibration-folder",
        str(calibration_folder),
        "--batch-sizes",
        ",".join(str(b) for b in args.batch_sizes),
        "--batch-size",
        str(args.batch_size or 0),
        "--threshold",
        str(args.threshold),
        "--sections",
        ",".join(sections),
    ]
    completed = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=3600
    )
    if completed.returncode != 0:
        raise RuntimeError(f"backend {backend} failed:\n{completed.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _auto_pick(results: dict[str, Any]) -> dict[str, Any] | None:
    """What Q16_BACKEND=auto would pick from this run's own figures (end to end, fidelity)."""
    from worker.engine.backend_choice import FIDELITY_BOUNDS, passes_bounds

    e2e = results.get("end_to_end") or {}
    if "torch" not in e2e:
        return None
    fidelity_by = results.get("fidelity") or {}
    qualified = ["torch"] + [
        name for name in e2e if name in fidelity_by and passes_bounds(fidelity_by[name])
    ]
    best = max(qualified, key=lambda name: e2e[name]["images_per_second"])
    return {
        "backend": best,
        "qualified": qualified,
        "bounds": FIDELITY_BOUNDS,
        "speedup_vs_torch": e2e[best]["images_per_second"] / e2e["torch"]["images_per_second"],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    work = Path(args.work_dir).resolve()
    djangoenv.setup(work, fresh=True)

    from curation.models import Dataset
    from curation.services.datasets import dataset_create_from_folder, dataset_import
    from worker.engine.clip import ModelSpec, build_random_checkpoint, load_clip
    from worker.engine.store import prompts_from_bytes

    started = time.perf_counter()
    runner = Runner(args)
    images_dir = work / "images"
    sys.stderr.write("[bench] preparing images and the random-weight model ...\n")
    small = data.ensure_jpegs(
        images_dir / "small",
        prefix="s",
        count=max(args.small, args.decode_n, args.naive),
        size=data.SMALL_SIZE,
        seed0=0,
    )
    large = data.ensure_jpegs(
        images_dir / "large",
        prefix="l",
        count=max(args.large, 2),
        size=data.LARGE_SIZE,
        seed0=1_000_000,
    )
    e2e_folder = data.link_folder(
        images_dir / f"e2e_{args.small}_{args.large}", small[: args.small] + large[: args.large]
    )

    checkpoint = work / "models" / f"{args.model}-random-seed0.pt"
    if not checkpoint.is_file():
        build_random_checkpoint(args.model, checkpoint, seed=0)
    spec = ModelSpec(args.model, checkpoint_path=str(checkpoint))
    # This process loads only the torch backend (naive, decode); every backend's model and
    # end-to-end sections run in a child of their own.
    torch_clip = load_clip(spec, device="cpu")

    dataset = None
    if runner.wanted("end_to_end"):
        dataset = dataset_create_from_folder(
            name=f"bench e2e {time.time_ns()}", folder=str(e2e_folder), queue=False
        )
        dataset = dataset_import(dataset_id=dataset.pk)
        if dataset.state != Dataset.State.READY:
            raise RuntimeError(f"benchmark dataset import ended {dataset.state}: {dataset.error}")

    backends = ["torch", *[b for b in args.backends if b != "torch"]]
    child_sections = [s for s in ("model", "end_to_end") if runner.wanted(s)]
    children: dict[str, dict[str, Any]] = {}

    def isolated() -> dict[str, Any]:
        for backend in backends:
            sys.stderr.write(f"[bench]   {backend} (own process) ...\n")
            try:
                children[backend] = _backend_child(
                    args,
                    work,
                    backend,
                    dataset_id=dataset.pk if dataset is not None else 0,
                    calibration_folder=e2e_folder,
                    sections=child_sections,
                )
            except Exception as exc:  # one backend failing leaves the others' figures
                runner.errors[f"backend {backend}"] = f"{type(exc).__name__}: {exc}"
                sys.stderr.write(f"[bench]   {backend} failed: {exc}\n")
        return {
            name: {
                k: v for k, v in child.items() if k not in ("model", "end_to_end", "model_paired")
            }
            for name, child in children.items()
        }

    if child_sections:
        runner.section("backends", isolated, always=True)
    for name in [*child_sections, "model_paired"]:
        by_backend = {backend: child[name] for backend, child in children.items() if name in child}
        if by_backend:
            runner.results[name] = by_backend

    def naive() -> dict[str, Any]:
        from curation.models import PromptVersion

        version = PromptVersion.objects.filter(model_key=torch_clip.key).first()
        prompts = (
            prompts_from_bytes(bytes(version.vectors))
            if version is not None
            else data.unit_vectors(2, torch_clip.dim, seed=3)
        )
        # Same mix of small and large images as the end-to-end set.
        n_large = round(args.naive * args.large / max(args.small + args.large, 1))
        paths = small[: args.naive - n_large] + large[:n_large]
        return bench_naive(torch_clip, paths, prompts)

    runner.section("naive", naive)
    runner.section(
        "decode",
        lambda: bench_decode(torch_clip, small[: args.decode_n], large[: max(args.large, 2)]),
    )
    runner.section(
        "rescore",
        lambda: {
            "service": bench_rescore_service(args.rescore_service_n, 512, threshold=args.threshold),
            "engine_bulk": bench_rescore_engine(
                args.rescore_n, 512, work, threshold=args.threshold
            ),
        },
    )
    runner.section(
        "rescore_pg",
        lambda: bench_rescore_pg(
            sizes=args.rescore_pg_sizes, processes=args.rescore_pg_processes,
            threshold=args.threshold,
        ),
    )  # fmt: skip
    runner.section("train", lambda: bench_train(args.train_n, 512))

    def memory() -> dict[str, Any]:
        pool = data.ensure_jpegs(
            images_dir / "pool",
            prefix="p",
            count=max(args.memory_sizes),
            size=data.SMALL_SIZE,
            seed0=2_000_000,
        )
        return bench_memory(args, pool, work)

    runner.section("memory", memory)

    e2e = runner.results.get("end_to_end") or {}
    if "torch" in e2e and "kept" in children["torch"]:
        reference = load_kept(children["torch"]["kept"])
        runner.section(
            "fidelity",
            lambda: {
                name: fidelity(
                    reference, load_kept(children[name]["kept"]), threshold=args.threshold
                )
                for name in e2e
                if name != "torch" and "kept" in children[name]
            },
        )
        runner.results["auto_pick"] = _auto_pick(runner.results)
    runner.results["ratios"] = ratios(runner.results)
    runner.results["peak_rss_mib_bench_process"] = procmem.peak_rss_mib()
    runner.results["other_processes_busy_cores"] = runner.other_load
    capabilities: list[str] = next(
        (c["openvino_capabilities"] for c in children.values() if c.get("openvino_capabilities")),
        [],
    )
    report = {
        "meta": _meta(args, capabilities),
        "seconds": time.perf_counter() - started,
        "targets": TARGETS,
        **runner.results,
        "errors": runner.errors,
    }

    output = write_json(report, args.output)
    sys.stdout.write(format_table(report) + f"\nJSON: {output}\n")
    return 1 if runner.errors else 0

"""One backend's model and end-to-end sections, alone in a child process (run by bench.run).

Each backend is measured in its own process, like a worker that loads only its configured
backend: OpenVINO's thread pools, once loaded, slow PyTorch's forward in the same process
(measured about 28 % on a 2-core EPYC), so measuring them side by side in one process
understates torch. Prints one JSON line: the sections' results, the load (and, for int8,
calibration) time, and where the run's embeddings and scores were saved (for fidelity).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import djangoenv


def _openvino_capabilities() -> list[str]:
    if "openvino" not in sys.modules:  # never load it into a torch child just to ask
        return []
    import openvino as ov

    return list(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backend_child")
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--dataset-id", type=int, default=0, help="0: no end_to_end section")
    parser.add_argument("--calibration-folder", default="")
    parser.add_argument("--batch-sizes", default="16,64")
    parser.add_argument("--batch-size", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--sections", default="model,end_to_end")
    args = parser.parse_args(argv)
    work = Path(args.work_dir)
    djangoenv.setup(work, fresh=False)

    from bench.end_to_end import bench_end_to_end
    from bench.forward import bench_model, bench_pipeline_interleaved
    from curation.models import Dataset
    from worker.engine.clip import ModelSpec, load_clip

    sections = {part for part in args.sections.split(",") if part}
    checkpoint = work / "models" / f"{args.model}-random-seed0.pt"
    calibration = (
        sorted(p for p in Path(args.calibration_folder).iterdir() if p.is_file())
        if args.calibration_folder
        else None
    )
    started = time.perf_counter()
    clip = load_clip(
        ModelSpec(args.model, checkpoint_path=str(checkpoint)),
        device="cpu",
        backend=args.backend,
        backend_cache_dir=work / "backends",
        calibration_sources=calibration,
        auto_threshold=args.threshold,
    )
    out: dict[str, Any] = {
        "backend": clip.backend,
        "model_key": clip.key,
        "load_seconds": time.perf_counter() - started,
        "openvino_capabilities": _openvino_capabilities(),
    }
    if "model" in sections:
        out["model"] = bench_model(clip, [int(b) for b in args.batch_sizes.split(",") if b])
    if "end_to_end" in sections and args.dataset_id:
        kept: dict[str, Any] = {}
        dataset = Dataset.objects.get(pk=args.dataset_id)
        out["end_to_end"] = bench_end_to_end(
            clip,
            dataset,
            threshold=args.threshold,
            batch_size=args.batch_size or None,
            keep=kept,
        )
        saved = work / "kept" / f"{args.backend}.npz"
        saved.parent.mkdir(parents=True, exist_ok=True)
        hashes = sorted(kept["embeddings"])
        ids = sorted(kept["scores"])
        np.savez(
            saved,
            hashes=np.array(hashes),
            embeddings=np.stack([kept["embeddings"][h] for h in hashes]).astype(np.float32),
            image_ids=np.array(ids, dtype=np.int64),
            scores=np.array([kept["scores"][i] for i in ids], dtype=np.float64),
        )
        out["kept"] = str(saved)
        if "model" in sections and calibration:
            # The pipeline against the forward alone, interleaved, on the same files.
            out["model_paired"] = bench_pipeline_interleaved(
                clip, calibration, step=clip.cpu_forward_batch or args.batch_size or 64
            )
    out["other_modules_loaded"] = sorted(
        name for name in ("openvino", "nncf") if name in sys.modules
    )
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


def load_kept(path: str) -> dict[str, Any]:
    """A child's saved run, in the shape :func:`bench.end_to_end.fidelity` takes."""
    with np.load(path) as saved:
        return {
            "embeddings": dict(zip(saved["hashes"].tolist(), saved["embeddings"], strict=True)),
            "scores": dict(zip(saved["image_ids"].tolist(), saved["scores"].tolist(), strict=True)),
        }


if __name__ == "__main__":
    raise SystemExit(main())

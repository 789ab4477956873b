"""One scoring worker process for the memory benchmark (run by bench.run in a child process).

Imports a folder as a dataset, loads the model, then scores the dataset through the
scoring service chunk by chunk, like a worker; prints one JSON line with the peak RSS
of the scoring phase and the RSS after every chunk.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench import djangoenv, procmem


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--model", default="q16-tiny")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    work = Path(args.work_dir)
    djangoenv.setup(work, fresh=False)

    from curation.models import Dataset, Embedding
    from curation.services.chunks import scoring_chunk_process
    from curation.services.datasets import dataset_create_from_folder, dataset_import
    from curation.services.prompt_zero_shot import prompt_version_create_zero_shot
    from curation.services.scoring import scoring_run_start
    from worker.engine.clip import ModelSpec, build_random_checkpoint, load_clip

    checkpoint = work / "models" / f"{args.model}-random-seed0.pt"
    if not checkpoint.is_file():
        build_random_checkpoint(args.model, checkpoint, seed=0)
    dataset = dataset_create_from_folder(
        name=f"bench memory {Path(args.folder).name} {time.time_ns()}",
        folder=args.folder,
        queue=False,
    )
    dataset = dataset_import(dataset_id=dataset.pk)
    if dataset.state != Dataset.State.READY:
        raise SystemExit(f"import ended {dataset.state}: {dataset.error}")
    clip = load_clip(
        ModelSpec(args.model, checkpoint_path=str(checkpoint)),
        device="cpu",
        backend=args.backend,
        backend_cache_dir=work / "backends",
    )
    Embedding.objects.filter(model_key=clip.key).delete()
    version = prompt_version_create_zero_shot(clip=clip, name="bench memory")
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=args.threshold, queue=False
    )
    chunk_ids = list(run.chunks.order_by("index").values_list("id", flat=True))
    rss_before = procmem.rss_mib()
    reset = procmem.reset_peak()
    after_chunks = []
    started = time.perf_counter()
    for chunk_id in chunk_ids:
        scoring_chunk_process(chunk_id=chunk_id, clip_provider=lambda _key: clip)
        after_chunks.append(round(procmem.rss_mib(), 1))
    seconds = time.perf_counter() - started
    run.refresh_from_db()
    result = {
        "images": run.total,
        "encoded": run.encoded,
        "chunks": len(chunk_ids),
        "seconds": seconds,
        "images_per_second": run.total / seconds,
        "rss_before_mib": rss_before,
        "peak_rss_mib": procmem.peak_rss_mib(),
        "peak_is_scoring_phase_only": reset,
        "rss_after_each_chunk_mib": after_chunks,
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

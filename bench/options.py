"""The command line of ``python -m bench``: options, and the defaults of full and --quick runs."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"

DESCRIPTION = (
    "The benchmark run: every section side by side; each backend (and the memory runs) "
    "in a child process of its own."
)


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _str_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=DESCRIPTION)
    parser.add_argument("--quick", action="store_true", help="small smoke run (< 60 s, q16-tiny)")
    parser.add_argument("--work-dir", default=str(ROOT / "var" / "bench"))
    parser.add_argument("--output", default="", help="JSON path (default bench/results/<ts>.json)")
    parser.add_argument("--model", default=None, help="open_clip model (default ViT-B-16)")
    parser.add_argument(
        "--backends",
        default=None,
        help="faster backends compared with torch, each in its own process "
        "(default: openvino-bf16,openvino,openvino-int8 when installed)",
    )
    parser.add_argument("--small", type=int, default=None, help="~500x375 JPEGs end to end")
    parser.add_argument("--large", type=int, default=None, help="~3000x2000 JPEGs end to end")
    parser.add_argument("--naive", type=int, default=None, help="images for the naive loop")
    parser.add_argument("--batch-sizes", default=None, help="model batch sizes, e.g. 16,64")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="scoring batch (default Q16_BATCH_SIZE)"
    )
    parser.add_argument("--decode-n", type=int, default=None, help="small JPEGs for decode")
    parser.add_argument(
        "--rescore-n", type=int, default=None, help="embeddings, engine + bulk write"
    )
    parser.add_argument(
        "--rescore-service-n", type=int, default=None, help="embeddings, service path"
    )
    parser.add_argument(
        "--rescore-pg-sizes", default=None, help="rescore on PostgreSQL, e.g. 100000,1000000"
    )
    parser.add_argument(
        "--rescore-pg-processes", type=int, default=2, help="processes of the PostgreSQL rescore"
    )
    parser.add_argument("--train-n", type=int, default=None)
    parser.add_argument("--memory-sizes", default=None, help="two dataset sizes, e.g. 2000,10000")
    parser.add_argument("--memory-model", default="q16-tiny", help="model of the memory runs")
    parser.add_argument("--threshold", type=float, default=0.5, help="the runs' flag threshold")
    parser.add_argument(
        "--sections", default="", help="comma list of sections to run (default all)"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    defaults: dict[str, Any] = {
        "model": "q16-tiny" if quick else "ViT-B-16",
        "small": 24 if quick else 192,
        "large": 2 if quick else 16,
        "naive": 8 if quick else 32,
        "batch_sizes": "8,16" if quick else "16,64",
        "decode_n": 24 if quick else 96,
        "rescore_n": 20_000 if quick else 1_000_000,
        "rescore_service_n": 3_000 if quick else 1_000_000,
        "rescore_pg_sizes": "2000,10000" if quick else "100000,1000000",
        "train_n": 2_000 if quick else 10_000,
        "memory_sizes": "100,300" if quick else "2000,10000",
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.batch_sizes = _int_list(args.batch_sizes)
    args.memory_sizes = _int_list(args.memory_sizes)
    args.rescore_pg_sizes = _int_list(args.rescore_pg_sizes)
    if len(args.memory_sizes) != 2:
        parser.error("--memory-sizes takes two sizes")
    if args.backends is None:
        # Found, not imported: this process never loads OpenVINO (backend_child does).
        args.backends = ""
        if importlib.util.find_spec("openvino") is not None:
            args.backends = "openvino-bf16,openvino"
            if importlib.util.find_spec("nncf") is not None:
                args.backends += ",openvino-int8"
    args.backends = _str_list(args.backends)
    args.sections = set(_str_list(args.sections))
    return args

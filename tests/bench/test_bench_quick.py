"""Smoke test of the benchmark harness: ``python -m bench --quick`` writes every section.

Runs the real command in a child process (it sets up its own throwaway Django database
in a temporary work folder), so it touches neither the test database nor var/bench.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SECTIONS = (
    "model", "end_to_end", "naive", "decode", "rescore", "rescore_pg", "train", "memory", "ratios"
)  # fmt: skip


def _numbers(value: object) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        return [n for item in value.values() for n in _numbers(item)]
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    return []


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("bench")
    output = work / "result.json"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "Q16_DATA_DIR", "DJANGO_SETTINGS_MODULE"}
    }
    env["Q16_BACKEND_CACHE"] = str(work / "backends")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--work-dir",
            str(work),
            "--output",
            str(output),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "end_to_end" in completed.stdout  # the table went to the terminal
    return json.loads(output.read_text())


def test_quick_run_reports_every_section_with_positive_numbers(quick_report: dict) -> None:
    assert quick_report["errors"] == {}
    for section in SECTIONS:
        assert quick_report.get(section), f"section {section} missing or empty"
    for name, result in quick_report["model"].items():
        assert result["images_per_second"] > 0, name
    for name, result in quick_report["end_to_end"].items():
        assert result["images_per_second"] > 0 and result["images"] > 0, name
        assert result["timings"]["forward"] > 0, name
    assert quick_report["naive"]["images_per_second"] > 0
    assert set(quick_report["decode"]) == {
        "small_500x375_draft",
        "small_500x375_nodraft",
        "large_3000x2000_draft",
        "large_3000x2000_nodraft",
    }
    for name in ("service", "engine_bulk"):
        assert quick_report["rescore"][name]["seconds"] > 0
    rescore_pg = quick_report["rescore_pg"]
    assert [r["embeddings"] for r in rescore_pg["results"]] == [2000, 10000]
    assert all(r["seconds"] > 0 and r["flagged"] > 0 for r in rescore_pg["results"])
    assert rescore_pg["cost_per_image_ratio"] > 0
    assert quick_report["train"]["seconds"] > 0
    memory = quick_report["memory"]
    assert memory["peak_rss_mib_small"] > 0 and memory["peak_rss_mib_large"] > 0
    assert isinstance(memory["flat"], bool)
    for section in ("model", "end_to_end", "naive", "decode", "train", "ratios"):
        assert all(n > 0 for n in _numbers(quick_report[section])), section


def test_quick_run_compares_faster_backends(quick_report: dict) -> None:
    backends = [name for name in quick_report["end_to_end"] if name != "torch"]
    if not backends:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("no faster backend was benchmarked (openvino missing?)")
        pytest.skip("openvino is not installed")
    for name in backends:
        fidelity = quick_report["fidelity"][name]
        assert fidelity["cosine_mean"] >= 0.99
        assert 0.0 <= fidelity["flag_agreement"] <= 1.0
        assert f"end_to_end[{name}]/end_to_end[torch]" in quick_report["ratios"]

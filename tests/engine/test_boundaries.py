"""The engine's import boundaries: no Django at all, no torch for the light modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINE = REPO_ROOT / "worker" / "engine"


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_engine_never_imports_django_or_the_apps() -> None:
    offenders = {
        f"{path.relative_to(REPO_ROOT)}: {name}"
        for path in ENGINE.rglob("*.py")
        for name in _imported_modules(path)
        if name.split(".")[0]
        in {"django", "rest_framework", "celery", "config", "curation", "reviewer"}
    }
    assert not offenders


def test_light_modules_do_not_import_torch() -> None:
    # A fresh interpreter: this one has long imported torch. These three are what
    # web code may need (blobs, scores, prompt uploads); torch takes seconds to import.
    probe = (
        "import sys, worker.engine.store, worker.engine.scoring, worker.engine.prompt_files\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, check=True, capture_output=True, text=True
    )
    assert out.stdout.strip() == "False"

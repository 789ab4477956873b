"""The layers the README's Architecture section draws, checked against the code.

- No import circle between product modules, counting imports inside functions.
- No two parts import each other; every arrow between parts points down the layer list.
- The web process and the light commands never load torch, open_clip or openvino; the
  engine's torch-free modules import with torch made unimportable.
- Services queue work only by task name (curation.dispatch), and each name is a task.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PRODUCT_PACKAGES = ("config", "stack", "curation", "reviewer", "labels", "audit", "worker")
HEAVY_MODULES = ("torch", "open_clip", "openvino", "torchvision")

# Top to bottom: a part may import only the parts below it.
LAYERS = [
    "config",
    "worker.tasks",
    "labels",
    "reviewer",
    "curation",
    "audit",
    "worker.engine",
]
# The worker package's own files sit with its tasks; `stack` (the process supervisor)
# imports no product code at all.
PART_OF = {"worker.apps": "worker.tasks", "worker": "worker.tasks"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _product_modules() -> dict[str, Path]:
    modules = {}
    for package in PRODUCT_PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            modules[_module_name(path)] = path
    return modules


def _imports(path: Path, module: str, known: set[str]) -> set[str]:
    """The product modules `module` imports anywhere in its file (functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for name in names:
            # The longest product module the name falls in (a module, or a name inside one).
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _product_modules()
    known = set(modules)
    return {name: _imports(path, name, known) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def _part(module: str) -> str:
    """The part a module belongs to: the longest matching prefix wins."""
    prefixes = {**{part: part for part in [*LAYERS, "stack"]}, **PART_OF}
    for prefix in sorted(prefixes, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return prefixes[prefix]
    raise AssertionError(f"{module} belongs to no part")


def test_no_import_circles_between_product_modules():
    assert _cycles(_graph()) == []


def test_parts_import_only_downwards():
    upward = []
    for module, targets in _graph().items():
        source = _part(module)
        for target in targets:
            destination = _part(target)
            if destination == source:
                continue
            if source == "stack" or destination == "stack":
                # The supervisor runs Django's commands as processes, never imports them.
                upward.append(f"{module} -> {target}")
                continue
            if LAYERS.index(destination) < LAYERS.index(source):
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_services_queue_work_by_name_only():
    graph = _graph()
    importers = sorted(m for m, targets in graph.items() if "worker.tasks" in targets)
    assert importers == []


def _fresh_python(code: str) -> dict:
    env_code = (
        "import os, sys, json\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings')\n" + code
    )
    result = subprocess.run(
        [sys.executable, "-c", env_code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_web_process_never_loads_torch():
    loaded = _fresh_python(
        "import config.wsgi, config.urls\n"
        "from django.urls import get_resolver, URLPattern, URLResolver\n"
        "def walk(patterns):\n"
        "    for p in patterns:\n"
        "        if isinstance(p, URLResolver):\n"
        "            walk(p.url_patterns)\n"
        "        else:\n"
        "            p.callback\n"
        "walk(get_resolver().url_patterns)\n"
        f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))\n"
    )
    assert loaded == []


@pytest.mark.parametrize(
    "command",
    [
        "import_dataset",
        "import_prompts",
        "export_blocklist",
        "manage_work",
        "ensure_admin",
    ],
)
def test_light_commands_never_load_torch(command):
    loaded = _fresh_python(
        "import django\n"
        "django.setup()\n"
        "from django.core.management import get_commands, load_command_class\n"
        f"cmd = load_command_class(get_commands()[{command!r}], {command!r})\n"
        f"cmd.create_parser('manage.py', {command!r}).format_help()\n"
        f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))\n"
    )
    assert loaded == []


def test_engine_torch_free_modules_import_without_torch():
    loaded = _fresh_python(
        # None in sys.modules makes `import torch` raise ImportError.
        "for name in ('torch', 'open_clip', 'openvino', 'torchvision'):\n"
        "    sys.modules[name] = None\n"
        "import importlib\n"
        "for name in ('spec', 'tuning_config', 'metrics', 'scoring', 'store', 'prompt_files',"
        " 'images'):\n"
        "    importlib.import_module('worker.engine.' + name)\n"
        "from worker.engine.spec import model_embed_dim\n"
        "print(json.dumps(model_embed_dim('q16-tiny') > 0))\n"
    )
    assert loaded is True


def test_review_measures_import_without_django():
    loaded = _fresh_python(
        "sys.modules['django'] = None\n"
        "from reviewer.measures import cohen_kappa, wilson_interval\n"
        "print(json.dumps([cohen_kappa(['a', 'b'], ['a', 'b']), wilson_interval(0, 0)]))\n"
    )
    assert loaded == [1.0, [0.0, 1.0]]


def test_readme_layer_picture_matches_the_layers():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Architecture", 1)[1]
    picture = section.split("```", 2)[1]
    drawn = [
        line.split()[0]
        for line in picture.splitlines()[1:]
        if line.strip() and line.split()[0] not in ("↓", "|", "v")
    ]
    assert drawn == LAYERS


def test_dispatch_names_real_tasks():
    from config.celery import app
    from curation import dispatch

    __import__("worker.tasks")
    assert set(dispatch.TASK_NAMES) <= set(app.tasks)


def test_no_product_file_is_over_600_lines():
    long_files = {}
    for package in (*PRODUCT_PACKAGES, "bench"):
        for path in (REPO / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > 600:
                long_files[str(path.relative_to(REPO))] = lines
    for path in (REPO / "static" / "js").rglob("*.js"):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > 600:
            long_files[str(path.relative_to(REPO))] = lines
    assert long_files == {}


def test_graph_sees_function_level_imports():
    # The check above is only as good as the import reader: it must see an import inside a
    # function, and relative imports.
    graph = _graph()
    assert "worker.engine.spec" in graph["worker.engine.clip"]
    assert any(target.startswith("curation") for target in graph["worker.tasks"])
    assert not _cycles({"a": {"b"}, "b": set()})
    assert _cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]
    counts = defaultdict(int)
    for targets in graph.values():
        for target in targets:
            counts[target] += 1
    assert counts["curation.models"] > 5

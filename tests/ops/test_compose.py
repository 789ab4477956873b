"""docker-compose.yml and .env.example, read with PyYAML: every service the deployment needs,
queues covered, the GPU worker on one reserved NVIDIA device with one process, a health check
everywhere, and every variable the file reads documented in .env.example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from stack.programs import ALL_QUEUES

REPO = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (REPO / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
ENV_EXAMPLE = (REPO / ".env.example").read_text()
WORKERS = ("worker-gpu", "worker-cpu")
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def _code(text: str) -> str:
    """The file without its comment lines (they quote shell snippets with `$`)."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def _with_defaults(value: str) -> str:
    """Interpolate like compose with an empty environment: the defaults."""
    return VARIABLE.sub(lambda m: m.group(3) if m.group(2) in (":-", "-") else "", value)


def _option(service: str, name: str) -> str:
    """The value of `--name=value` (or `--name value`) in a service's command, defaults in."""
    command = [_with_defaults(str(part)) for part in SERVICES[service]["command"]]
    for index, part in enumerate(command):
        if part.startswith(f"{name}="):
            return part.split("=", 1)[1]
        if part == name:
            return command[index + 1]
    raise AssertionError(f"{service} has no {name}")


def test_the_services_exist():
    assert {"postgres", "redis", "migrate", "web", *WORKERS, "beat"} <= set(SERVICES)


def test_the_workers_queues_cover_every_queue():
    taken = set()
    for worker in WORKERS:
        assert SERVICES[worker]["command"][:4] == ["celery", "-A", "config", "worker"]
        taken |= set(_option(worker, "--queues").split(","))
    assert taken == set(ALL_QUEUES) == {"gpu", "cpu"}
    assert _option("worker-gpu", "--queues") == "gpu"
    assert _option("worker-cpu", "--queues") == "cpu"


def test_the_gpu_worker_reserves_an_nvidia_gpu_and_runs_one_process():
    devices = SERVICES["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert len(devices) == 1
    assert devices[0]["driver"] == "nvidia"
    assert devices[0]["capabilities"] == ["gpu"]
    assert [_with_defaults(device) for device in devices[0]["device_ids"]] == ["0"]
    assert _option("worker-gpu", "--concurrency") == "1"
    # prefork: the model loads in the child after the fork, the parent stays free for pings.
    assert _option("worker-gpu", "--pool") == "prefork"
    # The CPU worker reserves nothing and never uses a GPU.
    assert "deploy" not in SERVICES["worker-cpu"]
    assert SERVICES["worker-cpu"]["environment"]["Q16_DEVICE"] == "cpu"


def test_exactly_one_beat_and_no_worker_runs_beat():
    beats = [name for name, service in SERVICES.items() if "beat" in service.get("command", [])]
    assert beats == ["beat"]
    for worker in WORKERS:
        assert not {"-B", "--beat"} & set(SERVICES[worker]["command"])


def test_every_service_has_a_health_check():
    for name, service in SERVICES.items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        if check.get("disable"):
            # Only a one-shot service that others wait for to complete goes without.
            assert service["restart"] == "no", name
            waiters = [
                other
                for other in SERVICES.values()
                if (other.get("depends_on") or {}).get(name, {}).get("condition")
                == "service_completed_successfully"
            ]
            assert waiters, name
            continue
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


@pytest.mark.parametrize("worker", WORKERS)
def test_each_worker_health_check_pings_its_own_hostname(worker):
    test = SERVICES[worker]["healthcheck"]["test"]
    assert test[1:4] == ["python", "-m", "config.worker_health"]
    assert test[test.index("--hostname") + 1] == _option(worker, "--hostname")


def test_beat_and_web_health_checks():
    assert SERVICES["beat"]["healthcheck"]["test"][1:5] == [
        "python",
        "-m",
        "config.worker_health",
        "--beat",
    ]
    assert "/healthz" in " ".join(SERVICES["web"]["healthcheck"]["test"])


def test_every_required_variable_is_in_env_example():
    required = {
        m.group(1) for m in VARIABLE.finditer(_code(COMPOSE_TEXT)) if "?" in (m.group(2) or "")
    }
    assert {"SECRET_KEY", "POSTGRES_PASSWORD", "ALLOWED_HOSTS"} <= required
    set_lines = {line.split("=", 1)[0] for line in ENV_EXAMPLE.splitlines() if "=" in line}
    # Required ones stand uncommented (and empty: compose refuses to start until filled in).
    assert required <= set_lines
    for name in required:
        assert f"\n{name}=\n" in ENV_EXAMPLE, name


def test_every_variable_the_compose_file_reads_is_in_env_example():
    used = {m.group(1) for m in VARIABLE.finditer(_code(COMPOSE_TEXT))}
    mentioned = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE, flags=re.MULTILINE))
    assert used - mentioned == set()


def test_volumes_referenced_exist():
    declared = set(COMPOSE["volumes"])
    referenced = set()
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            source = _with_defaults(volume).split(":", 1)[0]
            if not source.startswith((".", "/")):  # a named volume, not a host path
                referenced.add(source)
    assert referenced <= declared
    assert {"pgdata", "redisdata", "media", "models"} <= referenced

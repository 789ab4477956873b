"""Real `celery worker` processes for tests: started like production, killed like a crash."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class Workers:
    """Start `celery worker` processes in their own process group; kill them like a crash."""

    def __init__(self, tmp_path: Path, settings, redis_url: str) -> None:
        self.tmp_path = tmp_path
        self.settings = settings
        self.redis_url = redis_url
        self.processes: list[subprocess.Popen] = []

    def start(self, name: str, queues: str = "", **env_overrides: str) -> subprocess.Popen:
        """A worker named `name`; on `queues` (e.g. "gpu"), else on every queue (no -Q)."""
        settings = self.settings
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "REDIS_URL": self.redis_url,
            "SECRET_KEY": settings.SECRET_KEY,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "Q16_DATA_DIR": str(settings.DATA_DIR),
            "Q16_CLIP_MODEL": settings.Q16_CLIP_MODEL,
            "Q16_CLIP_CHECKPOINT": settings.Q16_CLIP_CHECKPOINT,
            "Q16_DEVICE": "cpu",
            "Q16_BATCH_SIZE": str(settings.Q16_BATCH_SIZE),
            "PYTHONUNBUFFERED": "1",
            **env_overrides,
        }
        log_path = self.tmp_path / f"worker-{name}.log"
        celery_bin = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [
                    celery_bin,
                    "-A",
                    "config",
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--pool",
                    "prefork",
                    "--concurrency",
                    "1",
                    "--without-gossip",
                    "--without-mingle",
                    "--hostname",
                    f"{name}-{os.getpid()}@%h",
                    *(["--queues", queues] if queues else []),
                ],  # fmt: skip
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so a kill takes the children too
            )
        process.log_path = log_path  # type: ignore[attr-defined]
        self.processes.append(process)
        deadline = time.monotonic() + 60
        while " ready." not in log_path.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                self.kill(process)
                pytest.fail(f"celery worker did not start:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.1)
        return process

    @staticmethod
    def children(process: subprocess.Popen) -> list[int]:
        path = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        """SIGKILL the worker and its pool children at once (a crashed machine)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.log_path.name} ---\n{p.log_path.read_text()[-4000:]}" for p in self.processes
        )

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(timeout=20)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    self.kill(process)

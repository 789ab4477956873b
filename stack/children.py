"""One child process of the stack: started in its own process group, tied to the
supervisor's life on Linux, signalled, and killed with whatever it left behind."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from stack.environment import REPO
from stack.reporting import StackError


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec_fn: Linux SIGTERMs the child if the supervisor dies (e.g. kill -9)."""

    def preexec() -> None:  # pragma: no cover - runs in the forked child
        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os._exit(1)

    return preexec


@dataclass
class Child:
    """A process the stack starts: its name in the log, its command line, its Popen."""

    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    stdout: int | IO[bytes] | None = None
    # Supervision: restarted when it dies on its own; `before_start` runs before each start.
    restart: bool = False
    before_start: Callable[[], None] | None = None
    crashes: deque[float] = field(default_factory=deque)
    restart_at: float | None = None

    def recent_crashes(self, now: float, window: float) -> int:
        """Record a crash at `now`; the number of crashes within the last `window` s."""
        self.crashes.append(now)
        while self.crashes and self.crashes[0] < now - window:
            self.crashes.popleft()
        return len(self.crashes)

    def start(self) -> None:
        if self.before_start is not None:
            self.before_start()
        try:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=REPO,
                stdout=self.stdout,
                stdin=subprocess.DEVNULL,
                # Its own process group: the terminal's Ctrl-C reaches only the
                # supervisor, which then stops the children in order.
                process_group=0,
                preexec_fn=(
                    _die_with_parent(os.getpid()) if sys.platform.startswith("linux") else None
                ),
            )
        except OSError as exc:
            raise StackError(f"cannot start the {self.name} ({self.argv[0]}): {exc}") from None

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else 0

    def poll(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def kill_group(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)

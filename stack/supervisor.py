"""The supervisor: starts the children in order, restarts one that dies on its own after
an exponential back-off, gives up when one crashes too often, and stops them all in
reverse order, the embedded Redis last.

Signals (SIGINT, SIGTERM, SIGHUP) only set a flag that the loops here check: a first one
stops the stack in order, a second one stops waiting for children that do not stop.
"""

from __future__ import annotations

import contextlib
import fcntl
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from stack.children import Child
from stack.environment import env_float
from stack.reporting import StackError, describe_exit, log

STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class RestartPolicy:
    """How the supervisor restarts a crashed child: after `backoff` seconds, doubling up
    to `backoff_max` with each recent crash; `max_crashes` crashes within `window`
    seconds make it give up."""

    backoff: float = 1.0
    backoff_max: float = 60.0
    max_crashes: int = 5
    window: float = 300.0

    def delay(self, crashes: int) -> float:
        return min(self.backoff * 2 ** max(crashes - 1, 0), self.backoff_max)


def restart_policy() -> RestartPolicy:
    """The policy from Q16_RESTART_BACKOFF_S, Q16_RESTART_BACKOFF_MAX_S,
    Q16_RESTART_MAX_CRASHES and Q16_RESTART_WINDOW_S."""
    default = RestartPolicy()
    max_crashes = env_float("Q16_RESTART_MAX_CRASHES", default.max_crashes)
    if max_crashes < 1:
        raise StackError("Q16_RESTART_MAX_CRASHES must be at least 1")
    return RestartPolicy(
        backoff=env_float("Q16_RESTART_BACKOFF_S", default.backoff),
        backoff_max=env_float("Q16_RESTART_BACKOFF_MAX_S", default.backoff_max),
        max_crashes=int(max_crashes),
        window=env_float("Q16_RESTART_WINDOW_S", default.window),
    )


class Stack:
    """Starts the children in order and stops them in reverse, Redis last."""

    def __init__(self, policy: RestartPolicy | None = None) -> None:
        self.children: list[Child] = []
        self.redis: Child | None = None
        self.signals = 0
        self.lock_file: IO[str] | None = None
        self.policy = policy or RestartPolicy()

    # Signals only set a flag; the main loop reacts to it.
    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.signals += 1
        if self.signals == 1:
            log(f"{signal.Signals(signum).name} received, stopping (again to force)")

    @property
    def stopping(self) -> bool:
        return self.signals > 0

    def lock(self, data: Path) -> None:
        self.lock_file = open(data / "stack.lock", "w")  # noqa: SIM115 - held until exit
        try:
            fcntl.flock(self.lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StackError(
                f"another `make run` is already using {data}; stop it first, "
                "or set Q16_DATA_DIR to another folder"
            ) from None

    def start(self, child: Child) -> Child:
        child.start()
        self.children.append(child)
        log(f"started the {child.name} (pid {child.pid})")
        return child

    def run_step(self, name: str, argv: list[str], capture: bool = False) -> str:
        """Run a one-shot command to completion (interruptible); return its stdout."""
        child = Child(name, argv, stdout=subprocess.PIPE if capture else None)
        child.start()
        assert child.proc is not None
        output = b""
        try:
            while True:
                if self.stopping:
                    self._stop_one(child)
                    raise StackError(f"interrupted during the {name}")
                try:
                    out, _ = child.proc.communicate(timeout=0.2)
                    output += out or b""
                    break
                except subprocess.TimeoutExpired:
                    continue
        finally:
            if child.running():
                child.kill_group()
        text = output.decode(errors="replace")
        if child.proc.returncode != 0:
            if text:
                sys.stdout.write(text)
            raise StackError(
                f"the {name} failed (exit status {child.proc.returncode}); see the output above"
            )
        return text

    def wait_until(self, ready: Callable[[], bool], timeout: float, watch: Sequence[Child]) -> bool:
        """Poll ready() until true; False on timeout. Raises if a watched child dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stopping:
                raise StackError("interrupted during startup")
            for child in watch:
                code = child.poll()
                if code is not None:
                    raise StackError(f"the {child.name} {describe_exit(code)} during startup")
            if ready():
                return True
            time.sleep(0.2)
        return False

    def supervise(self) -> int:
        """Block until a signal (return 0) or until the stack gives up (return 1).

        A restartable child that dies is restarted after the policy's back-off; one that
        is not, or one that crashed too often within the window, ends the supervision.
        """
        policy = self.policy
        while not self.stopping:
            now = time.monotonic()
            for child in self.children:
                if child.restart_at is not None:
                    if now >= child.restart_at:
                        child.restart_at = None
                        child.start()
                        log(f"restarted the {child.name} (pid {child.pid})")
                    continue
                code = child.poll()
                if code is None:
                    continue
                # What it left in its process group (pool children, embedded beat,
                # gunicorn workers holding the port) goes with it.
                child.kill_group()
                how = describe_exit(code)
                if not child.restart:
                    log(f"the {child.name} (pid {child.pid}) {how} unexpectedly; stopping the rest")
                    return 1
                crashes = child.recent_crashes(now, policy.window)
                if crashes >= policy.max_crashes:
                    log(
                        f"giving up: the {child.name} crashed {crashes} times within "
                        f"{policy.window:g} s (last: pid {child.pid} {how}); stopping everything"
                    )
                    return 1
                delay = policy.delay(crashes)
                log(
                    f"the {child.name} (pid {child.pid}) {how} unexpectedly "
                    f"(crash {crashes} of {policy.max_crashes} allowed within "
                    f"{policy.window:g} s); restarting it in {delay:g} s"
                )
                child.restart_at = now + delay
            pending = [c.restart_at for c in self.children if c.restart_at is not None]
            nap = min([0.3, *(at - time.monotonic() for at in pending)])
            time.sleep(max(nap, 0.01))
        return 0

    def _stop_one(self, child: Child) -> None:
        self._stop([child])

    def _stop(self, group: Sequence[Child]) -> None:
        alive = [c for c in group if c.running()]
        for child in alive:
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in alive:
            assert child.proc is not None
            while child.running() and time.monotonic() < deadline and self.signals < 2:
                time.sleep(0.1)
            if child.running():
                log(f"the {child.name} did not stop in time; killing it")
                child.kill_group()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.proc.wait(timeout=5)
            # Whatever it left in its process group (pool children, workers) goes too.
            child.kill_group()

    def stop_all(self) -> None:
        others = [c for c in reversed(self.children) if c is not self.redis]
        self._stop(others)
        if self.redis is not None:
            self._stop([self.redis])

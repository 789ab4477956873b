"""How the stack speaks to its user: `[q16]` lines on stderr and one-line errors."""

from __future__ import annotations

import contextlib
import signal
import sys


class StackError(Exception):
    """An expected failure: reported as one line, without a traceback."""


def log(message: str) -> None:
    print(f"[q16] {message}", file=sys.stderr, flush=True)


def describe_exit(code: int) -> str:
    """A Popen return code in words: "exited with status 1", "was killed by SIGKILL"."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with status {code}"

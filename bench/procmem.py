"""Resident-memory readings of this process from /proc (Linux), with a getrusage fallback."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_mib() -> float:
    """Current resident set size."""
    kib = _status_kib("VmRSS")
    return (kib or 0) / 1024


def peak_rss_mib() -> float:
    """Peak resident set size since start or since the last :func:`reset_peak`."""
    kib = _status_kib("VmHWM")
    if kib is None:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kib / 1024


def reset_peak() -> bool:
    """Reset the peak to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _busy_seconds() -> float | None:
    """CPU seconds all processes of the machine spent busy (not idle/iowait), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        jiffies = [int(v) for v in fields]
    except (OSError, ValueError, IndexError):
        return None
    idle = jiffies[3] + (jiffies[4] if len(jiffies) > 4 else 0)
    busy = sum(jiffies[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class LoadMeter:
    """How many cores other processes kept busy while a measurement ran (noise indicator)."""

    def __init__(self) -> None:
        self._busy = _busy_seconds()
        self._own = _own_seconds()
        self._wall = time.perf_counter()

    def other_cores(self) -> float | None:
        busy = _busy_seconds()
        if busy is None or self._busy is None:
            return None
        wall = time.perf_counter() - self._wall
        if wall <= 0:
            return None
        other = (busy - self._busy) - (_own_seconds() - self._own)
        return max(0.0, other / wall)

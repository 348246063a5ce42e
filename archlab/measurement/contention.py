"""Guard timings against other processes: how much CPU did the rest of the machine use meanwhile?

Around a timed slice, :class:`ContentionGuard` reads the machine's busy CPU time (``/proc/stat``:
user, nice, system, irq, softirq and steal, over all cores) and this process's own CPU time. The
difference, divided by the wall-clock time, is how many cores *other* processes (or the hypervisor)
kept busy. A slice is contaminated when that exceeds the cores our measurement leaves free plus a
small tolerance: at 1 thread on a 2-core machine one foreign process on the other core is tolerated
(on our 2-core VM two 1-thread workers slowed each other by only 1–4%, see docs/measurement.md),
two are not; at 2 threads any is not.

``/proc/stat`` counts in clock ticks (10 ms), so judge slices of a few hundred milliseconds, not
single runs. On systems without ``/proc/stat`` the guard never flags anything.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "ContentionGuard",
    "CpuSnapshot",
    "cpu_snapshot",
    "describe_steal",
    "foreign_cores",
    "machine_ticks",
    "steal_share",
]

T = TypeVar("T")
_TICK_S = 1.0 / (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system [idle iowait] irq softirq steal


@dataclass(frozen=True)
class CpuSnapshot:
    """The machine's busy CPU time, this process's CPU time and the wall clock, all in seconds."""

    busy_s: float
    own_s: float
    wall_s: float


def _machine_busy_s(path: str = "/proc/stat") -> float | None:
    try:
        with open(path) as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    return sum(int(fields[i]) for i in _BUSY_FIELDS if i < len(fields)) * _TICK_S


def machine_ticks(path: str = "/proc/stat") -> list[int] | None:
    """The machine's cumulative CPU time per state (user, nice, system, idle, iowait, irq, softirq,
    steal ...) in clock ticks, or None where ``/proc/stat`` is unavailable."""
    try:
        with open(path) as f:
            return [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def steal_share(before: list[int] | None, after: list[int] | None) -> float | None:
    """Share of the machine's CPU time the hypervisor gave to other guests between two readings.

    On a virtual machine, "steal" is time a virtual CPU was ready to run but the host ran something
    else: it slows a timing down without any process here being busy, so benchmarks print it.
    """
    if before is None or after is None or len(before) < 8 or len(after) < 8:
        return None
    delta = [b - a for a, b in zip(before, after)]
    total = sum(delta[:8])
    return delta[7] / total if total > 0 else None


def describe_steal(ticks_at_start: list[int] | None) -> str:
    """A line for a benchmark's output: the steal since ``ticks_at_start`` (a machine_ticks())."""
    share = steal_share(ticks_at_start, machine_ticks())
    if share is None:
        return "hypervisor steal: not available here"
    return f"hypervisor steal during the run: {100 * share:.1f}% of the machine's CPU time"


def cpu_snapshot() -> CpuSnapshot | None:
    """Read the counters now (None where ``/proc/stat`` is unavailable)."""
    busy = _machine_busy_s()
    if busy is None:
        return None
    return CpuSnapshot(busy, time.process_time(), time.perf_counter())


def foreign_cores(before: CpuSnapshot | None, after: CpuSnapshot | None) -> float | None:
    """Average number of cores other processes kept busy between two snapshots."""
    if before is None or after is None or after.wall_s <= before.wall_s:
        return None
    foreign = (after.busy_s - before.busy_s) - (after.own_s - before.own_s)
    return max(0.0, foreign) / (after.wall_s - before.wall_s)


class ContentionGuard:
    """Run a slice, and re-run it (up to ``retries`` times) while other processes used the CPU.

    Args:
        threads: threads the measurement itself uses.
        max_foreign_cores: tolerated foreign load in cores; default: the cores left free by
            ``threads`` plus 0.25 (kernel threads and the like).
        retries: re-runs allowed per slice; a slice still contaminated after them is kept and
            counted in :attr:`contaminated`.
        enabled: False turns the guard into a plain call.

    Example:
        >>> guard = ContentionGuard(threads=1)
        >>> guard.run(lambda: sum(range(1000)))
        499500
    """

    def __init__(
        self,
        threads: int = 1,
        max_foreign_cores: float | None = None,
        retries: int = 3,
        enabled: bool = True,
    ) -> None:
        cores = os.cpu_count() or 1
        self.limit = (
            max(0, cores - threads) + 0.25 if max_foreign_cores is None else max_foreign_cores
        )
        self.retries = retries
        self.enabled = enabled
        self.reruns = 0  # slices run again because they were contaminated
        self.contaminated = 0  # slices kept although still contaminated after every retry
        self.worst_foreign_cores = 0.0

    def run(self, fn: Callable[[], T]) -> T:
        """Call ``fn`` until a call is not contaminated or the retries are used up."""
        if not self.enabled:
            return fn()
        for attempt in range(self.retries + 1):
            before = cpu_snapshot()
            out = fn()
            load = foreign_cores(before, cpu_snapshot())
            if load is None or load <= self.limit:
                return out
            self.worst_foreign_cores = max(self.worst_foreign_cores, load)
            if attempt < self.retries:
                self.reruns += 1
        self.contaminated += 1
        return out

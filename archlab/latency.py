"""CPU latency measurement: warm-up, repeats until the median is pinned down, spread, environment.

The protocol: ``torch.inference_mode()``, fixed thread count (1 by default: on a 2-core machine two
threads were about twice as noisy, see MEASUREMENT.md), a few warm-up passes, then timed passes until
the 95% confidence interval of the median is narrower than ``target_rel_ci`` of the median (a
distribution-free interval from order statistics) or ``max_runs`` / ``max_time_s`` is reached.
Every result carries the environment it depends on.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

import torch
from torch import nn

__all__ = ["Latency", "LatencyEnv", "cpu_model", "measure_latency", "median_ci"]


@cache
def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _allocator() -> str:
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return f"glibc ({tunables})" if tunables else "glibc default"


@dataclass(frozen=True)
class LatencyEnv:
    """What a latency figure depends on."""

    cpu: str
    threads: int
    batch: int
    resolution: int
    backend: str = "eager"
    torch_version: str = str(torch.__version__)
    allocator: str = field(default_factory=_allocator)


@dataclass(frozen=True)
class Latency:
    """A latency measurement: median and spread of ``runs`` timed forward passes, in ms."""

    median_ms: float
    iqr_ms: float
    cv: float  # standard deviation / mean of the runs
    ci_rel: float  # half-width of the median's 95% CI, relative to the median
    runs: int
    env: LatencyEnv

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.median_ms:.2f} ms (IQR {self.iqr_ms:.2f} ms, ±{100 * self.ci_rel:.1f}%, n={self.runs})"


def median_ci(samples: list[float], z: float = 1.96) -> tuple[float, float]:
    """Distribution-free ~95% confidence interval of the median (order statistics, normal approx.)."""
    xs = sorted(samples)
    n = len(xs)
    half = z * math.sqrt(n) / 2
    lo = max(0, math.floor(n / 2 - half))
    hi = min(n - 1, math.ceil(n / 2 + half) - 1)
    return xs[lo], xs[hi]


def _summary(times_ms: list[float], env: LatencyEnv) -> Latency:
    med = statistics.median(times_ms)
    q = statistics.quantiles(times_ms, n=4) if len(times_ms) >= 2 else [med, med, med]
    lo, hi = median_ci(times_ms)
    mean = statistics.fmean(times_ms)
    cv = statistics.pstdev(times_ms) / mean if mean > 0 else 0.0
    return Latency(med, q[2] - q[0], cv, (hi - lo) / 2 / med if med > 0 else 0.0, len(times_ms), env)


def measure_latency(
    model: nn.Module,
    resolution: int,
    *,
    threads: int = 1,
    batch: int = 1,
    warmup: int = 3,
    min_runs: int = 10,
    max_runs: int = 100,
    max_time_s: float = 10.0,
    target_rel_ci: float = 0.02,
) -> Latency:
    """Time ``model`` on a random ``(batch, 3, resolution, resolution)`` input.

    Args:
        model: the model; it is put in eval mode.
        resolution: square input size.
        threads: ``torch.set_num_threads`` during the measurement (restored afterwards).
        batch: batch size.
        warmup: untimed passes first.
        min_runs, max_runs: bounds on the number of timed passes.
        max_time_s: stop after this much timed wall-clock time (at least ``min_runs`` still run).
        target_rel_ci: stop once the median's 95% CI half-width is below this share of the median.

    Returns:
        The median and spread with its environment.
    """
    model.eval()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    x = torch.randn(batch, 3, resolution, resolution)
    times: list[float] = []
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            start = time.perf_counter()
            while len(times) < max_runs:
                t0 = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - t0) * 1e3)
                if len(times) < min_runs:
                    continue
                if time.perf_counter() - start > max_time_s:
                    break
                lo, hi = median_ci(times)
                if (hi - lo) / 2 <= target_rel_ci * statistics.median(times):
                    break
    finally:
        torch.set_num_threads(previous)
    return _summary(times, LatencyEnv(cpu_model(), threads, batch, resolution))

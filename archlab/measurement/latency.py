"""CPU latency measurement: warm-up, repeats until the median is pinned down, spread, environment.

The protocol: ``torch.inference_mode()``, fixed thread count (1 by default: on a 2-core machine a
1-thread measurement tolerates one other process on the other core, a 2-thread one none, see
docs/measurement.md; ``bench/latency_noise.py`` compares the spread at 1 and 2 threads), a few
warm-up passes, then timed passes until the 95% confidence interval of the median is narrower than
``target_rel_ci`` of the median (a distribution-free interval from order statistics) or
``max_runs`` / ``max_time_s`` is reached.
Runs come in slices (the first of ``min_runs``, then ``slice_runs`` each); a slice during which
other processes used the CPU is run again
(:class:`~archlab.measurement.contention.ContentionGuard`). The backend (eager, TorchScript, ONNX
Runtime in float or int8) and memory format are options (:mod:`archlab.measurement.backends`);
the allocator is chosen per process (:mod:`archlab.measurement.allocator`). Every result carries
the environment it depends on. To compare candidates, prefer
:func:`archlab.measurement.interleave.measure_many`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

import torch
from torch import nn

from archlab.measurement.allocator import describe_allocator
from archlab.measurement.backends import check_options, prepare
from archlab.measurement.contention import ContentionGuard

__all__ = [
    "torch_threads",
    "Latency",
    "LatencyEnv",
    "combine_processes",
    "cpu_model",
    "measure_latency",
    "median_ci",
    "summarize",
    "timed_runs",
]


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
    return describe_allocator(dict(os.environ))


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """``torch.set_num_threads(threads)`` for the duration, then the previous setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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
    memory_format: str = "contiguous"


@dataclass(frozen=True)
class Latency:
    """A latency measurement: median and spread of ``runs`` timed forward passes, in ms."""

    median_ms: float
    iqr_ms: float
    cv: float  # standard deviation / mean of the runs
    ci_rel: float  # half-width of the median's 95% CI, relative to the median
    runs: int
    env: LatencyEnv
    protocol: str = "plain"  # "plain" (measure_latency) or "interleaved" (measure_many)
    reruns: int = 0  # slices run again because other processes used the CPU meanwhile
    contaminated_slices: int = 0  # slices kept although still contaminated after every retry
    processes: int = 1  # separate processes whose figures were pooled (combine_processes)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Latency:
        """Inverse of :meth:`as_dict` (e.g. for results sent by another process)."""
        return cls(**{**data, "env": LatencyEnv(**data["env"])})

    def __str__(self) -> str:
        text = (
            f"{self.median_ms:.2f} ms (IQR {self.iqr_ms:.2f} ms, ±{100 * self.ci_rel:.1f}%, "
            f"n={self.runs})"
        )
        if self.contaminated_slices:
            text += f" [{self.contaminated_slices} slice(s) disturbed by other processes]"
        return text


def median_ci(samples: list[float], z: float = 1.96) -> tuple[float, float]:
    """Distribution-free ~95% confidence interval of the median.

    From order statistics, with the normal approximation to the binomial.
    """
    xs = sorted(samples)
    n = len(xs)
    half = z * math.sqrt(n) / 2
    lo = max(0, math.floor(n / 2 - half))
    hi = min(n - 1, math.ceil(n / 2 + half) - 1)
    return xs[lo], xs[hi]


def summarize(times_ms: list[float], env: LatencyEnv, **extra: Any) -> Latency:
    """Median, IQR, CV and the median's relative CI of per-run times (``extra``: Latency fields)."""
    med = statistics.median(times_ms)
    q = statistics.quantiles(times_ms, n=4) if len(times_ms) >= 2 else [med, med, med]
    lo, hi = median_ci(times_ms)
    mean = statistics.fmean(times_ms)
    cv = statistics.pstdev(times_ms) / mean if mean > 0 else 0.0
    ci_rel = (hi - lo) / 2 / med if med > 0 else 0.0
    return Latency(med, q[2] - q[0], cv, ci_rel, len(times_ms), env, **extra)


def combine_processes(latencies: Sequence[Latency]) -> Latency:
    """One model measured in several processes at once, as one figure.

    The median is the mean of the processes' medians (a model's latency differs by several percent
    from one process to the next on a VM: pooling averages that out), its CI the CI of that mean,
    and the run and slice counts add up.

    Raises:
        ValueError: no latencies.
    """
    if not latencies:
        raise ValueError("nothing to combine")
    k = len(latencies)
    median = statistics.fmean(lat.median_ms for lat in latencies)
    half_width = math.sqrt(sum((lat.ci_rel * lat.median_ms) ** 2 for lat in latencies)) / k
    return dataclasses.replace(
        latencies[0],
        median_ms=median,
        iqr_ms=statistics.fmean(lat.iqr_ms for lat in latencies),
        cv=statistics.fmean(lat.cv for lat in latencies),
        ci_rel=half_width / median if median > 0 else 0.0,
        runs=sum(lat.runs for lat in latencies),
        reruns=sum(lat.reruns for lat in latencies),
        contaminated_slices=sum(lat.contaminated_slices for lat in latencies),
        processes=sum(lat.processes for lat in latencies),
    )


def timed_runs(run: Callable[[], Any], n: int) -> list[float]:
    """Call ``run`` ``n`` times; the duration of each call in ms."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def _ci_narrow(times: list[float], target_rel_ci: float) -> bool:
    lo, hi = median_ci(times)
    return (hi - lo) / 2 <= target_rel_ci * statistics.median(times)


def _runs_until_stable(
    run: Callable[[], Any],
    checker: ContentionGuard,
    min_runs: int,
    max_runs: int,
    max_time_s: float,
    target_rel_ci: float,
    slice_runs: int,
) -> list[float]:
    """Guarded slices of timed passes until the stopping rule of :func:`measure_latency` holds."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_runs:
        n = min(max(min_runs - len(times), slice_runs), max_runs - len(times))
        times += checker.run(lambda: timed_runs(run, n))
        if len(times) < min_runs:
            continue
        if time.perf_counter() - start > max_time_s or _ci_narrow(times, target_rel_ci):
            break
    return times


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
    backend: str = "eager",
    memory_format: str = "contiguous",
    slice_runs: int = 5,
    guard: bool = True,
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
        backend: ``eager``, ``torchscript``, ``onnxruntime`` or ``onnxruntime-int8`` (see
            :mod:`archlab.measurement.backends`).
        memory_format: ``contiguous`` or ``channels_last`` (eager and TorchScript).
        slice_runs: runs per slice after the first ``min_runs``; the stopping rule is checked
            after each slice.
        guard: re-run slices during which other processes used the CPU (up to 3 times each).

    Returns:
        The median and spread with its environment.

    Raises:
        ValueError: unknown backend or memory format, or a model the backend cannot run.
    """
    check_options(backend, memory_format)
    model.eval()
    with torch_threads(threads):
        checker = ContentionGuard(threads, enabled=guard)
        run = prepare(
            model, torch.randn(batch, 3, resolution, resolution), backend, memory_format, threads
        )
        with torch.inference_mode():
            timed_runs(run, warmup)
            times = _runs_until_stable(
                run, checker, min_runs, max_runs, max_time_s, target_rel_ci, slice_runs
            )
    env = LatencyEnv(
        cpu_model(), threads, batch, resolution, backend=backend, memory_format=memory_format
    )
    return summarize(times, env, reruns=checker.reruns, contaminated_slices=checker.contaminated)

"""Interleaved measurement of several candidates: slices of runs spread round-robin over time.

On this kind of machine the latency of one model drifts over minutes, so more runs in one sitting do
not make a median more repeatable; spreading slices of runs per model over a minute or more,
interleaved with the other candidates, makes every candidate see the same mix of quiet and busy
moments (docs/measurement.md, "Interleaving"). On this VM the drift comes mostly from the
hypervisor (CPU "steal"): the median of 20-run slices of one model wandered between 24 and 44 ms
within 90 s. The finer the slices, the more alike the moments each candidate sees: with 10 random
PLG-ViT archs measured twice in one process, 40 slices of 2 runs gave Spearman 1.000 between the
two passes and a 1.75% median difference of each arch's latency relative to the group, against
0.964 and 3.3% for 8 slices of 10 runs (same 80 runs per arch). Hence the defaults. Each round (one
slice of every candidate) is guarded against other processes' CPU use as a whole, since single
slices are too short to judge.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

from archlab.measurement.backends import check_options, prepare
from archlab.measurement.contention import ContentionGuard
from archlab.measurement.fresh_process import measure_in_subprocess
from archlab.measurement.latency import (
    Latency,
    LatencyEnv,
    combine_processes,
    cpu_model,
    summarize,
    timed_runs,
    torch_threads,
)

__all__ = [
    "PairedRatio",
    "free_core_processes",
    "interleaved_times",
    "measure_many",
    "measure_many_in_processes",
    "paired_ratio",
]


def measure_many(
    models: Sequence[nn.Module],
    resolution: int,
    *,
    threads: int = 1,
    batch: int = 1,
    slices: int = 40,
    runs_per_slice: int = 2,
    warmup: int = 3,
    backend: str = "eager",
    memory_format: str = "contiguous",
    min_round_s: float = 0.0,
    guard: bool = True,
) -> list[Latency]:
    """Time several models with interleaved slices; one :class:`Latency` per model, in order.

    Round ``r`` runs one slice of ``runs_per_slice`` passes of every model, starting with model
    ``r mod n`` so that no model always follows the same neighbour. Each latency is the median
    of all its ``slices × runs_per_slice`` passes.

    Args:
        models: the candidates (put in eval mode).
        resolution: square input size.
        threads: ``torch.set_num_threads`` during the measurement (restored afterwards).
        batch: batch size.
        slices: rounds, i.e. slices per model.
        runs_per_slice: timed passes per slice.
        warmup: untimed passes per model before the first round.
        backend, memory_format: as in :func:`archlab.measurement.latency.measure_latency`.
        min_round_s: pause so that each round lasts at least this long (spreads few or fast
            models over more time).
        guard: re-run rounds during which other processes used the CPU (up to 3 times each); a
            round counts as a rerun / contaminated slice for every model in it.

    Raises:
        ValueError: no models, bad counts, unknown backend or memory format.
    """
    _check_counts(len(models), slices, runs_per_slice)
    check_options(backend, memory_format)
    with torch_threads(threads):
        guard_ = ContentionGuard(threads, enabled=guard)
        example = torch.randn(batch, 3, resolution, resolution)
        runners = [prepare(m.eval(), example, backend, memory_format, threads) for m in models]
        times = interleaved_times(runners, guard_, slices, runs_per_slice, warmup, min_round_s)
    env = LatencyEnv(
        cpu_model(), threads, batch, resolution, backend=backend, memory_format=memory_format
    )
    return [
        summarize(
            t,
            env,
            protocol="interleaved",
            reruns=guard_.reruns,
            contaminated_slices=guard_.contaminated,
        )
        for t in times
    ]


def _check_counts(models: int, slices: int, runs_per_slice: int) -> None:
    if not models or slices < 1 or runs_per_slice < 1:
        raise ValueError(
            f"need at least one model, slice and run; got {models} models, "
            f"slices={slices}, runs_per_slice={runs_per_slice}"
        )


def interleaved_times(
    runners: Sequence[Any],
    guard: ContentionGuard,
    slices: int,
    runs_per_slice: int,
    warmup: int,
    min_round_s: float,
) -> list[list[float]]:
    """Every runner's pass times (ms) over ``slices`` guarded rounds, each in a rotated order.

    The loop of :func:`measure_many`, for callers that prepare their own runners (e.g. one model
    under several backends, ``bench/runtimes.py``): ``warmup`` untimed passes of each runner,
    then ``slices`` rounds of ``runs_per_slice`` passes of every runner, round ``r`` starting with
    runner ``r mod n``, each round guarded as a whole and lasting at least ``min_round_s``.
    """
    times: list[list[float]] = [[] for _ in runners]

    def one_round(r: int) -> list[list[float]]:
        out: list[list[float]] = [[] for _ in runners]
        for k in range(len(runners)):
            i = (r + k) % len(runners)
            out[i] = timed_runs(runners[i], runs_per_slice)
        return out

    with torch.inference_mode():
        for run in runners:
            timed_runs(run, warmup)
        for r in range(slices):
            start = time.perf_counter()
            for i, slice_times in enumerate(guard.run(partial(one_round, r))):
                times[i] += slice_times
            time.sleep(max(0.0, min_round_s - (time.perf_counter() - start)))
    return times


@dataclass(frozen=True)
class PairedRatio:
    """How two runners interleaved in the same rounds compare: ``ratio`` is the median pass time
    of the first over that of the second (below 1: the first is faster); ``round_q1``/``round_q3``
    are the quartiles of the same ratio taken round by round, i.e. how far the moments disagree."""

    ratio: float
    round_q1: float
    round_q3: float
    first_ms: float
    second_ms: float


def paired_ratio(
    first: Sequence[float], second: Sequence[float], runs_per_slice: int
) -> PairedRatio:
    """Compare two runners' pass times from :func:`interleaved_times` (same rounds, same slices).

    Raises:
        ValueError: the two lists differ in length, are not whole slices, or hold fewer than two
            rounds (no spread to give).
    """
    if runs_per_slice < 1 or len(first) != len(second) or len(first) % runs_per_slice:
        raise ValueError(
            f"need two equally long lists of whole slices of {runs_per_slice} passes; "
            f"got {len(first)} and {len(second)}"
        )
    per_round = [
        statistics.median(first[j : j + runs_per_slice])
        / statistics.median(second[j : j + runs_per_slice])
        for j in range(0, len(first), runs_per_slice)
    ]
    if len(per_round) < 2:
        raise ValueError(f"need at least two rounds for a spread; got {len(per_round)}")
    q1, _, q3 = statistics.quantiles(per_round, n=4)
    first_ms, second_ms = statistics.median(first), statistics.median(second)
    return PairedRatio(first_ms / second_ms, q1, q3, first_ms, second_ms)


def free_core_processes(threads: int, slices: int) -> int:
    """Measuring processes to run at once: one per free core at ``threads`` threads each, but no
    more than there are ``slices`` to share out."""
    cores = os.cpu_count() or 1
    return max(1, min(cores // max(1, threads), slices))


def measure_many_in_processes(
    configs: Sequence[dict[str, Any]],
    resolution: int,
    *,
    processes: int = 2,
    slices: int = 40,
    seed: int = 0,
    **options: Any,
) -> list[Latency]:
    """:func:`measure_many` of every config in ``processes`` fresh processes at once.

    Each process builds all the models (seeded with ``seed``, with this process's allocator
    setting) and runs ``slices / processes`` rounds of them (rounded up); each model's figures are
    then pooled (:func:`archlab.measurement.latency.combine_processes`). With one process per core
    this takes about ``1 / processes`` of the wall-clock time of one process, and every model is
    timed in every process, so none is favoured or penalised by the process it happened to be timed
    in.

    Args:
        configs: model configs with their ``family`` (``SearchSpace.to_config``).
        resolution: square input size.
        processes: how many at once (each uses ``options["threads"]``, default 1, threads).
        slices: rounds over all processes together.
        seed: ``torch.manual_seed`` before building each model.
        **options: passed on to :func:`measure_many` (threads, runs_per_slice, backend ...).

    Raises:
        ValueError: a bad count, or a process failed (its error is given).
    """
    if processes < 1 or slices < 1:
        raise ValueError(f"need at least one process and slice; got {processes} and {slices}")
    per_process = -(-slices // processes)
    with ThreadPoolExecutor(max_workers=processes) as pool:
        jobs = [
            pool.submit(
                measure_in_subprocess,
                list(configs),
                resolution,
                allocator=None,
                protocol="interleaved",
                seed=seed,
                slices=per_process,
                **options,
            )
            for _ in range(processes)
        ]
        results = [job.result() for job in jobs]
    return [combine_processes(per_model) for per_model in zip(*results)]

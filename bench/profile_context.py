"""Where should a device profile time its calibration models? Scatter of two ways, repeated.

``archlab profile-device`` times a space's blocks in context (hooked forward passes of its sampled
models), then measures some of those models whole: the calibration fit and the anchors that later
measurements are compared with. Two ways of measuring them whole are run ``--repeats`` times each,
alternately:

* ``in-profile``: in the process that has just run the hooked passes, one ``measure_many`` of all
  of them (40 slices), as profile-device did before it moved this step to fresh processes;
* ``fresh``: ``measure_many_in_processes``, fresh processes (one per free core) that build the
  models and share the 40 slices; how ``profile_device`` measures them now, and how a search
  re-measures its front.

For every two runs of the same way: each model's log ratio second / first, net of the median over
the models (the machine's drift, common to all), then the standard deviation of those and the
share of models within ±10%. Those are how far a model's calibration figure moves from one
profiling to the next; the smaller, the better its anchors and fit. Both ways see the same
stretch of time, run by run, so the host's drift hits them alike.

Figures are only meaningful on a quiet machine. Run: ``.venv/bin/python bench/profile_context.py
--space mobileformer`` (3 runs each, about 8 min); ``--quick`` checks that it works (tiny test
space, figures not meaningful).
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import torch

from archlab.measurement.blocks import time_in_context_many
from archlab.measurement.contention import describe_steal, machine_ticks
from archlab.measurement.interleave import (
    free_core_processes,
    measure_many,
    measure_many_in_processes,
)
from archlab.predict.profile import _blocks_of, _sample_models
from archlab.space import load_space

WAYS = ("in-profile", "fresh")
TINY = Path(__file__).resolve().parent.parent / "tests" / "data" / "tiny_plgvit.yaml"


def _in_profile(space_name: str, n: int, runs: int, slices: int) -> list[float]:
    """As profile-device did: hooked passes of the models, then all of them whole, one process."""
    space = load_space(space_name)
    x = torch.randn(1, 3, space.resolution, space.resolution)
    models = []
    for _, cfg in _sample_models(space, n, 0):
        torch.manual_seed(0)
        models.append(space.family.build(cfg).eval())
        _blocks_of(models[-1], x)
    time_in_context_many(models, x, runs=runs)
    return [lat.median_ms for lat in measure_many(models, space.resolution, slices=slices)]


def _fresh(space_name: str, n: int, slices: int) -> list[float]:
    """As profile-device does now: the models built and timed whole in fresh processes."""
    space = load_space(space_name)
    configs = [space.to_config(arch) for arch, _ in _sample_models(space, n, 0)]
    latencies = measure_many_in_processes(
        configs, space.resolution, processes=free_core_processes(1, slices), slices=slices
    )
    return [lat.median_ms for lat in latencies]


def measure(way: str, space: str, n: int, runs: int, slices: int) -> list[float]:
    """One run of ``way``: every calibration model's median (ms)."""
    if way == "fresh":
        return _fresh(space, n, slices)
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_in_profile, space, n, runs, slices).result()


def scatter(first: list[float], second: list[float]) -> tuple[float, float, float]:
    """(common factor second / first, sd of per-model log ratios net of it, share within ±10%)."""
    logs = [math.log(b / a) for a, b in zip(first, second)]
    common = statistics.median(logs)
    net = [v - common for v in logs]
    within = sum(abs(math.expm1(v)) <= 0.10 for v in net) / len(net)
    return math.exp(common), statistics.pstdev(net), within


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--space", default="mobileformer")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way")
    parser.add_argument("--models", type=int, default=24, help="calibration models")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    space = str(TINY) if args.quick else args.space
    n, runs, slices = (3, 2, 2) if args.quick else (args.models, 30, 40)
    print(
        f"space {space}, {n} calibration models, {args.repeats} runs of each way, "
        f"{torch.__version__}, 1 thread"
    )
    ticks = machine_ticks()
    results: dict[str, list[list[float]]] = {w: [] for w in WAYS}
    for r in range(args.repeats):
        for way in WAYS if r % 2 == 0 else WAYS[::-1]:
            start = time.perf_counter()
            results[way].append(measure(way, space, n, runs, slices))
            print(f"  run {r + 1} {way}: {time.perf_counter() - start:.0f} s", flush=True)
    print(describe_steal(ticks))
    print("way: per pair of runs, drift ×common, sd of per-model log ratios net of it, within ±10%")
    for way, runs_ in results.items():
        pairs = [scatter(a, b) for a, b in itertools.combinations(runs_, 2)]
        text = "; ".join(f"×{f:.3f} {sd:.3f} {w:.0%}" for f, sd, w in pairs)
        if pairs:
            sd = statistics.fmean(p[1] for p in pairs)
            within = statistics.fmean(p[2] for p in pairs)
            print(f"  {way:10s} {text}\n  {'':10s} mean: sd {sd:.3f}, {within:.0%} within ±10%")


if __name__ == "__main__":
    main()

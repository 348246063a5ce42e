"""How repeatable are archlab's latencies? CV across processes, and rank stability of a space.

Part 1: three PLG-ViT configs of about 0.3, 1 and 3 GMACs (S, M, L; MACs counted and printed) are
measured in ``--processes`` separate Python processes
(``archlab.measurement.fresh_process.measure_in_subprocess``:
a fresh interpreter each time, this process's allocator setting), at 1 and 2 threads, with

* ``plain``: ``measure_latency`` per model, one after the other (3 warm-up passes, then runs until
  the median's 95% CI is within ±2% or 10 s), and
* ``interleaved``: ``measure_many`` (40 slices of 2 runs per model, round-robin; ``--slices``
  sets another count, to spread each process's runs over more time),

both with the contention guard on (slices disturbed by other processes are re-run). The figure is
the coefficient of variation of the per-process medians (standard deviation / mean): how much a
latency moves from one run of archlab to the next. Beside it, the CV of each model's median divided
by S's from the same process: if the whole machine sped up or slowed down between processes, that
ratio would stay put. Last, for the interleaved protocol, each median divided by the geometric mean
of ``--anchors`` random architectures timed in the same run: the time base that
``archlab.predict.time_base`` uses to compare a measurement with a profile made at another time.
Processes alternate between the protocols so drift hits both alike. ``--allocators default,no-trim``
repeats part 1 under each glibc setting; ``--no-rank`` skips part 2.

Part 2: the same ``--rank-n`` random architectures of ``--space`` are measured twice, in two
separate processes per protocol (``--rank-protocols``), and the Spearman rank correlation of the
two runs is printed (goal ≥ 0.98): can a search trust the order of its candidates? Beside it, each
arch's ratio second / first net of the median ratio (a drift common to all): the median deviation
and the share within ±10%. Those are the best figures a latency predictor can reach against a
measurement on this machine (``bench/predictor_accuracy.py`` compares with one such run).
``--no-cv`` skips part 1.

Figures are only meaningful on a quiet machine (check ``uptime``; the load average is printed).
Run: ``.venv/bin/python bench/latency_noise.py`` (about 10-15 min on 2 cores at 1-3 GMACs);
``--quick`` checks that everything works in about a minute (figures not meaningful).
"""

from __future__ import annotations

import argparse
import copy
import inspect
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from scipy.stats import spearmanr

from archlab.measurement.allocator import ALLOCATORS, allocator_name
from archlab.measurement.contention import describe_steal, machine_ticks
from archlab.measurement.flops import count_macs
from archlab.measurement.fresh_process import measure_in_subprocess
from archlab.measurement.interleave import measure_many
from archlab.measurement.latency import cpu_model
from archlab.models import FAMILIES, build_model, config_of
from archlab.space import load_space

PROTOCOLS = ("plain", "interleaved")
nan = float("nan")


def _variant(
    preset: str, dims: tuple[int, ...] | None, depths: tuple[int, ...], **fields: Any
) -> dict[str, Any]:
    config = copy.deepcopy(config_of(FAMILIES["plgvit"].presets[preset].cfg, "plgvit"))
    for i, stage in enumerate(config["stages"]):
        stage["depth"] = depths[i]
        if dims:
            stage["dim"] = dims[i]
    config.update(fields)
    return config


def sized_configs() -> dict[str, dict[str, Any]]:
    """PLG-ViT configs of about 0.3, 1 and 3 GMACs at 224×224."""
    return {
        "S": _variant("lw_plgvit_r", (32, 64, 160, 256), (1, 1, 2, 1), expand_dim=384),
        "M": _variant("lw_plgvit_a", None, (2, 2, 8, 2)),
        "L": _variant("plgvit_tiny", None, (2, 3, 12, 3)),
    }


def _options(protocol: str, quick: bool, slices: int | None = None) -> dict[str, Any]:
    if protocol == "interleaved":
        if quick:
            return {"slices": 2, "runs_per_slice": 3}
        return {} if slices is None else {"slices": slices}
    return {"max_runs": 10, "max_time_s": 1.0} if quick else {}


def _cv(values: list[float]) -> float:
    return statistics.pstdev(values) / statistics.fmean(values)


def cross_process_cv(
    configs: dict[str, dict[str, Any]],
    threads: int,
    processes: int,
    quick: bool,
    allocator: str | None = None,
    anchors: list[dict[str, Any]] | None = None,
    slices: int | None = None,
) -> tuple[dict[str, dict[str, list[float]]], list[float]]:
    """protocol → model → per-process medians (ms), under ``allocator`` (default: this one's),
    and the per-process time-base factor of the ``anchors`` timed with the interleaved protocol
    (geometric mean of their medians; empty without anchors). ``slices``: rounds of the
    interleaved protocol (default: ``measure_many``'s)."""
    medians: dict[str, dict[str, list[float]]] = {p: {k: [] for k in configs} for p in PROTOCOLS}
    disturbed = dict.fromkeys(PROTOCOLS, 0)
    anchors = anchors or []
    factors: list[float] = []
    for i in range(processes):
        order = PROTOCOLS if i % 2 == 0 else PROTOCOLS[::-1]
        took = {}
        for protocol in order:
            extra = anchors if protocol == "interleaved" else []
            start = time.perf_counter()
            lats = measure_in_subprocess(
                list(configs.values()) + extra,
                224,
                allocator=allocator or allocator_name(),
                protocol=protocol,
                threads=threads,
                **_options(protocol, quick, slices),
            )
            took[protocol] = time.perf_counter() - start
            for name, lat in zip(configs, lats):
                medians[protocol][name].append(lat.median_ms)
            disturbed[protocol] += sum(lat.contaminated_slices for lat in lats)
            if extra:
                timed = [lat.median_ms for lat in lats[len(configs) :]]
                factors.append(statistics.geometric_mean(timed))
        print(
            f"  threads={threads}, allocator {allocator or allocator_name()}: "
            f"process pair {i + 1}/{processes} done ("
            + ", ".join(f"{p} {s:.0f} s" for p, s in took.items())
            + ")",
            flush=True,
        )
    for protocol, n in disturbed.items():
        if n:
            print(
                f"  note: {n} slice(s) of the {protocol} protocol stayed disturbed by other "
                "processes after their retries"
            )
    return medians, factors


def random_configs(space: Any, n: int, first_seed: int = 0) -> list[dict[str, Any]]:
    """The first ``n`` valid random architectures of ``space`` from seed ``first_seed`` on."""
    return [space.to_config(arch) for arch, _ in space.random_valid(n, first_seed)]


@dataclass(frozen=True)
class Agreement:
    """How two measurement runs of the same archs agree."""

    rho: float  # Spearman rank correlation
    factor: float  # median ratio second / first: a drift common to every arch
    median_dev_pct: float  # median |ratio / factor − 1|: what is left per arch
    within_10_pct: float  # share of archs whose ratio is within ±10% of the factor


def agreement(first: list[float], second: list[float]) -> Agreement:
    """Compare two runs: rank correlation, and each arch's ratio net of the common drift."""
    ratios = [b / a for a, b in zip(first, second)]
    factor = statistics.median(ratios)
    deviations = [abs(r / factor - 1) for r in ratios]
    return Agreement(
        float(spearmanr(first, second).statistic),
        factor,
        100 * statistics.median(deviations),
        100 * sum(d <= 0.10 for d in deviations) / len(deviations),
    )


def rank_stability(
    space_name: str, n: int, quick: bool, protocols: Sequence[str] = PROTOCOLS
) -> dict[str, Agreement]:
    """protocol → agreement between two separate measurement runs of the same n archs."""
    space = load_space(space_name)
    configs = random_configs(space, n)
    result = {}
    for protocol in protocols:
        runs = [
            [
                lat.median_ms
                for lat in measure_in_subprocess(
                    configs,
                    space.resolution,
                    allocator=allocator_name(),
                    protocol=protocol,
                    **_options(protocol, quick),
                )
            ]
            for _ in range(2)
        ]
        result[protocol] = agreement(runs[0], runs[1])
        print(f"  {protocol}: two runs of {len(configs)} archs done", flush=True)
    return result


def print_cv(
    args: argparse.Namespace, processes: int, threads: list[int], allocators: list[str]
) -> None:
    """Part 1: measure S, M, L in separate processes and print the CV table."""
    configs = sized_configs()
    gmacs = {k: count_macs(build_model(c), 224).total / 1e9 for k, c in configs.items()}
    rows = []
    first = next(iter(configs))  # S: the other models' medians are also shown relative to it
    # other seeds than the rank part's
    anchors = random_configs(load_space(args.space), 2 if args.quick else args.anchors, 10_000)
    for t in threads:
        for allocator in allocators:
            medians, factors = cross_process_cv(
                configs, t, processes, args.quick, allocator, anchors, args.slices
            )
            for protocol in PROTOCOLS:
                for name in configs:
                    values = medians[protocol][name]
                    med, cv = statistics.median(values), 100 * _cv(values)
                    # relative to the first model in the same process: a drift of the whole
                    # machine cancels here, an error of this model alone does not
                    ratios = [v / f for v, f in zip(values, medians[protocol][first])]
                    rel = 100 * _cv(ratios) if name != first else float("nan")
                    # relative to the anchors timed beside it: the time base of
                    # archlab.predict.time_base
                    based = [v / f for v, f in zip(values, factors)]
                    anchored = 100 * _cv(based) if protocol == "interleaved" and factors else nan
                    rows.append((name, gmacs[name], t, allocator, protocol, med, cv, rel, anchored))
    default_rounds = inspect.signature(measure_many).parameters["slices"].default
    rounds = _options("interleaved", args.quick, args.slices).get("slices", default_rounds)
    print(
        f"\nCV of the median across {processes} processes (224×224, batch 1, eager; "
        f"interleaved: {rounds} slices)"
    )
    header = (
        "model", "GMACs", "threads", "allocator", "protocol", "median ms", "CV %", "÷S CV %",
        "÷anchors CV %",
    )  # fmt: skip
    print("{:>5} {:>6} {:>7} {:>9} {:>12} {:>10} {:>6} {:>8} {:>13}".format(*header))
    for name, g, t, allocator, protocol, med, cv, rel, anchored in rows:
        print(
            f"{name:>5} {g:6.2f} {t:7d} {allocator:>9} {protocol:>12} {med:10.2f} {cv:6.2f} "
            f"{rel:8.2f} {anchored:13.2f}"
        )
    if anchors:
        print(
            f"÷anchors: each median divided by the geometric mean of {len(anchors)} random "
            f"{args.space} archs timed in the same interleaved run (the time base of "
            "archlab.predict.time_base)"
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--space", default="plgvit", help="space for the rank-stability part")
    parser.add_argument("--rank-n", type=int, default=20)
    parser.add_argument(
        "--anchors",
        type=int,
        default=8,
        help="random archs of --space timed beside S, M, L (interleaved) as a time base; 0: none",
    )
    parser.add_argument(
        "--allocators",
        default=None,
        help="comma-separated allocator settings to compare "
        "(archlab.measurement.allocator.ALLOCATORS); default: this process's",
    )
    parser.add_argument(
        "--rank", action=argparse.BooleanOptionalAction, default=True, help="the rank part too"
    )
    parser.add_argument(
        "--slices",
        type=int,
        default=None,
        help="rounds of the interleaved protocol in part 1 (default: measure_many's, 40); more "
        "spreads each process's runs over more time",
    )
    parser.add_argument(
        "--rank-protocols",
        default=",".join(PROTOCOLS),
        help="comma-separated protocols for part 2 (default: both)",
    )
    parser.add_argument(
        "--cv", action=argparse.BooleanOptionalAction, default=True, help="part 1 (the CV)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny run to check the script works")
    return parser


def main() -> None:
    parser = _parser()
    args = parser.parse_args()
    rank_protocols = [p.strip() for p in args.rank_protocols.split(",")]
    if not rank_protocols or set(rank_protocols) - set(PROTOCOLS):
        parser.error(f"--rank-protocols: choose from {list(PROTOCOLS)}, got {args.rank_protocols}")
    if args.slices is not None and args.slices < 1:
        parser.error(f"--slices must be at least 1, got {args.slices}")
    allocators = args.allocators.split(",") if args.allocators else [allocator_name()]
    unknown = set(allocators) - set(ALLOCATORS)
    if unknown:
        parser.error(f"--allocators: {', '.join(sorted(unknown))} not among {list(ALLOCATORS)}")
    processes = 2 if args.quick else args.processes
    threads = [1] if args.quick else [int(t) for t in args.threads.split(",")]
    rank_n = 5 if args.quick else args.rank_n
    torch.set_num_threads(1)
    ticks_at_start = machine_ticks()
    print(
        f"{cpu_model()}, torch {torch.__version__}, allocator {allocator_name()}, "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )
    start = time.perf_counter()
    if args.cv:
        print_cv(args, processes, threads, allocators)
    if args.rank:
        print(f"\nRank stability: {rank_n} random archs of {args.space}, measured twice (1 thread)")
        stability = rank_stability(args.space, rank_n, args.quick, rank_protocols)
        for protocol, a in stability.items():
            print(
                f"{protocol:>12}: Spearman ρ = {a.rho:.4f} (goal ≥ 0.98); second run "
                f"×{a.factor:.3f} the first; net of that, median |deviation| "
                f"{a.median_dev_pct:.1f}%, {a.within_10_pct:.0f}% of archs within ±10%"
            )
    print(f"\n{time.perf_counter() - start:.0f} s; load average at end {os.getloadavg()[0]:.2f}")
    print(describe_steal(ticks_at_start))


if __name__ == "__main__":
    main()

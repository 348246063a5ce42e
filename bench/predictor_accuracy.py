"""How good are predicted latencies? Predicted vs measured on random architectures of each space.

For each space: a device profile (``archlab.predict.profile.profile_device``; an existing one is
reused with ``--profile-dir``), then ``--n`` random architectures that the profile was not built
from (other seeds) are predicted (``archlab.predict.predictor.LatencyPredictor``, as a
predicted-mode search uses it: blocks missing from the table are measured on demand in context and
added to the table) and measured whole with the interleaved protocol, all of them in one run, in
fresh processes (one per free core, ``measure_many_in_processes``), as a search re-measures its
front. Blocks missing from the table are handled both ways a search can (``--missing-blocks``):
estimated by the profile's cost model (``--unseen-blocks estimate``; first, from the profile as it
was made), and measured on demand in context and added to the table. Both sets of predictions are
compared with the same whole-model measurement. Printed per space and policy: the median absolute
percentage error, the share of architectures within ±10%, the Spearman rank correlation, the median
signed error, and how many blocks were measured on demand or estimated.

Each figure comes twice, by time base. ``now``: the whole-model latencies as measured. ``profile``:
the same divided by how much slower the machine ran than when the profile was made, found by timing
8 of the profile's calibration models (anchors) in the same interleaved run
(:mod:`archlab.predict.time_base`). On a shared VM the speed can drift by 20-30% within minutes,
which moves every measurement alike; the ``profile`` rows show the predictor's own error without
that common factor (the factor and its 95% interval are printed per space, and each anchor's ratio
with the rank correlation of ratio and latency: a drift that slows large models more than small ones
is not common to all, and the ``profile`` rows cannot remove it). Profiles made before anchors were
recorded give ``now`` rows only.

Figures are only meaningful on a quiet machine (check ``uptime``; the host's steal is printed).
Run: ``.venv/bin/python bench/predictor_accuracy.py`` (all spaces, 100 archs each: about 20 min per
space); ``--n 20 --spaces plgvit`` for a shorter run, ``--quick`` to check that the script works
(tiny test space, figures not meaningful); ``--csv rows.csv`` keeps one row per arch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from scipy.stats import spearmanr

from archlab.measurement.contention import describe_steal, machine_ticks
from archlab.measurement.interleave import free_core_processes, measure_many_in_processes
from archlab.predict.predictor import LatencyPredictor
from archlab.predict.profile import DeviceProfile, profile_device
from archlab.predict.time_base import TimeBase, compare_to_profile, pick_anchors
from archlab.space import list_spaces, load_space
from archlab.study.storage import home

TINY = Path(__file__).resolve().parent.parent / "tests" / "data" / "tiny_plgvit.yaml"
POLICIES = {True: "measured", False: "estimated"}  # blocks the profile lacks: timed, or estimated
_SEED_OFFSET = 1_000  # architectures evaluated here are drawn from other seeds than the profile's


def _profile(space: str, directory: Path, n_models: int, quick: bool) -> Path:
    path = directory / f"{Path(space).stem}.json"
    if path.exists():
        DeviceProfile.load(path)  # fails clearly on another format version
        print(f"  using the profile {path}")
        return path
    start = time.perf_counter()
    quick_options: dict[str, Any] = {"runs": 3, "calibration_slices": 2} if quick else {}
    profile = profile_device(space, n_models=n_models, n_calibration=n_models, **quick_options)
    profile.save(path)
    print(
        f"  profiled {len(profile.entries)} blocks in {time.perf_counter() - start:.0f} s -> {path}"
    )
    return path


def _archs(space: Any, n: int) -> list[tuple[dict[str, Any], Any]]:
    return space.random_valid(n, _SEED_OFFSET)


def _predict_all(
    space: Any, models: list[Any], profile: Path, on_demand: bool
) -> tuple[list[float], int, int]:
    """Predictions of every model with one policy for missing blocks; (ms, on-demand, estimated)."""
    predictor = LatencyPredictor(profile, on_demand=on_demand)
    predicted, on_demand_blocks, estimated = [], 0, 0
    for i, model in enumerate(models, 1):
        pred = predictor.predict(model, space.resolution)
        predicted.append(pred.latency_ms)
        on_demand_blocks += pred.measured_on_demand
        estimated += pred.estimated
        if i % 20 == 0 or i == len(models):
            print(f"  predicted {i}/{len(models)} ({POLICIES[on_demand]})", flush=True)
    return predicted, on_demand_blocks, estimated


def evaluate(
    space_name: str, profile: Path, n: int, policies: list[bool], quick: bool
) -> dict[bool, dict[str, Any]]:
    """Per policy (True: missing blocks measured on demand, False: estimated), its figures.

    Estimates come first, from the profile as it was made; on-demand measurements then add to it.
    """
    space = load_space(space_name)
    archs = _archs(space, n)
    models = []  # built once, predicted both ways
    for _, cfg in archs:
        torch.manual_seed(0)
        models.append(space.family.build(cfg).eval())
    predictions = {
        policy: _predict_all(space, models, profile, policy) for policy in sorted(policies)
    }
    del models
    # One interleaved measurement of all of them, with the profile's anchors (some of its
    # calibration models): every arch and anchor sees the same stretch of time. Fresh processes
    # build them again (same seed), away from this one's hooked passes (bench/profile_context.py).
    anchors = pick_anchors(DeviceProfile.load(profile).anchors)
    configs = [space.to_config(arch) for arch, _ in archs] + [a.config for a in anchors]
    measured, anchors_now = _measure_whole(configs, len(archs), space.resolution, quick)
    base = _time_base([a.ms for a in anchors], anchors_now)
    return {
        policy: _policy_figures(space_name, policy, prediction, measured, base)
        for policy, prediction in predictions.items()
    }


def _measure_whole(
    configs: list[dict[str, Any]], n_archs: int, resolution: int, quick: bool
) -> tuple[list[float], list[float]]:
    """Median ms of the first ``n_archs`` configs and of the rest (the anchors), all timed whole
    in one interleaved run in fresh processes (one per free core)."""
    slices = 2 if quick else 40
    options = {"runs_per_slice": 3} if quick else {}
    start = time.perf_counter()
    timed = measure_many_in_processes(
        configs,
        resolution,
        processes=free_core_processes(1, slices),
        slices=slices,
        **options,
    )
    measured = [lat.median_ms for lat in timed[:n_archs]]
    anchors_now = [lat.median_ms for lat in timed[n_archs:]]
    print(
        f"  measured {len(measured)} whole in {time.perf_counter() - start:.0f} s "
        f"({timed[0].processes} fresh processes)",
        flush=True,
    )
    return measured, anchors_now


def _time_base(anchors_then: list[float], anchors_now: list[float]) -> TimeBase | None:
    """How much slower the machine runs now than when the profile was made; None without anchors."""
    if not anchors_then:
        print("  the profile has no anchors (made by an older archlab): no time-base figures")
        return None
    base = compare_to_profile(anchors_then, anchors_now)
    print(
        f"  latencies now ×{base.factor:.3f} (±{100 * base.ci_rel:.1f}%, {base.anchors} "
        "anchors) those of the profile's time"
    )
    _print_anchors(anchors_then, anchors_now)
    return base


def _policy_figures(
    space_name: str,
    policy: bool,
    prediction: tuple[list[float], int, int],
    measured: list[float],
    base: TimeBase | None,
) -> dict[str, Any]:
    """One policy's rows (per arch), block counts and figures by time base."""
    predicted, on_demand_blocks, estimated = prediction
    by_time_base = {"now": _figures(predicted, measured)}
    if base:
        on_profile_time = [base.to_profile_time(m) for m in measured]
        by_time_base["profile"] = _figures(predicted, on_profile_time)
    return {
        "rows": [
            {
                "space": Path(space_name).stem,
                "missing_blocks": POLICIES[policy],
                "predicted_ms": p,
                "measured_ms": m,
                "measured_ms_profile_time": base.to_profile_time(m) if base else None,
            }
            for p, m in zip(predicted, measured)
        ],
        "on_demand_blocks": on_demand_blocks,
        "estimated_blocks": estimated,
        "median_measured_ms": statistics.median(measured),
        "by_time_base": by_time_base,
    }


def _print_anchors(then_ms: list[float], now_ms: list[float]) -> None:
    """Each anchor's now / then: one common factor fits only if they agree at every latency."""
    ratios = [n / t for t, n in zip(then_ms, now_ms)]
    pairs = ", ".join(f"{t:.1f} ms ×{r:.3f}" for t, r in sorted(zip(then_ms, ratios)))
    rho = float(spearmanr(then_ms, ratios).statistic) if len(ratios) > 2 else float("nan")
    print(f"  anchors (then, now / then): {pairs}; Spearman(then, now / then) {rho:+.2f}")


def _figures(predicted: list[float], measured: list[float]) -> dict[str, float]:
    errors = [(p - m) / m for p, m in zip(predicted, measured)]
    return {
        "n": len(errors),
        "median_abs_pct": 100 * statistics.median(abs(e) for e in errors),
        "within_10_pct": 100 * sum(abs(e) <= 0.10 for e in errors) / len(errors),
        "spearman": float(spearmanr(predicted, measured).statistic),
        "median_signed_pct": 100 * statistics.median(errors),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="architectures per space")
    parser.add_argument("--spaces", default=None, help="comma-separated; default: every space")
    parser.add_argument(
        "--profile-dir",
        type=Path,
        default=None,
        help="where profiles are kept and reused; default: studies/profiles",
    )
    parser.add_argument("--profile-models", type=int, default=24)
    parser.add_argument(
        "--missing-blocks",
        default="measured,estimated",
        help="policies to compare for blocks the profile lacks: measured (on demand, in "
        "context), estimated (the profile's cost model), or both (default)",
    )
    parser.add_argument("--csv", type=Path, default=None, help="write one row per arch here")
    parser.add_argument("--quick", action="store_true", help="tiny run to check the script works")
    return parser


def main() -> None:
    parser = _parser()
    args = parser.parse_args()
    torch.set_num_threads(1)
    spaces = (
        [str(TINY)] if args.quick else (args.spaces.split(",") if args.spaces else list_spaces())
    )
    n = 6 if args.quick else args.n
    profile_dir = args.profile_dir or home() / "profiles"
    profile_dir.mkdir(parents=True, exist_ok=True)
    ticks_at_start = machine_ticks()
    print(f"load average at start {os.getloadavg()[0]:.2f}")
    by_name = {name: policy for policy, name in POLICIES.items()}
    try:
        policies = [by_name[p.strip()] for p in args.missing_blocks.split(",")]
    except KeyError as err:
        parser.error(f"--missing-blocks: {err} is not one of {', '.join(by_name)}")
    results = {}
    for space in spaces:
        print(f"{Path(space).stem}:")
        profile = _profile(space, profile_dir, 4 if args.quick else args.profile_models, args.quick)
        results[Path(space).stem] = evaluate(space, profile, n, policies, args.quick)
    print("\nPredicted vs measured (1 thread, batch 1); time base: measured as is (now), or")
    print("divided by the anchors' factor (profile: the time base the prediction is in)")
    print(
        f"{'space':>14} {'missing':>9} {'time base':>9} {'n':>4} {'med |err| %':>11} "
        f"{'within ±10%':>11} {'Spearman':>8} {'med err %':>9} {'on-demand':>9} {'estimated':>9} "
        f"{'med ms':>7}"
    )
    for name, by_policy in results.items():
        for policy, r in by_policy.items():
            for time_base, f in r["by_time_base"].items():
                print(
                    f"{name:>14} {POLICIES[policy]:>9} {time_base:>9} {f['n']:4d} "
                    f"{f['median_abs_pct']:11.1f} {f['within_10_pct']:10.0f}% "
                    f"{f['spearman']:8.3f} {f['median_signed_pct']:9.1f} "
                    f"{r['on_demand_blocks']:9d} {r['estimated_blocks']:9d} "
                    f"{r['median_measured_ms']:7.1f}"
                )
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    print(describe_steal(ticks_at_start))
    if args.csv:
        rows = [row for by in results.values() for r in by.values() for row in r["rows"]]
        pd.DataFrame(rows).to_csv(args.csv, index=False)
        print(f"rows written to {args.csv}")


if __name__ == "__main__":
    main()

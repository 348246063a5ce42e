"""How good are predicted latencies? Predicted vs measured on random architectures of each space.

For each space: a device profile (``archlab.profile.profile_device``; an existing one is reused with
``--profile-dir``), then ``--n`` random architectures that the profile was not built from (other
seeds) are predicted (``archlab.predictor.LatencyPredictor``, as a predicted-mode search uses it:
blocks missing from the table are measured on demand in context and added to the table) and
measured whole with the interleaved protocol (``measure_many``, all of them in one run). Printed
per space: the median absolute percentage error, the share of architectures within ±10%, the
Spearman rank correlation, the median signed error, and how many blocks had to be measured on
demand. ``--no-on-demand`` estimates missing blocks from their MACs instead (as on another machine).

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

from archlab.contention import describe_steal, machine_ticks
from archlab.interleave import measure_many
from archlab.predictor import LatencyPredictor
from archlab.profile import DeviceProfile, profile_device
from archlab.space import list_spaces, load_space
from archlab.storage import home

TINY = Path(__file__).resolve().parent.parent / "tests" / "data" / "tiny_plgvit.yaml"
_SEED_OFFSET = 1_000  # architectures evaluated here are drawn from other seeds than the profile's


def _profile(space: str, directory: Path, n_models: int, quick: bool) -> Path:
    path = directory / f"{Path(space).stem}.json"
    if path.exists():
        DeviceProfile.load(path)  # fails clearly on another format version
        print(f"  using the profile {path}")
        return path
    start = time.perf_counter()
    quick_options = {"runs": 3, "calibration_slices": 2} if quick else {}
    profile = profile_device(space, n_models=n_models, n_calibration=n_models, **quick_options)
    profile.save(path)
    print(
        f"  profiled {len(profile.entries)} blocks in {time.perf_counter() - start:.0f} s -> {path}"
    )
    return path


def _archs(space: Any, n: int) -> list[Any]:
    cfgs = []
    for seed in range(_SEED_OFFSET, _SEED_OFFSET + 100 * n):
        try:
            cfgs.append(space.to_cfg(space.sample(seed)))
        except ValueError:
            continue
        if len(cfgs) == n:
            break
    return cfgs


def evaluate(
    space_name: str, profile: Path, n: int, on_demand: bool, quick: bool
) -> dict[str, Any]:
    space = load_space(space_name)
    predictor = LatencyPredictor(profile, on_demand=on_demand)
    predicted, measured, on_demand_blocks, estimated = [], [], 0, 0
    cfgs = _archs(space, n)
    models = []
    for i, cfg in enumerate(cfgs, 1):
        torch.manual_seed(0)
        model = space.family.build(cfg).eval()
        pred = predictor.predict(model, space.resolution)
        predicted.append(pred.latency_ms)
        on_demand_blocks += pred.measured_on_demand
        estimated += pred.estimated
        models.append(model)
        if i % 10 == 0 or i == len(cfgs):
            print(f"  predicted {i}/{len(cfgs)}", flush=True)
    # One interleaved measurement of all of them: every arch sees the same stretch of time.
    options = {"slices": 2, "runs_per_slice": 3} if quick else {}
    start = time.perf_counter()
    measured = [lat.median_ms for lat in measure_many(models, space.resolution, **options)]
    print(f"  measured {len(measured)} whole in {time.perf_counter() - start:.0f} s", flush=True)
    errors = [(p - m) / m for p, m in zip(predicted, measured)]
    return {
        "rows": [
            {"space": Path(space_name).stem, "predicted_ms": p, "measured_ms": m}
            for p, m in zip(predicted, measured)
        ],
        "n": len(errors),
        "median_abs_pct": 100 * statistics.median(abs(e) for e in errors),
        "within_10_pct": 100 * sum(abs(e) <= 0.10 for e in errors) / len(errors),
        "spearman": float(spearmanr(predicted, measured).statistic),
        "median_signed_pct": 100 * statistics.median(errors),
        "on_demand_blocks": on_demand_blocks,
        "estimated_blocks": estimated,
        "median_measured_ms": statistics.median(measured),
    }


def main() -> None:
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
        "--no-on-demand",
        action="store_true",
        help="estimate missing blocks from MACs instead of measuring them",
    )
    parser.add_argument("--csv", type=Path, default=None, help="write one row per arch here")
    parser.add_argument("--quick", action="store_true", help="tiny run to check the script works")
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
    results = {}
    for space in spaces:
        print(f"{Path(space).stem}:")
        profile = _profile(space, profile_dir, 4 if args.quick else args.profile_models, args.quick)
        results[Path(space).stem] = evaluate(space, profile, n, not args.no_on_demand, args.quick)
    mode = "estimated from MACs" if args.no_on_demand else "measured on demand"
    print(f"\nPredicted vs measured (1 thread, batch 1; missing blocks {mode})")
    print(
        f"{'space':>14} {'n':>4} {'med |err| %':>11} {'within ±10%':>11} {'Spearman':>8} "
        f"{'med err %':>9} {'on-demand':>9} {'estimated':>9} {'med ms':>7}"
    )
    for name, r in results.items():
        print(
            f"{name:>14} {r['n']:4d} {r['median_abs_pct']:11.1f} {r['within_10_pct']:10.0f}% "
            f"{r['spearman']:8.3f} {r['median_signed_pct']:9.1f} {r['on_demand_blocks']:9d} "
            f"{r['estimated_blocks']:9d} {r['median_measured_ms']:7.1f}"
        )
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    print(describe_steal(ticks_at_start))
    if args.csv:
        rows = [row for r in results.values() for row in r["rows"]]
        pd.DataFrame(rows).to_csv(args.csv, index=False)
        print(f"rows written to {args.csv}")


if __name__ == "__main__":
    main()

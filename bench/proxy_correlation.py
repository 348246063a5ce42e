"""How well does each cheap accuracy estimate rank architectures like short training does?

For ``--archs`` uniformly sampled architectures of every shipped space (or ``--spaces``), computes
the zero-cost proxies (NASWOT, synflow, grad-norm; at initialisation, on the arch reduced to
``--resolution`` px, as ``archlab search`` does), the plain baselines (#params and MACs of the full
model at the space's resolution, with 1000 classes) and the short-training fidelity (validation
accuracy on scikit-learn's digits after ``--steps`` AdamW steps of ``--batch`` images at
``--resolution`` px, same seed for every arch). It prints Spearman's rank correlation of each
estimate with that accuracy, per space, with a 95% bootstrap interval. Params and MACs enter as
"bigger predicts better". ``--repeat K`` trains the first K archs again with another seed: the
correlation between the two runs is the ceiling any proxy can reach against this noisy fidelity.

Run: ``.venv/bin/python bench/proxy_correlation.py`` (30 archs per space; about 15 s per arch on
one free core, mostly training). ``--archs 10 --steps 10`` for a quick look; ``--csv out.csv``
keeps one row per arch.
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from archlab.estimate.estimates import estimate_accuracy
from archlab.estimate.proxies import PROXIES
from archlab.estimate.training import TrainSpec
from archlab.measurement.flops import count_macs, count_params
from archlab.space import SearchSpace, list_spaces, load_space

ESTIMATES = (*PROXIES, "params", "macs")


def _measure(space: SearchSpace, arch: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(args.seed)
    model = space.family.build(space.to_cfg(arch)).eval()
    row: dict[str, Any] = {
        "params": count_params(model),
        "macs": count_macs(model, space.resolution).total,
    }
    start = time.perf_counter()
    row.update(
        estimate_accuracy(
            space,
            arch,
            list(PROXIES),
            resolution=args.resolution,
            proxy_batch=args.proxy_batch,
            seed=args.seed,
        )
    )
    row["proxy_s"] = time.perf_counter() - start
    row.update(_train(space, arch, args, args.seed))
    return row


def _train(
    space: SearchSpace, arch: dict[str, Any], args: argparse.Namespace, seed: int
) -> dict[str, Any]:
    train = TrainSpec(
        steps=args.steps,
        batch=args.batch,
        resolution=args.resolution,
        time_limit_s=args.time_limit,
        seed=seed,
    )
    return estimate_accuracy(space, arch, ["val_acc"], train=train)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation: Pearson's on average ranks (ties share their mean rank)."""
    rx, ry = pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def _bootstrap(x: np.ndarray, y: np.ndarray, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        idx = rng.integers(0, len(x), len(x))
        rho = spearman(x[idx], y[idx])
        if np.isfinite(rho):
            values.append(rho)
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def _finite_ranks(x: np.ndarray) -> np.ndarray:
    """±inf scores (synflow overflow or collapse) placed just beyond the finite ones, tied."""
    finite = x[np.isfinite(x)]
    low, high = (finite.min(), finite.max()) if len(finite) else (0.0, 0.0)
    return np.where(np.isposinf(x), high + 1.0, np.where(np.isneginf(x), low - 1.0, x))


def _correlations(rows: list[dict[str, Any]]) -> dict[str, tuple[float, float, float]]:
    acc = np.array([r["val_acc"] for r in rows])
    out = {}
    for name in ESTIMATES:
        x = _finite_ranks(np.array([r[name] for r in rows], dtype=float))
        rho = spearman(x, acc)
        out[name] = (rho, *_bootstrap(x, acc))
    return out


def _run_space(name: str, args: argparse.Namespace) -> dict[str, Any]:
    space = load_space(name)
    rows, skipped = [], []
    for i in range(args.archs):
        arch = space.sample(args.seed * 1_000_003 + i)
        start, cpu = time.perf_counter(), time.process_time()
        try:
            row = _measure(space, arch, args)
        except ValueError as err:
            skipped.append(str(err))
            continue
        row.update(
            space=name,
            arch_index=i,
            total_s=time.perf_counter() - start,
            cpu_s=time.process_time() - cpu,
        )
        rows.append(row)
        print(
            f"  {name} #{i:<3} acc {row['val_acc']:.3f}  naswot {row['naswot']:8.2f}  "
            f"synflow {row['synflow']:8.2f}  grad_norm {row['grad_norm']:8.2f}  "
            f"params {row['params'] / 1e6:5.2f}M  macs {row['macs'] / 1e9:5.2f}G  "
            f"({row['total_s']:.0f}s{', time limit hit' if row['train_stopped_early'] else ''})",
            flush=True,
        )
    repeat = []
    for row in rows[: args.repeat]:
        again = _train(
            space, space.sample(args.seed * 1_000_003 + row["arch_index"]), args, args.seed + 1
        )
        repeat.append((row["val_acc"], again["val_acc"]))
    return {"rows": rows, "skipped": skipped, "repeat": repeat}


def _print_table(results: dict[str, dict[str, Any]]) -> None:
    names = list(results)
    print(
        "\nSpearman rank correlation with short-training validation accuracy "
        "(95% bootstrap interval)"
    )
    header = f"{'estimate':<11}" + "".join(f"{n:>26}" for n in names) + f"{'mean':>8}"
    print(header)
    print("-" * len(header))
    per_space = {n: _correlations(r["rows"]) for n, r in results.items() if len(r["rows"]) > 2}
    for est in ESTIMATES:
        cells, rhos = "", []
        for n in names:
            if n not in per_space:
                cells += f"{'–':>26}"
                continue
            rho, lo, hi = per_space[n][est]
            rhos.append(rho)
            cells += f"{rho:>+10.2f} [{lo:+.2f}, {hi:+.2f}]  "
        mean = f"{np.mean(rhos):+8.2f}" if rhos else f"{'–':>8}"
        print(f"{est:<11}{cells}{mean}")
    _print_footer(results)


def _print_footer(results: dict[str, dict[str, Any]]) -> None:
    for n, r in results.items():
        rows = r["rows"]
        if not rows:
            print(f"{n}: no arch could run at the reduced resolution ({r['skipped'][:1]})")
            continue
        acc = np.array([row["val_acc"] for row in rows])
        line = (
            f"{n}: {len(rows)} archs, accuracy {acc.min():.3f}-{acc.max():.3f} "
            f"(median {np.median(acc):.3f}), {np.mean([x['total_s'] for x in rows]):.1f} s/arch "
            f"({np.mean([x['cpu_s'] for x in rows]):.1f} s of CPU)"
        )
        early = sum(row["train_stopped_early"] for row in rows)
        line += f", {early} cut by the time limit" if early else ""
        line += f", {len(r['skipped'])} skipped" if r["skipped"] else ""
        if len(r["repeat"]) > 2:
            a, b = np.array(r["repeat"]).T
            line += f"; seed-to-seed Spearman of accuracy on {len(a)} archs: "
            line += f"{spearman(a, b):+.2f}"
        print(line)


def _write_csv(path: Path, results: dict[str, dict[str, Any]]) -> None:
    rows = [row for r in results.values() for row in r["rows"]]
    if not rows:
        return
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"rows written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--spaces",
        default=",".join(list_spaces()),
        help="comma-separated space names (default: every shipped space)",
    )
    parser.add_argument("--archs", type=int, default=30, help="architectures per space")
    parser.add_argument("--steps", type=int, default=20, help="training steps per arch")
    parser.add_argument("--batch", type=int, default=16, help="training images per step")
    parser.add_argument("--resolution", type=int, default=64, help="input side of the estimates")
    parser.add_argument("--proxy-batch", type=int, default=8, help="probe images of the proxies")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=600.0,
        help="training seconds per arch (a cut run is reported)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=0,
        help="retrain the first K archs with another seed (noise ceiling)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", type=Path, default=None, help="write one row per arch here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    start, cpu = time.perf_counter(), time.process_time()
    results = {}
    for name in [s.strip() for s in args.spaces.split(",") if s.strip()]:
        print(
            f"{name}: {args.archs} archs, {args.steps} steps × {args.batch} images at "
            f"{args.resolution} px",
            flush=True,
        )
        results[name] = _run_space(name, args)
    _print_table(results)
    print(
        f"total {math.ceil((time.perf_counter() - start) / 60)} min "
        f"({math.ceil((time.process_time() - cpu) / 60)} min of CPU) "
        f"(torch {torch.__version__}, 1 thread)"
    )
    if args.csv:
        _write_csv(args.csv, results)


if __name__ == "__main__":
    main()

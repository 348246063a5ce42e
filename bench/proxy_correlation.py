"""How well does each cheap accuracy estimate rank architectures like the ground truth does?

The ground truth is read, never trained here: ``bench/results/ground_truth_<space>.csv``, written by
``bench/ground_truth.py`` (random archs of the space trained with the reference recipe
:data:`archlab.estimate.training.GROUND_TRUTH`: Fashion-MNIST at 32 px, 1,000 steps of 64 images).
An arch's accuracy is its mean validation accuracy over its seeds (``kind == "random"`` rows at
the recipe's budget); archs are added as the ground-truth jobs append them, once they have every
seed. ``--val-fraction``/``--bn-images`` score against the runs ``bench/ground_truth.py`` made
with the same options (a variant of the recipe) instead.

For every such arch it computes, on the arch reduced to ``--resolution`` px (default: the ground
truth's 32 px, so the same model is scored as was trained), with weights from ``--seed``:

* the zero-cost proxies ``naswot``, ``synflow``, ``grad_norm``, ``zico``, ``swap``, ``meco``
  (:mod:`archlab.estimate.proxies`) on seeded probe batches of ``--proxy-batch`` images from
  ``--data`` (default Fashion-MNIST, training split);
* the size baselines ``params`` and ``macs`` (full model, 1000 classes, the space's resolution);
* ``tse_1_64``, the training speed: minus the mean training loss over the ground-truth recipe cut
  to 1/64 of its steps (15 steps, seed 2, no evaluation; Ru et al., NeurIPS 2021), a few seconds;
* with ``--short-train`` also ``train_1_8`` and ``train_1_4``: validation accuracy after training
  with the ground-truth recipe cut to 1/8 and 1/4 of its steps (warm-up cut alike), seed 2: a seed
  the ground truth does not use, so no initialisation or batch order is shared with it.

Estimates go to ``bench/results/estimates_<space>.csv`` (column ``arch``, the arch's JSON as in the
ground truth, then one column per estimate, then ``<estimate>_s``, its seconds, and ``settings``,
the proxies' data/resolution/batch/seed); each arch's row is merged into the file as soon as it is
done, and a rerun reuses what it holds, recomputing the proxies only of rows made with other
settings. ``--shard I/N`` computes only every N-th arch, from the I-th, so that N processes (one per
core) share the work; they merge into the same file under a lock, and each prints the table of what
the file holds when it finishes.

It prints, per space and pooled over spaces, every estimate's Spearman ρ and Kendall τ with the
ground truth (95 % bootstrap intervals over archs), its top-20 % recall (the share of the truth's
best fifth found in the estimate's best fifth) and the median seconds per arch it took. Pooling
rank-normalises estimate and truth within each space and scores all archs together
(:mod:`archlab.estimate.score`). The agreement of ground-truth seeds 0 and 1 is printed beside
them: how well a second training run ranks archs like the first (``bench/evidence.py`` also prints
what a perfect estimate would attain against the mean of the seeds).

Run: ``.venv/bin/python bench/proxy_correlation.py`` (every space with a ground-truth CSV; a few
seconds per arch, one thread); ``--short-train`` adds about 1/8 + 1/4 of a ground-truth run per
arch (minutes each).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import fcntl
import json
import logging
import math
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archlab.estimate.arch_estimates import (
    SHORT_TRAINING,
    TRAINING_SPEED,
    short_training_spec,
    trained_estimate,
)
from archlab.estimate.estimates import BASELINES, estimate_accuracy
from archlab.estimate.ground_truth import (
    parse_shard,
    random_arch_truth,
    read_rows,
    seed_agreement,
)
from archlab.estimate.proxies import PROXIES, probe_batch
from archlab.estimate.rank_stats import Agreement
from archlab.estimate.score import pooled_agreement, score_estimates
from archlab.estimate.training import GROUND_TRUTH, TrainSpec, load_spec_data
from archlab.space import SearchSpace, load_space

RESULTS = Path(__file__).resolve().parent / "results"
ZERO_COST = (*PROXIES, *BASELINES)
SHORT_TRAIN = SHORT_TRAINING  # column → the ground-truth budget's divisor
SPEED = TRAINING_SPEED  # column → the ground-truth budget's divisor
COLUMNS = (
    "arch",
    *ZERO_COST,
    *SHORT_TRAIN,
    *SPEED,
    *(f"{n}_s" for n in (*ZERO_COST, *SHORT_TRAIN, *SPEED)),
    "settings",
)


def _recipe(args: argparse.Namespace) -> TrainSpec:
    """The ground-truth recipe scored against: the reference one, or a variant of it that
    ``bench/ground_truth.py`` trained with the same ``--val-fraction``/``--bn-images``."""
    changed = {"val_fraction": args.val_fraction, "bn_images": args.bn_images}
    return dataclasses.replace(GROUND_TRUTH, **{k: v for k, v in changed.items() if v is not None})


def _truth(path: Path, budget: str) -> tuple[list[str], dict[str, float], list[dict[str, Any]]]:
    """Archs (JSON, in the ground truth's order) trained with every seed any arch has at
    ``budget``, their mean accuracy, and their rows (an arch still missing a seed is left out)."""
    every = read_rows(path)
    accuracy = random_arch_truth(every, budget)
    rows = [r for r in every if r["arch"] in accuracy and r["budget"] == budget]
    index = {r["arch"]: int(re.sub(r"\D", "", r["name"]) or 0) for r in rows}
    archs = sorted(index, key=lambda a: index[a])
    return archs, accuracy, rows


def _read_cache(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        return {row["arch"]: row for row in csv.DictReader(f)}


@contextlib.contextmanager
def _folder_locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (shards of this script writing the same CSV)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _save_row(path: Path, row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Merge one arch's row into the CSV, keeping the rows other shards wrote meanwhile; return
    the file's rows."""
    with _folder_locked(path.parent):
        rows: dict[str, dict[str, Any]] = dict(_read_cache(path))
        rows[row["arch"]] = row
        _write_cache(path, rows)
    return rows


def _write_cache(path: Path, rows: dict[str, dict[str, Any]]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows.values():
            writer.writerow({c: row.get(c, "") for c in COLUMNS})
    os.replace(tmp, path)


def _settings(args: argparse.Namespace) -> str:
    return f"{args.data}@{args.resolution}px,batch{args.proxy_batch},seed{args.seed}"


def _missing(
    row: dict[str, Any], args: argparse.Namespace
) -> tuple[list[str], list[str], list[str]]:
    """The zero-cost estimates, training speeds and short trainings ``row`` lacks."""
    stale = row.get("settings") != _settings(args)
    zero = [n for n in ZERO_COST if row.get(n, "") == "" or (stale and n in PROXIES)]
    speed = [n for n in SPEED if row.get(n, "") == ""]
    short = [n for n in SHORT_TRAIN if args.short_train and row.get(n, "") == ""]
    return zero, speed, short


def _measure(
    space: SearchSpace, arch: dict[str, Any], row: dict[str, Any], args: argparse.Namespace
) -> None:
    zero, speed, short = _missing(row, args)
    if zero:
        out = estimate_accuracy(
            space,
            arch,
            zero,
            resolution=args.resolution,
            proxy_batch=args.proxy_batch,
            seed=args.seed,
            data=args.data,
            timings=True,
        )
        for name in zero:
            row[name], row[f"{name}_s"] = out[name], round(out[f"{name}_s"], 4)
        row["settings"] = _settings(args)
    for name in (*speed, *short):
        value, seconds = trained_estimate(space, arch, name)
        row[name], row[f"{name}_s"] = value, round(seconds, 2)


def _float(value: Any) -> float:
    return math.nan if value in ("", None) else float(value)


def _run_space(name: str, args: argparse.Namespace) -> dict[str, Any] | None:
    truth_path = args.results / f"ground_truth_{name}.csv"
    budget = _recipe(args).budget_label()
    archs, accuracy, truth_rows = _truth(truth_path, budget)
    if not archs:
        print(f"{name}: no ground truth in {truth_path}")
        return None
    if args.archs:
        archs = archs[: args.archs]
        truth_rows = [r for r in truth_rows if r["arch"] in set(archs)]
    space = load_space(name)
    path = args.results / f"estimates_{name}.csv"
    cache = _read_cache(path)
    rows: dict[str, dict[str, Any]] = dict(cache)
    computed = 0
    start = time.perf_counter()
    index, count = args.shard
    for arch_json in archs[index::count]:
        row = rows.setdefault(arch_json, {"arch": arch_json})
        if any(_missing(row, args)):
            _measure(space, json.loads(arch_json), row, args)
            computed += 1
            rows = _save_row(path, row)
    rows = {**rows, **_read_cache(path)}  # with what other shards finished meanwhile
    for arch_json in archs:
        rows.setdefault(arch_json, {"arch": arch_json})
    seeds = {a: sum(1 for r in truth_rows if r["arch"] == a) for a in archs}
    print(
        f"{name}: {len(archs)} archs with ground truth ({sum(s >= 2 for s in seeds.values())} with "
        f"2+ seeds), estimates: {computed} computed here in {time.perf_counter() - start:.0f} s, "
        f"{len(archs) - computed} read from {path.name}"
    )
    names = [*ZERO_COST, *SPEED, *(n for n in SHORT_TRAIN if args.short_train)]
    table = {n: [_float(rows[a].get(n)) for a in archs] for n in names}
    seconds = {n: [_float(rows[a].get(f"{n}_s")) for a in archs] for n in names}
    return {
        "truth": [accuracy[a] for a in archs],
        "estimates": table,
        "seconds": seconds,
        "ceiling": seed_agreement(truth_rows, budget, (0, 1)),
    }


def _interval(value: float, ci: tuple[float, float]) -> str:
    if math.isnan(value):
        return f"{'–':>21}"
    return f"{value:+6.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]"


def _print_scores(
    title: str, scores: dict[str, Agreement], seconds: dict[str, list[float]] | None
) -> None:
    print(title)
    header = (
        f"  {'estimate':<10}{'n':>4}  {'Spearman ρ [95% CI]':>21}  {'Kendall τ [95% CI]':>21}"
        f"  {'top-20%':>7}"
    )
    header += f"  {'s/arch':>7}" if seconds is not None else ""
    print(header)
    for est, a in scores.items():
        recall = f"{a.top20_recall:7.2f}" if not math.isnan(a.top20_recall) else f"{'–':>7}"
        line = (
            f"  {est:<10}{a.n:>4}  {_interval(a.spearman, a.spearman_ci)}  "
            f"{_interval(a.kendall, a.kendall_ci)}  {recall}"
        )
        if seconds is not None:
            finite = [s for s in seconds[est] if not math.isnan(s)]
            line += f"  {np.median(finite):7.2f}" if finite else f"  {'–':>7}"
        print(line)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--spaces",
        help="comma-separated space names (default: every space with a ground-truth CSV)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the CSVs")
    parser.add_argument("--archs", type=int, default=0, help="only the first N archs (0: all)")
    parser.add_argument(
        "--resolution",
        type=int,
        default=GROUND_TRUTH.resolution,
        help="input side of the proxies (default: the ground truth's)",
    )
    parser.add_argument("--proxy-batch", type=int, default=8, help="probe images of the proxies")
    parser.add_argument("--data", default="fashion-mnist", help="the proxies' probe data set")
    parser.add_argument("--seed", type=int, default=0, help="weights and probe-batch seed")
    parser.add_argument(
        "--short-train",
        action="store_true",
        help="also train every arch for 1/8 and 1/4 of the ground-truth budget (slow)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--val-fraction",
        type=float,
        help="score against the ground truth of this validation share (as in ground_truth.py)",
    )
    parser.add_argument(
        "--bn-images", type=int, help="... and this many BatchNorm images (as ground_truth.py)"
    )
    parser.add_argument(
        "--shard",
        type=parse_shard,
        default=(0, 1),
        metavar="I/N",
        help="compute only every N-th arch from the I-th (N processes share the work)",
    )
    return parser


def main() -> None:
    args = _parser().parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    if args.spaces:
        spaces = [s.strip() for s in args.spaces.split(",") if s.strip()]
    else:
        spaces = sorted(
            p.stem.removeprefix("ground_truth_") for p in args.results.glob("ground_truth_*.csv")
        )
    print(
        f"ground truth: {_recipe(args).budget_label()} on {GROUND_TRUTH.data}, mean val_acc over "
        f"seeds; proxies on {_settings(args)}; torch {torch.__version__}, {args.threads} thread(s)"
    )
    start = time.perf_counter()
    probe_batch(1, args.resolution, data=args.data)  # load the data set once, outside the timings
    load_spec_data(short_training_spec(min(SPEED.values())))  # and the training images
    results = {}
    for name in spaces:
        result = _run_space(name, args)
        if result is not None:
            results[name] = result
    for name, r in results.items():
        acc = np.array(r["truth"])
        c = r["ceiling"]
        print(
            f"\n{name}: {len(acc)} archs, ground-truth accuracy {acc.min():.4f}–{acc.max():.4f} "
            f"(median {np.median(acc):.4f}); seed 0 vs 1 over {c.n} archs: "
            f"ρ {_interval(c.spearman, c.spearman_ci).strip()}, "
            f"τ {_interval(c.kendall, c.kendall_ci).strip()}"
        )
        _print_scores(
            "  agreement with the ground truth, median seconds per arch:",
            score_estimates(r["estimates"], r["truth"], seed=args.seed),
            r["seconds"],
        )
    if len(results) > 1:
        names = list(next(iter(results.values()))["estimates"])
        pooled = {
            n: pooled_agreement(
                [(r["estimates"][n], r["truth"]) for r in results.values()], seed=args.seed
            )
            for n in names
        }
        print()
        _print_scores(
            f"pooled over {', '.join(results)} (ranks normalised within each space):",
            pooled,
            {n: [s for r in results.values() for s in r["seconds"][n]] for n in names},
        )
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

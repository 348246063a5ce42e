"""Does the speed of the first few training steps rank architectures within a search's budget?

Short training ranks the ground truth best of every estimate (``train_1_4``, ``train_1_8``), but
costs one to two minutes per arch, far above the ≤ 10 s rule for a search's default. Ru et al.
(NeurIPS 2021, "Speedy Performance Estimation for Neural Architecture Search") report that the sum
of training losses of a short run (TSE) ranks architectures better than the validation accuracy
of the same run, and needs no evaluation. This bench measures that at the budgets our rule allows.

Fixed before any figure was seen:

* the run is the ground-truth recipe cut to 1/64, 1/32 and 1/16 of its steps
  (:func:`archlab.estimate.arch_estimates.short_training_spec`: 15, 31 and 62 steps of 64 images,
  warm-up 1–3 steps, seed 2, which the ground truth does not use), one thread;
* ``tse``: the mean training loss over every step of that run (lower is better; the estimate is its
  negative). Every run has the same number of steps, so the mean orders archs as the sum does;
* ``val_acc``: the same run's validation accuracy (BatchNorm re-estimated, as the recipe does),
  so TSE is compared with the accuracy of the same training;
* ``train_s``: seconds of the training steps alone (what TSE costs beyond building the model);
  ``seconds``: building, training and evaluating.

1/64 is the candidate for a default under the ≤ 10 s rule; 1/32 and 1/16 show the trend towards
``train_1_8`` (1/8). ``--seed 3`` trains the same archs with another seed: how well two runs of the
estimate agree, and how the mean of two ranks (at twice the cost). All are scored against the
committed ground truth (mean over seeds) like every other estimate: Spearman ρ with a
95 % bootstrap interval, per space and pooled (rank-normalised within each space).

Rows go to ``bench/results/training_speed_<space>.csv`` as each run finishes (a stopped job
resumes). Run: ``.venv/bin/python bench/training_speed.py --spaces plgvit,hybrid``;
``--report`` scores what the files hold without training.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archlab.estimate.arch_estimates import SHORT_TRAINING_SEED, short_training_spec
from archlab.estimate.estimates import reduced_model
from archlab.estimate.ground_truth import append_row, random_arch_truth, read_rows
from archlab.estimate.rank_stats import Agreement, agreement
from archlab.estimate.score import pooled_agreement
from archlab.estimate.training import GROUND_TRUTH, load_spec_data, short_train
from archlab.space import load_space

RESULTS = Path(__file__).resolve().parent / "results"
DIVISORS = (64, 32, 16)  # fractions of the ground-truth budget, cheapest first
FIELDS = ("arch", "divisor", "seed", "steps", "tse", "val_acc", "train_s", "seconds", "torch")
SHARED_SPACES = ("plgvit", "hybrid", "sbcformer", "mobileformer", "parc")


def _path(space: str) -> Path:
    return RESULTS / f"training_speed_{space}.csv"


def _rows(space: str) -> list[dict[str, str]]:
    path = _path(space)
    return list(csv.DictReader(path.open())) if path.exists() else []


def _truth(space: str) -> dict[str, float]:
    rows = read_rows(RESULTS / f"ground_truth_{space}.csv")
    return random_arch_truth(rows, GROUND_TRUTH.budget_label())


def _run(space_name: str, arch_json: str, divisor: int, seed: int) -> dict[str, Any]:
    start = time.perf_counter()
    spec = dataclasses.replace(short_training_spec(divisor), seed=seed)
    data = load_spec_data(spec)
    space = load_space(space_name)
    arch = json.loads(arch_json)
    model = reduced_model(space, arch, spec.resolution, data.num_classes, spec.seed)
    losses: list[float] = []
    result = short_train(model, data, spec, progress=lambda _s, _n, loss: losses.append(loss))
    return {
        "arch": arch_json,
        "divisor": divisor,
        "seed": seed,
        "steps": result.steps,
        "tse": sum(losses) / len(losses),
        "val_acc": result.val_acc,
        "train_s": round(result.train_s, 3),
        "seconds": round(time.perf_counter() - start, 3),
        "torch": torch.__version__,
    }


def _train(space: str, divisors: tuple[int, ...], seed: int) -> None:
    archs = sorted(_truth(space))
    done = {(r["arch"], int(r["divisor"]), int(r["seed"])) for r in _rows(space)}
    todo = [(a, d) for d in divisors for a in archs if (a, d, seed) not in done]
    print(f"{space}: {len(archs)} archs with ground truth, {len(todo)} runs to go", flush=True)
    for i, (arch, divisor) in enumerate(todo, 1):
        row = _run(space, arch, divisor, seed)
        append_row(_path(space), row, FIELDS)
        print(
            f"  {i}/{len(todo)} 1/{divisor}: tse {row['tse']:.4f}, val_acc {row['val_acc']:.4f}, "
            f"train {row['train_s']:.1f} s, all {row['seconds']:.1f} s",
            flush=True,
        )


def _columns(
    space: str, divisor: int, seed: int = SHORT_TRAINING_SEED
) -> tuple[list[float], dict[str, list[float]], list[float]]:
    """Truth, the estimates (higher = better) and the training seconds, over archs with both."""
    truth = _truth(space)
    rows = [
        r
        for r in _rows(space)
        if int(r["divisor"]) == divisor and int(r["seed"]) == seed and r["arch"] in truth
    ]
    return (
        [truth[r["arch"]] for r in rows],
        {
            "tse": [-float(r["tse"]) for r in rows],
            "val_acc": [float(r["val_acc"]) for r in rows],
        },
        [float(r["train_s"]) for r in rows],
    )


def _line(label: str, a: Agreement) -> str:
    return (
        f"  {label:<14} n {a.n:>2}  ρ {a.spearman:+.2f} [{a.spearman_ci[0]:+.2f}, "
        f"{a.spearman_ci[1]:+.2f}]  top-20% {a.top20_recall:.2f}"
    )


def _report(spaces: list[str]) -> None:
    for divisor in DIVISORS:
        pooled: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"tse": [], "val_acc": []}
        print(f"\n1/{divisor} of the ground-truth budget ({1000 // divisor} steps of 64 images):")
        for space in spaces:
            truth, estimates, train_s = _columns(space, divisor)
            if len(truth) < 3:
                continue
            print(f" {space}: training {np.median(train_s):.1f} s per arch (median)")
            for name, values in estimates.items():
                print(_line(name, agreement(np.array(values), np.array(truth))))
                pooled[name].append((np.array(values), np.array(truth)))
        if len(pooled["tse"]) > 1:
            print(f" pooled over {len(pooled['tse'])} spaces:")
            for name, pairs in pooled.items():
                print(_line(name, pooled_agreement(pairs)))
        _repeatability(spaces, divisor)


def _repeatability(spaces: list[str], divisor: int) -> None:
    """Where archs were also trained with other seeds: how well two seeds of the estimate agree,
    and how the other seed, and the mean of the two (at twice the cost), rank against the ground
    truth, per space and pooled."""
    pooled: dict[tuple[int, str], list[tuple[np.ndarray, np.ndarray]]] = {}
    for space in spaces:
        by_seed: dict[int, dict[str, float]] = {}
        for r in _rows(space):
            if int(r["divisor"]) == divisor:
                by_seed.setdefault(int(r["seed"]), {})[r["arch"]] = -float(r["tse"])
        own = by_seed.pop(SHORT_TRAINING_SEED, {})
        truth = _truth(space)
        for seed, other in sorted(by_seed.items()):
            archs = sorted(set(own) & set(other) & set(truth))
            if len(archs) < 3:
                continue
            a, b = np.array([own[x] for x in archs]), np.array([other[x] for x in archs])
            y = np.array([truth[x] for x in archs])
            print(f" {space}, tse with seeds {SHORT_TRAINING_SEED} and {seed}:")
            print(_line("seed agreement", agreement(a, b)))
            for label, values in ((f"seed {seed} alone", b), ("mean of both", (a + b) / 2)):
                print(_line(label, agreement(values, y)))
                pooled.setdefault((seed, label), []).append((values, y))
    for (seed, label), pairs in pooled.items():
        if len(pairs) > 1:
            print(_line(f"{label}, pooled over {len(pairs)}", pooled_agreement(pairs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", default=",".join(SHARED_SPACES), help="comma-separated")
    parser.add_argument(
        "--divisors",
        default=",".join(map(str, DIVISORS)),
        help="which fractions of the budget to train (comma-separated divisors)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=SHORT_TRAINING_SEED,
        help="weights and batch order (default: the estimate's; another seed: its repeatability)",
    )
    parser.add_argument("--report", action="store_true", help="score the CSVs; train nothing")
    args = parser.parse_args()
    divisors = tuple(int(d) for d in args.divisors.split(","))
    if not set(divisors) <= set(DIVISORS):
        parser.error(f"--divisors must be among {DIVISORS}, got {args.divisors}")
    torch.set_num_threads(1)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    spaces = [s.strip() for s in args.spaces.split(",") if s.strip()]
    if not args.report:
        for space in spaces:
            _train(space, divisors, args.seed)
    _report(spaces)


if __name__ == "__main__":
    main()

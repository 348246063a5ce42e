"""Where the ground truth's seed-to-seed noise comes from: training, or the finite validation set.

Two seeds of the same arch score slightly different validation accuracies. Part of that difference
is real (the two trained networks differ in quality); part is only the validation set being finite:
two networks of equal quality still misclassify different images, and on ``n`` images their
accuracies then differ by about ``sqrt(d / n)``, where ``d`` is the share of images on which their
predictions disagree. This script retrains both seeds of a few archs from the committed ground
truth (checking that each run reproduces its committed accuracy exactly), measures ``d`` on the
validation images, and sets the finite-set part against the seed differences the ground truth
shows over all its archs. If the finite set explains most of it, a larger validation split (not
more training) is what makes two seeds agree.

``--bn-draws K`` measures one part of the rest, the BatchNorm statistics: the recipe re-estimates
them on the last 4 training batches (256 images) before evaluating. For each retrained run the
statistics are re-estimated K more times, each on 4 other batches drawn at random from the training
split, and once on 64 random batches (4,096 images); the spread of accuracy over the K draws, with
the weights fixed, is the noise that the 256-image estimate alone adds to a run. Rows go to
``bench/results/bn_noise.csv``.

Run: ``.venv/bin/python bench/seed_noise.py --space plgvit --archs 4 [--bn-draws 8]`` (two
ground-truth runs per arch, 4–9 min each on one core). Rows go to ``bench/results/seed_noise.csv``
as each arch finishes (a stopped run resumes).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archlab.estimate.data import ImageData, to_input
from archlab.estimate.estimates import reduced_model
from archlab.estimate.ground_truth import append_row, read_rows
from archlab.estimate.rank_stats import arch_qualities, noise_for_agreement, seed_noise
from archlab.estimate.training import (
    GROUND_TRUTH,
    TrainSpec,
    evaluate,
    load_spec_data,
    recalibrate_batchnorm,
    short_train,
)
from archlab.space import load_space

RESULTS = Path(__file__).resolve().parent / "results"
FIELDS = [
    "space", "arch", "acc_seed0", "acc_seed1", "committed0", "committed1", "disagree", "n_val",
]  # fmt: skip
BN_FIELDS = ["space", "arch", "seed", "recipe_acc", "draws_acc", "acc_64_batches", "bn_layers"]


@torch.inference_mode()
def _predictions(model: torch.nn.Module, data: ImageData, batch: int = 200) -> torch.Tensor:
    model.eval()
    return torch.cat(
        [
            model(to_input(data.val_images[i : i + batch])).argmax(1)
            for i in range(0, len(data.val_images), batch)
        ]
    )


def _trained(
    space_name: str, arch: str, seed: int, spec: TrainSpec, data: ImageData
) -> tuple[float, torch.nn.Module]:
    space = load_space(space_name)
    model = reduced_model(space, json.loads(arch), spec.resolution, data.num_classes, seed)
    result = short_train(model, data, dataclasses.replace(spec, seed=seed))
    return result.val_acc, model


def _bn_draws(
    model: torch.nn.Module, data: ImageData, draws: int, batch: int
) -> tuple[list[float], float]:
    """Accuracy after re-estimating BatchNorm on ``draws`` random sets of 4 training batches, and
    after one estimate on 64 random batches; the draws are seeded, the same for every model."""
    gen = torch.Generator().manual_seed(2024)
    n = len(data.train_images)
    accs = []
    for _ in range(draws):
        idx = torch.randperm(n, generator=gen)[: 4 * batch]
        recalibrate_batchnorm(model, data.train_images[idx], batch)
        accs.append(evaluate(model, data.val_images, data.val_labels))
    idx = torch.randperm(n, generator=gen)[: 64 * batch]
    recalibrate_batchnorm(model, data.train_images[idx], batch)
    return accs, evaluate(model, data.val_images, data.val_labels)


def _archs_in(path: Path) -> set[str]:
    return {r["arch"] for r in csv.DictReader(path.open())} if path.exists() else set()


def _paired_random_runs(space: str) -> dict[str, dict[int, dict[str, Any]]]:
    rows = read_rows(RESULTS / f"ground_truth_{space}.csv")
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    for r in rows:
        if r["kind"] == "random" and r["budget"] == GROUND_TRUTH.budget_label():
            runs.setdefault(str(r["arch"]), {})[int(r["seed"])] = r
    return {arch: seeds for arch, seeds in runs.items() if {0, 1} <= seeds.keys()}


def _report(space: str, out: Path) -> None:
    pairs = _paired_random_runs(space)
    seed0 = [float(s[0]["val_acc"]) for s in pairs.values()]
    seed1 = [float(s[1]["val_acc"]) for s in pairs.values()]
    diffs = [a - b for a, b in zip(seed0, seed1)]
    observed = statistics.stdev(diffs)
    split = seed_noise(np.array(seed0), np.array(seed1))
    between = split.spread_sd**2
    print(
        f"{space}: {split.n} ground-truth archs; seed 0 − seed 1 SD {observed:.3%}; per run: "
        f"noise SD {split.noise_sd:.3%}, spread of the archs SD {split.spread_sd:.3%}, "
        f"share of the archs (ICC) {split.icc:.2f}"
    )
    rows = [r for r in csv.DictReader(out.open()) if r["space"] == space] if out.exists() else []
    if not rows:
        return
    finite = []
    for r in rows:
        d, n = float(r["disagree"]), int(r["n_val"])
        acc_diff = float(r["acc_seed0"]) - float(r["acc_seed1"])
        sd = math.sqrt(max(d - acc_diff**2, 0.0) / n)
        finite.append(sd)
        same = r["acc_seed0"] == r["committed0"] and r["acc_seed1"] == r["committed1"]
        print(
            f"  {pairs[r['arch']][0]['name']:>7}: seeds disagree on {d:.2%} of {n} images → "
            f"finite-set SD of their difference {sd:.3%} (observed {acc_diff:+.3%}; committed "
            f"accuracies {'reproduced' if same else 'NOT reproduced'})"
        )
    finite_var = statistics.mean(s**2 for s in finite)
    print(
        f"  the finite validation set alone: SD {math.sqrt(finite_var):.3%} of the observed "
        f"{observed:.3%}, i.e. {finite_var / observed**2:.0%} of the variance of seed differences"
    )
    for factor in (2, 4):
        noise_k = (observed**2 - finite_var * (1 - 1 / factor)) / 2
        print(
            f"  with {factor}× the validation images (same training): ICC "
            f"{between / (between + noise_k):.2f} (model-based, not measured)"
        )
    _floor(finite_var, int(rows[0]["n_val"]), np.array(seed0), np.array(seed1))


def _floor(finite_var: float, n_val: int, seed0: np.ndarray, seed1: np.ndarray) -> None:
    """The noise a run keeps from its finite validation set however well it is trained, against
    the noise at which two seeds of these archs would agree at ρ 0.9 in the median (simulated)."""
    needed = noise_for_agreement(arch_qualities(seed0, seed1), 0.9)
    floors = ", ".join(
        f"{math.sqrt(finite_var / 2 * n_val / n):.3%} at {n:,}" for n in (n_val, 30_000, 50_000)
    )
    print(
        f"  noise SD per run from the finite set alone (same disagreement): {floors} validation "
        f"images; two seeds of these archs agree at a median ρ of 0.9 below {needed:.3%}"
    )


def _bn_report(space: str, path: Path) -> None:
    rows = [r for r in csv.DictReader(path.open()) if r["space"] == space] if path.exists() else []
    if not rows:
        return
    within = []
    for r in rows:
        draws = json.loads(r["draws_acc"])
        within.append(statistics.variance(draws))
        print(
            f"  BatchNorm, seed {r['seed']} of {r['arch'][:40]}…: "
            f"recipe {float(r['recipe_acc']):.4f}; "
            f"{len(draws)} re-estimates on 256 random images {min(draws):.4f}–{max(draws):.4f} "
            f"(SD {statistics.stdev(draws):.3%}); on 4,096 images {float(r['acc_64_batches']):.4f}"
        )
    print(
        f"  BatchNorm statistics from 256 images add SD {math.sqrt(statistics.mean(within)):.3%} "
        f"to a run ({len(rows)} runs, {rows[0]['bn_layers']} BatchNorm layers in the first)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", required=True)
    parser.add_argument("--archs", type=int, default=4, help="the N archs whose runs were quickest")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--bn-draws", type=int, default=0, help="also re-estimate BatchNorm K times per run"
    )
    parser.add_argument("--report", action="store_true", help="only print what the CSV holds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = RESULTS / "seed_noise.csv"
    if not args.report:
        pairs = _paired_random_runs(args.space)
        quickest = sorted(pairs, key=lambda a: sum(float(s["seconds"]) for s in pairs[a].values()))
        bn_out = RESULTS / "bn_noise.csv"
        done_path = bn_out if args.bn_draws else out
        done = _archs_in(done_path)
        data = load_spec_data(GROUND_TRUTH)
        for arch in quickest[: args.archs]:
            if arch in done:
                continue
            runs = [_trained(args.space, arch, seed, GROUND_TRUTH, data) for seed in (0, 1)]
            (acc0, m0), (acc1, m1) = runs
            p0, p1 = _predictions(m0, data), _predictions(m1, data)
            row = {
                "space": args.space,
                "arch": arch,
                "acc_seed0": round(acc0, 6),
                "acc_seed1": round(acc1, 6),
                "committed0": pairs[arch][0]["val_acc"],
                "committed1": pairs[arch][1]["val_acc"],
                "disagree": round(float((p0 != p1).float().mean()), 6),
                "n_val": len(p0),
            }
            if arch not in _archs_in(out):
                append_row(out, row, FIELDS)
            print(f"{arch[:60]}…: {row}", flush=True)
            for seed, (acc, model) in enumerate(runs):
                if not args.bn_draws:
                    break
                draws, acc_64 = _bn_draws(model, data, args.bn_draws, GROUND_TRUTH.batch)
                bn_layers = sum(
                    isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()
                )
                bn_row = {
                    "space": args.space,
                    "arch": arch,
                    "seed": seed,
                    "recipe_acc": round(acc, 6),
                    "draws_acc": json.dumps([round(a, 6) for a in draws]),
                    "acc_64_batches": round(acc_64, 6),
                    "bn_layers": bn_layers,
                }
                append_row(bn_out, bn_row, BN_FIELDS)
                print(f"  BatchNorm draws, seed {seed}: {bn_row['draws_acc']}", flush=True)
    _report(args.space, out)
    _bn_report(args.space, RESULTS / "bn_noise.csv")


if __name__ == "__main__":
    main()

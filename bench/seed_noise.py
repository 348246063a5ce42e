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

Run: ``.venv/bin/python bench/seed_noise.py --space plgvit --archs 4`` (two ground-truth runs per
arch, 4–9 min each on one core). Rows go to ``bench/results/seed_noise.csv`` as each arch finishes
(a stopped run resumes).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import statistics
from pathlib import Path

import torch

from archlab.estimate.data import ImageData, load_data, to_input
from archlab.estimate.estimates import reduced_model
from archlab.estimate.ground_truth import read_rows
from archlab.estimate.training import GROUND_TRUTH, TrainSpec, short_train
from archlab.space import load_space

RESULTS = Path(__file__).resolve().parent / "results"
FIELDS = [
    "space", "arch", "acc_seed0", "acc_seed1", "committed0", "committed1", "disagree", "n_val",
]  # fmt: skip


@torch.inference_mode()
def _predictions(model: torch.nn.Module, data: ImageData, batch: int = 200) -> torch.Tensor:
    model.eval()
    return torch.cat(
        [
            model(to_input(data.val_images[i : i + batch])).argmax(1)
            for i in range(0, len(data.val_images), batch)
        ]
    )


def _trained_predictions(
    space_name: str, arch: str, seed: int, spec: TrainSpec, data: ImageData
) -> tuple[float, torch.Tensor]:
    space = load_space(space_name)
    model = reduced_model(space, json.loads(arch), spec.resolution, data.num_classes, seed)
    result = short_train(model, data, dataclasses.replace(spec, seed=seed))
    return result.val_acc, _predictions(model, data)


def _paired_random_runs(space: str) -> dict[str, dict[int, dict[str, object]]]:
    rows = read_rows(RESULTS / f"ground_truth_{space}.csv")
    runs: dict[str, dict[int, dict[str, object]]] = {}
    for r in rows:
        if r["kind"] == "random" and r["budget"] == GROUND_TRUTH.budget_label():
            runs.setdefault(str(r["arch"]), {})[int(r["seed"])] = r
    return {arch: seeds for arch, seeds in runs.items() if {0, 1} <= seeds.keys()}


def _report(space: str, out: Path) -> None:
    pairs = _paired_random_runs(space)
    seed0 = [float(s[0]["val_acc"]) for s in pairs.values()]
    seed1 = [float(s[1]["val_acc"]) for s in pairs.values()]
    diffs = [a - b for a, b in zip(seed0, seed1)]
    means = [(a + b) / 2 for a, b in zip(seed0, seed1)]
    observed = statistics.stdev(diffs)
    # one-way variance components: a run's accuracy = the arch's own + noise of that run
    noise = observed**2 / 2
    between = statistics.variance(means) - noise / 2
    spread = math.sqrt(max(between, 0))
    print(
        f"{space}: {len(diffs)} ground-truth archs; seed 0 − seed 1 SD {observed:.3%}; per run: "
        f"noise SD {math.sqrt(noise):.3%}, spread of the archs SD {spread:.3%}, "
        f"share of the archs (ICC) {between / (between + noise):.2f}"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", required=True)
    parser.add_argument("--archs", type=int, default=4, help="the N archs whose runs were quickest")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report", action="store_true", help="only print what the CSV holds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = RESULTS / "seed_noise.csv"
    if not args.report:
        pairs = _paired_random_runs(args.space)
        quickest = sorted(pairs, key=lambda a: sum(float(s["seconds"]) for s in pairs[a].values()))
        done = {r["arch"] for r in csv.DictReader(out.open())} if out.exists() else set()
        data = load_data(GROUND_TRUTH.data, GROUND_TRUTH.resolution)
        for arch in quickest[: args.archs]:
            if arch in done:
                continue
            (acc0, p0), (acc1, p1) = (
                _trained_predictions(args.space, arch, seed, GROUND_TRUTH, data) for seed in (0, 1)
            )
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
            new = not out.exists()
            with out.open("a", newline="") as f:
                writer = csv.DictWriter(f, FIELDS)
                if new:
                    writer.writeheader()
                writer.writerow(row)
            print(f"{arch[:60]}…: {row}", flush=True)
    _report(args.space, out)


if __name__ == "__main__":
    main()

"""Does the search earn its keep? A trained front against a published preset, at its latency.

After ``archlab search`` and ``archlab train --study NAME``, this reads the study's trained trials
and compares them with one preset of the study's family (default ``lw_plgvit_a``):

* the preset's latency is measured with the study's own settings (threads, backend, time budget),
  through the dashboard's reference measurement, so trials and preset are timed the same way;
* the preset's accuracy is the reference training with the same recipe and seeds: the study's
  ``trained_references`` (``archlab train --references``) if present, else the preset's rows in
  ``bench/results/ground_truth_<space>.csv`` (the recipe is deterministic for a seed on one thread,
  so both are the same figures).

It prints every trained trial with its latency, estimate and trained accuracy (mean ± spread over
seeds), marks those at or below the preset's latency, and says whether one of them is at least as
accurate as the preset. Then it times the preset and the trained trials again side by side,
interleaved in ``--slices`` rounds in fresh processes (as a front is re-measured), and prints each
trial's latency as a ratio to the preset's: on a noisy machine that ratio, not the two separate
medians, says which is faster.

With ``--write`` it also keeps one row per trained trial in ``bench/results/front_checks.csv``
(the study's rows replaced): space, study, the search's estimate, target, seed and trial count, the
preset and its accuracy, and per trial its arch, latency, side-by-side ratio, estimate and trained
accuracies. Fronts of different estimates searched with the same settings are compared from there
(``bench/evidence.py``).

Run: ``.venv/bin/python bench/front_vs_preset.py --study NAME [--storage URL] [--preset P]
[--slices 8] [--write]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from archlab.estimate.ground_truth import read_rows
from archlab.estimate.training import GROUND_TRUTH
from archlab.measurement.interleave import measure_many_in_processes
from archlab.search.references import _entries, measure_references
from archlab.study.record import load_record
from archlab.study.storage import load_study, study_dir
from archlab.study.trials import TRAINED_ATTR, TRAINED_REFERENCES_ATTR, trained_outcomes

RESULTS = Path(__file__).resolve().parent / "results"
FRONT_CHECKS = RESULTS / "front_checks.csv"
FRONT_COLUMNS = (
    "space", "study", "estimate", "target_ms", "search_seed", "search_trials", "preset",
    "preset_accuracy", "preset_ms", "trial", "arch", "latency_ms", "ratio_to_preset",
    "estimate_value", "accuracy", "accuracies", "seeds",
)  # fmt: skip
console = Console()


def _preset_accuracy(study: Any, space: str, preset: str) -> tuple[list[float], str]:
    stored = trained_outcomes(study.user_attrs, TRAINED_REFERENCES_ATTR).get(preset)
    if stored and "accuracies" in stored:
        return list(stored["accuracies"]), "archlab train --references"
    path = RESULTS / f"ground_truth_{space}.csv"
    budget = GROUND_TRUTH.budget_label()
    rows = [r for r in read_rows(path) if r["name"] == preset and r["budget"] == budget]
    if not rows:
        raise SystemExit(f"{preset} is trained neither in the study nor in {path}")
    return [float(r["val_acc"]) for r in rows], f"{path.name} (seeds {[r['seed'] for r in rows]})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", required=True)
    parser.add_argument("--storage", help="default: studies/archlab.db")
    parser.add_argument("--preset", default="lw_plgvit_a")
    parser.add_argument("--slices", type=int, default=8, help="interleaved rounds (0: skip)")
    parser.add_argument("--write", action="store_true", help=f"rows into {FRONT_CHECKS.name}")
    args = parser.parse_args()
    study = load_study(args.study, args.storage)
    record = load_record(study)
    refs = measure_references(record, study_dir(study.study_name), names=[args.preset])
    if args.preset not in refs.measured:
        raise SystemExit(f"{args.preset}: {refs.skipped.get(args.preset, 'not measured')}")
    preset_ms = float(refs.measured[args.preset]["latency_ms"])
    preset_accs, source = _preset_accuracy(study, record.space_name, args.preset)
    preset_acc = statistics.fmean(preset_accs)
    estimate = record.settings.objective_names()[0]
    console.print(
        f"{args.preset}: {preset_ms:.1f} ms (measured now, study settings), trained accuracy "
        f"{preset_acc:.4f} {[round(a, 4) for a in preset_accs]} from {source}"
    )
    trained = trained_outcomes(study.user_attrs, TRAINED_ATTR)
    trials = {t.number: t for t in study.trials}
    table = Table(title=f"{study.study_name}: trained trials vs {args.preset}")
    for column in ("trial", "latency ms", f"≤ {preset_ms:.1f} ms", estimate, "accuracy", "± std"):
        table.add_column(column, justify="right")
    winners = []
    for key, outcome in sorted(trained.items(), key=lambda kv: int(kv[0])):
        trial = trials[int(key)]
        ms = float(trial.user_attrs["latency_ms"])
        if "error" in outcome:
            table.add_row(key, f"{ms:.1f}", "", "", outcome["error"][:40], "")
            continue
        within = ms <= preset_ms
        if within and outcome["accuracy"] >= preset_acc:
            winners.append(key)
        table.add_row(
            key, f"{ms:.1f}", "yes" if within else "no",
            f"{trial.user_attrs.get(estimate, float('nan')):.4g}",
            f"{outcome['accuracy']:.4f}", f"{outcome['accuracy_std']:.4f}",
        )  # fmt: skip
    console.print(table)
    if winners:
        console.print(
            f"yes: trial(s) {', '.join(winners)} at or below {args.preset}'s latency are at least "
            f"as accurate ({preset_acc:.4f})"
        )
    else:
        console.print(f"no trained trial at or below {preset_ms:.1f} ms reaches {preset_acc:.4f}")
    ratios: dict[int, float] = {}
    if args.slices:
        ratios = _side_by_side(record, args.preset, [trials[int(k)] for k in trained], args.slices)
    if args.write:
        rows = [
            _front_row(record, study, trials[int(key)], outcome, ratios, preset=args.preset,
                       preset_ms=preset_ms, preset_acc=preset_acc)
            for key, outcome in sorted(trained.items(), key=lambda kv: int(kv[0]))
            if "error" not in outcome
        ]  # fmt: skip
        _write_rows(study.study_name, rows)
        console.print(f"{len(rows)} rows of {study.study_name} in {FRONT_CHECKS}")


def _front_row(
    record: Any, study: Any, trial: Any, outcome: dict[str, Any], ratios: dict[int, float],
    *, preset: str, preset_ms: float, preset_acc: float,
) -> dict[str, Any]:  # fmt: skip
    estimate = record.settings.objective_names()[0]
    ratio = ratios.get(trial.number)
    return {
        "space": record.space_name,
        "study": study.study_name,
        "estimate": estimate,
        "target_ms": round(record.settings.target_latency_s * 1000, 3),
        "search_seed": record.settings.seed,
        "search_trials": len(study.trials),
        "preset": preset,
        "preset_accuracy": round(preset_acc, 6),
        "preset_ms": round(preset_ms, 3),
        "trial": trial.number,
        "arch": json.dumps(trial.params, sort_keys=True, separators=(",", ":")),
        "latency_ms": round(float(trial.user_attrs["latency_ms"]), 3),
        "ratio_to_preset": "" if ratio is None else round(ratio, 4),
        "estimate_value": trial.user_attrs.get(estimate, ""),
        "accuracy": round(float(outcome["accuracy"]), 6),
        "accuracies": ";".join(f"{a:.4f}" for a in outcome["accuracies"]),
        "seeds": len(outcome["accuracies"]),
    }


def _write_rows(study_name: str, rows: list[dict[str, Any]]) -> None:
    """Replace the study's rows in FRONT_CHECKS, keeping every other study's."""
    kept: list[dict[str, Any]] = []
    if FRONT_CHECKS.exists():
        with FRONT_CHECKS.open(newline="") as f:
            kept = [r for r in csv.DictReader(f) if r["study"] != study_name]
    with FRONT_CHECKS.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FRONT_COLUMNS)
        writer.writeheader()
        writer.writerows(kept + rows)


def _side_by_side(record: Any, preset: str, trials: list[Any], slices: int) -> dict[int, float]:
    """Time the preset and the trials interleaved in one run; print trial / preset ratios and
    return them by trial number."""
    space = record.space()
    config = _entries(record)[preset][1]
    assert isinstance(config, dict), config
    settings = record.settings
    timed = measure_many_in_processes(
        [config] + [space.to_config(t.params) for t in trials],
        space.resolution,
        processes=1,
        slices=slices,
        seed=0 if settings.seed is None else settings.seed,
        threads=settings.threads,
        backend=settings.backend,
    )
    ref = timed[0]
    console.print(
        f"side by side, {slices} interleaved rounds: {preset} {ref.median_ms:.1f} ms "
        f"(IQR {ref.iqr_ms:.1f})"
    )
    ratios = {}
    for trial, lat in zip(trials, timed[1:]):
        ratios[trial.number] = lat.median_ms / ref.median_ms
        console.print(
            f"  trial {trial.number}: {lat.median_ms:.1f} ms (IQR {lat.iqr_ms:.1f}), "
            f"{ratios[trial.number]:.3f} x {preset}"
        )
    return ratios


if __name__ == "__main__":
    main()

"""Training runs that other studies of the same storage already hold, so ``archlab train`` can
take them instead of repeating them.

The ground-truth recipe is deterministic for a seed on one CPU thread: the same arch of the same
space, trained with the same recipe, data, seed and torch version, reaches the same accuracy again.
Studies of one space share archs: the space's default arch is every study's first trial, two
searches with one seed share their first trials, and ``--references`` trains the same presets for
each study. A run is taken from another study only when all of that matches (the space's stored
YAML and resolution, the recipe's label, the data set, the seed, the device and torch), and the
outcome names the study it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archlab.estimate.ground_truth import arch_json
from archlab.estimate.training import TrainSpec
from archlab.study.record import RECORD_ATTR
from archlab.study.storage import list_studies, load_study
from archlab.study.trials import TRAINED_ATTR, TRAINED_REFERENCES_ATTR, trained_outcomes

__all__ = ["RunIndex", "outcome_rows", "runs_elsewhere", "same_recipe"]

#: (attribute, arch JSON or preset name) → seed → that seed's row (see :func:`outcome_rows`)
RunIndex = dict[tuple[str, str], dict[int, dict[str, Any]]]


def outcome_rows(outcome: Mapping[str, Any], source: str | None = None) -> list[dict[str, Any]]:
    """A stored outcome as the per-seed rows it was made from (its total seconds go to the first
    row). Each row keeps where it was trained: ``source`` if given (a run taken from elsewhere,
    which cost nothing here), else what the outcome says it reused."""
    seeds = list(outcome["seeds"])
    tests = outcome.get("test_accuracies") or [None] * len(seeds)
    reused = outcome.get("reused", {})
    rows = []
    for i, (acc, seed, test) in enumerate(zip(outcome["accuracies"], seeds, tests)):
        row: dict[str, Any] = {
            "val_acc": acc,
            "seed": seed,
            "params": outcome["params_reduced"],
            "seconds": 0.0 if source or i else float(outcome["seconds"]),
            "torch": outcome["torch"],
        }
        if test is not None:
            row["test_acc"] = test
        if (where := source or reused.get(str(seed))) is not None:
            row["source"] = where
        rows.append(row)
    return rows


def same_recipe(outcome: Mapping[str, Any], spec: TrainSpec) -> bool:
    """A stored outcome that did not fail, trained with ``spec``'s recipe and data."""
    return (
        "error" not in outcome
        and outcome.get("budget") == spec.budget_label()
        and outcome.get("data") == spec.data
    )


def _matches(outcome: Mapping[str, Any], spec: TrainSpec, device: str, torch_version: str) -> bool:
    return (
        same_recipe(outcome, spec)
        and outcome.get("device") == device
        and outcome.get("torch") == torch_version
    )


def runs_elsewhere(
    url: str | None,
    study_name: str,
    record: Mapping[str, Any],
    spec: TrainSpec,
    device: str,
    torch_version: str,
) -> RunIndex:
    """Every run of the other studies in storage ``url`` with the same space (stored YAML and
    resolution), recipe, data, device and torch as ``record``'s study is trained with now."""
    index: RunIndex = {}
    for summary in list_studies(url):
        attrs = summary.user_attrs
        other = attrs.get(RECORD_ATTR) or {}
        if summary.study_name == study_name or not other.get("space_yaml"):
            continue
        if (other.get("space_yaml"), other.get("resolution")) != (
            record.get("space_yaml"),
            record.get("resolution"),
        ):
            continue
        found: list[tuple[str, str, str, Mapping[str, Any]]] = [
            (TRAINED_REFERENCES_ATTR, name, f"{summary.study_name}, {name}", outcome)
            for name, outcome in trained_outcomes(attrs, TRAINED_REFERENCES_ATTR).items()
        ]
        trained = trained_outcomes(attrs, TRAINED_ATTR)
        if trained:
            trials = load_study(summary.study_name, url).get_trials(deepcopy=False)
            archs = {str(t.number): arch_json(t.params) for t in trials}
            found += [
                (TRAINED_ATTR, archs[key], f"{summary.study_name}, trial {key}", outcome)
                for key, outcome in trained.items()
                if key in archs
            ]
        for attr, what, source, outcome in found:
            if _matches(outcome, spec, device, torch_version):
                by_seed = index.setdefault((attr, what), {})
                for row in outcome_rows(outcome, source):
                    by_seed.setdefault(int(row["seed"]), row)
    return index

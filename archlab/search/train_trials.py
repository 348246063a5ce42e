"""Training chosen trials of a study for real, with the recipe the ground truth uses.

``archlab train`` takes a study's feasible front (or the trials it is given), trains each arch's
reduced copy with :data:`archlab.estimate.training.GROUND_TRUTH` for every seed, and stores the
mean validation accuracy and its spread in the study's ``trained`` user attribute (finished trials
cannot change), one trial at a time: an interrupted run keeps what finished and resumes with the
rest. A trial whose training crashes or runs out of memory gets its reason there and the others go
on. Asked for more seeds than an arch was trained with, only the new seeds are trained and joined
to the stored ones (if one fails, the stored result stays, with ``failed_seeds`` and the reason);
trained with another recipe or data set, it is trained again. With ``references`` the space's
reference presets are trained the same way (``trained_references``), so a trained front can be
read against the published designs. With
``test`` each trained model is also scored on the data set's test split (``test_accuracy``): a
final report of chosen architectures, which nothing in archlab uses to choose.
"""

from __future__ import annotations

import dataclasses
import statistics
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
import torch

from archlab.estimate.ground_truth import Run, arch_json, check_test_split, train_run
from archlab.estimate.training import GROUND_TRUTH, TrainSpec, load_spec_data, resolve_device
from archlab.search.trained_elsewhere import (
    RunIndex,
    outcome_rows,
    runs_elsewhere,
    same_recipe,
)
from archlab.space import SearchSpace
from archlab.study.record import RECORD_ATTR, space_of
from archlab.study.trials import (
    TRAINED_ATTR,
    TRAINED_REFERENCES_ATTR,
    store_trained,
    trained_outcomes,
)

__all__ = [
    "TRAINED_ATTR",
    "TRAINED_REFERENCES_ATTR",
    "TrainReport",
    "chosen_trials",
    "train_trials",
]

#: progress(done, total, what) before each training run
OnProgress = Callable[[int, int, str], None]


@dataclass
class TrainReport:
    """What one ``train_trials`` call did; ``outcomes`` also holds earlier results it kept."""

    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    references: dict[str, dict[str, Any]] = field(default_factory=dict)
    trained: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)  # "<key> seed <n>: <study it came from>"
    interrupted: bool = False


def chosen_trials(study: optuna.Study, numbers: Sequence[int] | None) -> list[int]:
    """``numbers`` (checked to be complete trials), or else the feasible Pareto front.

    Raises:
        KeyError: a number that is not a complete trial of the study.
    """
    states = [optuna.trial.TrialState.COMPLETE]
    complete = {t.number for t in study.get_trials(deepcopy=False, states=states)}
    if numbers is None:
        return sorted(t.number for t in study.best_trials)
    missing = sorted(set(numbers) - complete)
    if missing:
        raise KeyError(
            f"study {study.study_name!r} has no complete trial(s) {missing}; "
            f"complete trials: {sorted(complete)}"
        )
    return list(numbers)


def _outcome(rows: list[dict[str, Any]], spec: TrainSpec, device: torch.device) -> dict[str, Any]:
    rows = sorted(rows, key=lambda r: int(r["seed"]))
    accs = [r["val_acc"] for r in rows]
    tests = [r["test_acc"] for r in rows if "test_acc" in r]
    tested = (
        {
            "test_accuracy": statistics.fmean(tests),
            "test_accuracy_std": statistics.stdev(tests) if len(tests) > 1 else 0.0,
            "test_accuracies": tests,
        }
        if tests and len(tests) == len(rows)  # a test figure of some seeds only is not stored
        else {}
    )
    reused = {str(r["seed"]): r["source"] for r in rows if "source" in r}
    return {
        "accuracy": statistics.fmean(accs),
        "accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "accuracies": accs,
        "seeds": [r["seed"] for r in rows],
        "budget": spec.budget_label(),
        "data": spec.data,
        "params_reduced": rows[0]["params"],
        "seconds": round(sum(float(r["seconds"]) for r in rows), 2),
        "device": device.type,
        "torch": rows[0]["torch"],
        **tested,
        **({"reused": reused} if reused else {}),
    }


def _train_one(
    space: SearchSpace,
    runs: list[Run],
    spec: TrainSpec,
    data: Any,
    device: torch.device,
    test: bool,
    kept: list[dict[str, Any]],
) -> dict[str, Any]:
    """Each run of one arch, joined to the ``kept`` rows of seeds trained before; a crash (out of
    memory included) becomes its stored reason."""
    try:
        rows = kept + [train_run(space, run, spec, data, device, test) for run in runs]
    except KeyboardInterrupt:
        raise
    except Exception as err:  # the candidate crashed or ran out of memory: keep the reason
        return {
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(limit=6)[-3000:],
            "budget": spec.budget_label(),
        }
    return _outcome(rows, spec, device)


def _reusable(outcome: dict[str, Any], spec: TrainSpec, test: bool) -> bool:
    """Trained with this recipe and data, without failing, and tested if a test is asked now."""
    return same_recipe(outcome, spec) and (not test or "test_accuracy" in outcome)


def _seeds_to_train(
    outcome: dict[str, Any] | None, spec: TrainSpec, seeds: Sequence[int], test: bool
) -> list[int]:
    """The seeds an arch still needs: those a reusable stored result lacks, else all."""
    if outcome is None or not _reusable(outcome, spec, test):
        return list(seeds)
    return [s for s in seeds if s not in outcome.get("seeds", ())]


def _todo(
    study: optuna.Study,
    numbers: list[int],
    references: bool,
    space: SearchSpace,
    spec: TrainSpec,
    seeds: Sequence[int],
    test: bool,
) -> list[tuple[str, str, str, list[int]]]:
    """(attribute, key, arch JSON or preset, seeds to train) of every arch that lacks a seed."""
    attrs = study.user_attrs
    done = trained_outcomes(attrs, TRAINED_ATTR)
    done_refs = trained_outcomes(attrs, TRAINED_REFERENCES_ATTR)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    todo = [
        (TRAINED_ATTR, str(n), arch_json(trials[n].params), missing)
        for n in numbers
        if (missing := _seeds_to_train(done.get(str(n)), spec, seeds, test))
    ]
    if references:
        todo += [
            (TRAINED_REFERENCES_ATTR, name, name, missing)
            for name in space.references
            if (missing := _seeds_to_train(done_refs.get(name), spec, seeds, test))
        ]
    return todo


def train_trials(
    study: optuna.Study,
    numbers: Sequence[int] | None = None,
    *,
    seeds: Sequence[int] = (0, 1),
    spec: TrainSpec = GROUND_TRUTH,
    device: str = "cpu",
    threads: int = 1,
    references: bool = False,
    test: bool = False,
    reuse: bool = False,
    storage: str | None = None,
    on_progress: OnProgress | None = None,
) -> TrainReport:
    """Train the chosen trials (default: the feasible front) and store their accuracies.

    With ``reuse``, a seed that another study in ``storage`` (the study's own storage URL; None:
    the default) trained for the same arch, recipe and data is taken from it instead of trained
    again (:mod:`archlab.search.trained_elsewhere`).

    Raises:
        KeyError: a trial number that is not a complete trial.
        StorageError: the study was not made by ``archlab search``.
        ValueError: an unknown device, no seeds, or ``test`` on data without a test split.
    """
    if not seeds:
        raise ValueError("need at least one seed")
    space = space_of(study)
    chosen = chosen_trials(study, numbers)
    where = resolve_device(device)
    torch.set_num_threads(threads)
    data = load_spec_data(spec)
    check_test_split(data, test)
    report = TrainReport()
    todo = _todo(study, chosen, references, space, spec, seeds, test)
    elsewhere: RunIndex = {}
    if reuse and todo:
        record = study.user_attrs.get(RECORD_ATTR, {})
        elsewhere = runs_elsewhere(
            storage, study.study_name, record, spec, where.type, torch.__version__
        )
    try:
        for i, (attr, key, what, missing) in enumerate(todo):
            if on_progress is not None:
                on_progress(i, len(todo), f"trial {key}" if attr == TRAINED_ATTR else key)
            kind, arch, name = (
                ("random", what, f"trial{key}") if attr == TRAINED_ATTR else ("preset", "{}", what)
            )
            stored = trained_outcomes(study.user_attrs, attr).get(key)
            if stored is not None and not _reusable(stored, spec, test):
                stored = None
            kept = outcome_rows(stored) if stored else []
            tested = test or any("test_acc" in row for row in kept)  # tested seeds stay alike
            there = elsewhere.get((attr, what), {})
            taken = [
                there[s] for s in missing if s in there and (not tested or "test_acc" in there[s])
            ]
            taken_seeds = {row["seed"] for row in taken}
            runs = [Run(space.name, kind, name, arch, s) for s in missing if s not in taken_seeds]
            outcome = _train_one(space, runs, spec, data, where, tested, kept + taken)
            if "error" in outcome and stored:  # a new seed failed: keep the seeds trained before
                outcome = {**stored, "failed_seeds": missing, "seed_error": outcome["error"]}
            (
                report.failed if "error" in outcome or "seed_error" in outcome else report.trained
            ).append(key)
            report.reused += [f"{key} seed {row['seed']}: {row['source']}" for row in taken]
            store_trained(study, attr, key, outcome)  # after each arch: nothing finished is lost
    except KeyboardInterrupt:
        report.interrupted = True
    attrs = study.user_attrs
    report.outcomes = trained_outcomes(attrs, TRAINED_ATTR)
    report.references = trained_outcomes(attrs, TRAINED_REFERENCES_ATTR)
    return report


def with_data(spec: TrainSpec, data: str | None) -> TrainSpec:
    """The recipe on another data set (a name or folder), or unchanged."""
    return dataclasses.replace(spec, data=data) if data else spec

"""A study's trials as data: the metrics each stores, whether it is feasible, tables of them.

This is the one place that names the stored metrics and decides feasibility. A trial is feasible
when every constraint slack it carries is ≤ 0. archlab writes each slack twice: as Optuna 5 does
(system attribute ``constraints:<name>``) and as the list Optuna stored before (``constraints``),
which tools built for older Optuna, such as optuna-dashboard 0.21, read to decide what is best.
Optuna's own reader (``FrozenTrial.constraints``) merges both, so both agree.

A predicted-latency search is judged by what was measured once its front is re-measured
(:mod:`archlab.study.measured_front`): its tables carry the measured latency and feasibility of
re-measured trials, the prediction beside it, and its front is recomputed on those figures.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

import optuna
import pandas as pd

from archlab.study.measured_front import (
    REMEASURED_ATTR,
    Correction,
    Judged,
    correction_of,
    is_predicted,
    judge_trials,
    judged_front,
    leave_one_out_errors,
    target_ms,
)
from archlab.study.storage import STARTED_STATES

__all__ = [
    "LATENCY_MS",
    "LEGACY_CONSTRAINTS_KEY",
    "METRICS",
    "PREDICTED_LATENCY_MS",
    "TRAINED_ACCURACY",
    "TRAINED_ACCURACY_STD",
    "TEST_ACCURACY",
    "TEST_ACCURACY_STD",
    "TRAINED_ATTR",
    "TRAINED_REFERENCES_ATTR",
    "is_feasible",
    "store_trained",
    "trained_outcomes",
    "trained_recipes",
    "with_trained_accuracy",
    "over_target_frame",
    "pareto_frame",
    "prediction_check",
    "set_constraints",
    "trials_frame",
]

LATENCY_MS = "latency_ms"  # measured median latency
PREDICTED_LATENCY_MS = "latency_ms_predicted"  # latency looked up in a device profile
LEGACY_CONSTRAINTS_KEY = "constraints"  # the list Optuna < 3.2 stored, read by older tools
# What ``archlab train`` stores with a study: per trial number (TRAINED_ATTR) or preset name
# (TRAINED_REFERENCES_ATTR) the accuracies it trained to, read with trained_outcomes.
TRAINED_ATTR = "trained"
TRAINED_REFERENCES_ATTR = "trained_references"
#: the columns :func:`with_trained_accuracy` adds to a table of trials
TRAINED_ACCURACY, TRAINED_ACCURACY_STD = "trained_accuracy", "trained_accuracy_std"
#: ... and, for trials trained with ``archlab train --test``, their accuracy on the test split
TEST_ACCURACY, TEST_ACCURACY_STD = "test_accuracy", "test_accuracy_std"

#: The per-trial metrics a search stores as user attributes (and the tables show), by name.
METRICS = (
    "params",
    "macs",
    "latency_ms",
    "latency_iqr_ms",
    "latency_ci_rel",
    "naswot",
    "latency_ms_predicted",
    "peak_memory_bytes",
    "synflow",
    "grad_norm",
    "zico",
    "swap",
    "meco",
    "knob_ridge",
    "val_acc",
    "train_1_8",
    "train_1_4",
    "tse_1_64",
    "hypervolume",
)


def set_constraints(trial: optuna.Trial, slacks: dict[str, float]) -> None:
    """Store a trial's constraint slacks (≤ 0: satisfied) in Optuna 5's form and the legacy list."""
    for name, slack in slacks.items():
        trial.set_constraint(name, slack)
    trial.storage.set_trial_system_attr(
        trial._trial_id, LEGACY_CONSTRAINTS_KEY, [float(v) for v in slacks.values()]
    )


def is_feasible(trial: optuna.trial.FrozenTrial) -> bool | None:
    """True if every constraint is satisfied; None for a trial that carries no constraint."""
    slacks = trial.constraints
    return all(v <= 0 for v in slacks.values()) if slacks else None


def _trial_row(trial: optuna.trial.FrozenTrial, metric_names: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "number": trial.number,
        "state": trial.state.name,
        "feasible": is_feasible(trial),
    }
    for name, value in zip(metric_names, trial.values or [None] * len(metric_names)):
        row[f"objective:{name}"] = value
    for key in METRICS:
        row[key] = trial.user_attrs.get(key)
    row["reason"] = trial.user_attrs.get("fail_reason") or trial.user_attrs.get("prune_reason")
    row["duration_s"] = trial.duration.total_seconds() if trial.duration else None
    row.update({f"knob:{k}": v for k, v in trial.params.items()})
    return row


def _metric_names(study: optuna.Study) -> list[str]:
    return study.metric_names or [f"value{i}" for i in range(len(study.directions))]


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per started trial: state, feasibility, objectives, metrics, failure reason, knobs.

    In a predicted-latency study, re-measured trials carry their measured figures and
    feasibility, the others their corrected prediction (``latency_ms_corrected``).
    """
    names = _metric_names(study)
    trials = study.get_trials(deepcopy=False, states=STARTED_STATES)
    rows = [_trial_row(t, names) for t in trials]
    if is_predicted(study):
        judged = {j.trial.number: j for j in judge_trials(study)}
        figures = study.user_attrs.get(REMEASURED_ATTR) or {}
        scale = correction_of(study).scale
        for row in rows:
            if row["number"] in judged:  # complete
                _judge_row(row, judged[row["number"]], figures, scale, names)
    return pd.DataFrame(rows)


def _judge_row(
    row: dict[str, Any],
    judged: Judged,
    figures: dict[str, Any],
    scale: float,
    names: list[str],
) -> None:
    """Give a predicted study's row the figures it is judged on: the re-measured ones if any."""
    row.update(figures.get(str(row["number"]), {}))
    row["latency_ms_corrected"] = judged.trial.user_attrs["latency_ms_predicted"] * scale
    row["latency_source"] = "measured" if judged.measured else "predicted"
    row["feasible"] = judged.feasible
    for name, value in zip(names, judged.values):
        row[f"objective:{name}"] = value


def pareto_frame(study: optuna.Study) -> pd.DataFrame:
    """The feasible Pareto front, fastest first.

    Optuna's ``best_trials`` (which honours the constraints), or for a predicted-latency study the
    front judged on measured latencies where there are some
    (:func:`archlab.study.measured_front.judged_front`).
    """
    if not is_predicted(study):
        frame = pd.DataFrame([_trial_row(t, _metric_names(study)) for t in study.best_trials])
        if not frame.empty and LATENCY_MS in frame and frame[LATENCY_MS].notna().any():
            frame = frame.sort_values(LATENCY_MS).reset_index(drop=True)
        return frame
    front = {j.trial.number for j in judged_front(study)}
    if not front:
        return pd.DataFrame()
    frame = trials_frame(study)
    frame = frame[frame["number"].isin(front)]
    judged = frame[LATENCY_MS].fillna(frame["latency_ms_corrected"])
    return frame.loc[judged.sort_values().index].reset_index(drop=True)


def over_target_frame(study: optuna.Study) -> pd.DataFrame:
    """Re-measured trials of a predicted search that measured over the latency target (they were
    on the front by their predictions), fastest first; empty for other studies."""
    target = target_ms(study)
    if not is_predicted(study) or target is None:
        return pd.DataFrame()
    frame = trials_frame(study)
    if frame.empty or "latency_source" not in frame:
        return pd.DataFrame()
    over = frame[(frame["latency_source"] == "measured") & (frame[LATENCY_MS] > target)]
    return over.sort_values(LATENCY_MS).reset_index(drop=True)


def prediction_check(study: optuna.Study) -> dict[str, float] | None:
    """How far a predicted-latency search's predictions were from its front's re-measurement.

    Median absolute and signed errors (fractions) of the predictions against the whole-model
    figures; with anchors (:mod:`archlab.predict.time_base`), also the machine's speed relative to
    the profile (median over the front) and the errors on the profile's time base. Then the
    study's correction (``correction_scale``, ``correction_low``/``_high``) and the errors of
    corrected predictions, each model corrected by the scale of the others (``corrected_``).
    None before any re-measurement.
    """
    rows = list((study.user_attrs.get(REMEASURED_ATTR) or {}).values())
    if not rows:
        return None

    def errors(key: str) -> list[float]:
        return [r["latency_ms_predicted"] / r[key] - 1 for r in rows if r.get(key)]

    out: dict[str, float] = {"models": len(rows)}
    for label, key in (("", "latency_ms"), ("profile_time_", "latency_ms_profile_time")):
        out.update(_medians(label, errors(key)))
    speeds = [r["speed_vs_profile"] for r in rows if "speed_vs_profile" in r]
    if speeds:
        out["speed_vs_profile"] = statistics.median(speeds)
    correction: Correction = correction_of(study)
    if correction.models:
        out |= {
            "correction_scale": correction.scale,
            "correction_low": correction.low,
            "correction_high": correction.high,
        }
    measured = [r["latency_ms"] for r in rows]
    predicted = [r["latency_ms_predicted"] for r in rows]
    out.update(_medians("corrected_", leave_one_out_errors(measured, predicted)))
    return out


def _medians(label: str, errors: list[float]) -> dict[str, float]:
    if not errors:
        return {}
    return {
        f"{label}median_abs_error": statistics.median(abs(e) for e in errors),
        f"{label}median_error": statistics.median(errors),
    }


def store_trained(study: optuna.Study, attr: str, key: str, outcome: dict[str, Any]) -> None:
    """Store one arch's training outcome as its own study attribute, ``attr:key``. Processes that
    train the same study at once each write only their own keys; a shared dict would be read,
    changed and written back by each, and the later write would drop the earlier one's result."""
    study.set_user_attr(f"{attr}:{key}", outcome)


def trained_outcomes(user_attrs: Mapping[str, Any], attr: str = TRAINED_ATTR) -> dict[str, Any]:
    """Every stored training outcome under ``attr``, by trial number or preset name: the
    attributes :func:`store_trained` writes, over the single dict older studies hold."""
    outcomes = dict(user_attrs.get(attr) or {})
    prefix = f"{attr}:"
    outcomes.update({k[len(prefix) :]: v for k, v in user_attrs.items() if k.startswith(prefix)})
    return outcomes


def trained_recipes(outcomes: Mapping[str, Any]) -> frozenset[tuple[str, str]]:
    """The (budget, data) of every recipe the successful outcomes of :func:`trained_outcomes`
    were trained with."""
    return frozenset(
        (str(o["budget"]), str(o["data"]))
        for o in outcomes.values()
        if "accuracy" in o and "budget" in o and "data" in o
    )


def with_trained_accuracy(frame: pd.DataFrame, study: optuna.Study) -> pd.DataFrame:
    """``frame`` (a ``number`` column of trials) with each trial's trained accuracy and its spread
    over seeds (``archlab train``) in :data:`TRAINED_ACCURACY` and :data:`TRAINED_ACCURACY_STD`,
    None for trials not trained; where any trial was scored on the test split, also
    :data:`TEST_ACCURACY` and :data:`TEST_ACCURACY_STD`."""
    trained = trained_outcomes(study.user_attrs, TRAINED_ATTR)
    out = frame.copy()
    numbers = out["number"] if "number" in out else []
    columns = [(TRAINED_ACCURACY, "accuracy"), (TRAINED_ACCURACY_STD, "accuracy_std")]
    if any("test_accuracy" in outcome for outcome in trained.values()):
        columns += [(TEST_ACCURACY, "test_accuracy"), (TEST_ACCURACY_STD, "test_accuracy_std")]
    for column, key in columns:
        out[column] = [trained.get(str(n), {}).get(key) for n in numbers]
    return out

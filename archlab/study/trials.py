"""A study's trials as data: the metrics each stores, whether it is feasible, tables of them.

This is the one place that names the stored metrics and decides feasibility. A trial is feasible
when every constraint slack it carries is ≤ 0. archlab writes each slack twice: as Optuna 5 does
(system attribute ``constraints:<name>``) and as the list Optuna stored before (``constraints``),
which tools built for older Optuna, such as optuna-dashboard 0.21, read to decide what is best.
Optuna's own reader (``FrozenTrial.constraints``) merges both, so both agree.
"""

from __future__ import annotations

import statistics
from typing import Any

import optuna
import pandas as pd

from archlab.study.storage import STARTED_STATES

__all__ = [
    "LATENCY_MS",
    "LEGACY_CONSTRAINTS_KEY",
    "METRICS",
    "PREDICTED_LATENCY_MS",
    "TRAINED_ATTR",
    "TRAINED_REFERENCES_ATTR",
    "is_feasible",
    "pareto_frame",
    "prediction_check",
    "set_constraints",
    "trials_frame",
]

LATENCY_MS = "latency_ms"  # measured median latency
PREDICTED_LATENCY_MS = "latency_ms_predicted"  # latency looked up in a device profile
LEGACY_CONSTRAINTS_KEY = "constraints"  # the list Optuna < 3.2 stored, read by older tools
TRAINED_ATTR = "trained"  # study attribute of ``archlab train``: {trial number: accuracy ...}
TRAINED_REFERENCES_ATTR = "trained_references"  # {preset name: accuracy ...}

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
    "val_acc",
    "train_1_8",
    "train_1_4",
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
    """One row per started trial: state, feasibility, objectives, metrics, failure reason, knobs."""
    names = _metric_names(study)
    trials = study.get_trials(deepcopy=False, states=STARTED_STATES)
    return pd.DataFrame([_trial_row(t, names) for t in trials])


def pareto_frame(study: optuna.Study) -> pd.DataFrame:
    """The feasible Pareto front (Optuna's ``best_trials`` honours the constraints)."""
    names = _metric_names(study)
    rows = [_trial_row(t, names) for t in study.best_trials]
    remeasured = study.user_attrs.get("remeasured") or {}  # predicted-latency searches
    for row in rows:
        row.update(remeasured.get(str(row["number"]), {}))
    frame = pd.DataFrame(rows)
    if not frame.empty and "latency_ms" in frame and frame["latency_ms"].notna().any():
        frame = frame.sort_values("latency_ms").reset_index(drop=True)
    return frame


def prediction_check(study: optuna.Study) -> dict[str, float] | None:
    """How far a predicted-latency search's predictions were from its front's re-measurement.

    Median absolute and signed errors (fractions) of the predictions against the whole-model
    figures; with anchors (:mod:`archlab.predict.time_base`), also the machine's speed relative to
    the profile (median over the front) and the errors on the profile's time base. None before any
    re-measurement.
    """
    rows = list((study.user_attrs.get("remeasured") or {}).values())
    if not rows:
        return None

    def errors(key: str) -> list[float]:
        return [r["latency_ms_predicted"] / r[key] - 1 for r in rows if r.get(key)]

    out: dict[str, float] = {"models": len(rows)}
    for label, key in (("", "latency_ms"), ("profile_time_", "latency_ms_profile_time")):
        errs = errors(key)
        if errs:
            out[f"{label}median_abs_error"] = statistics.median(abs(e) for e in errs)
            out[f"{label}median_error"] = statistics.median(errs)
    speeds = [r["speed_vs_profile"] for r in rows if "speed_vs_profile" in r]
    if speeds:
        out["speed_vs_profile"] = statistics.median(speeds)
    return out

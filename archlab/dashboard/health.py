"""Is a search still improving? Hypervolume over trials, trials per state, time per trial and which
knobs matter (Optuna's importance evaluators).

The hypervolume uses :mod:`archlab.study.hypervolume` on the feasible finished trials. Its reference
point is the one the search fixed and stored in the study (user attribute
``hypervolume_reference``, fixed after the first feasible trials); a study without one (too few
feasible trials so far, or an older study) gets a provisional point by the same rule over all its
feasible trials, and says so. Either way :func:`hypervolume_history` returns the point in the
objectives' own units, so the page can state it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.importance import (
    FanovaImportanceEvaluator,
    MeanDecreaseImpurityImportanceEvaluator,
    PedAnovaImportanceEvaluator,
)
from optuna.storages import BaseStorage

from archlab.dashboard.data import STATUSES, StudyData
from archlab.study.hypervolume import hypervolume, nadir_reference, to_minimization
from archlab.study.storage import StorageError

__all__ = [
    "EVALUATORS",
    "MIN_IMPORTANCE_TRIALS",
    "PARALLEL_KNOBS",
    "RELIABLE_IMPORTANCE_TRIALS",
    "Hypervolume",
    "hypervolume_history",
    "importance_warning",
    "knob_importance",
    "state_counts",
    "top_knobs",
]

EVALUATORS: dict[str, Any] = {
    "fanova": FanovaImportanceEvaluator,
    "mean decrease impurity": MeanDecreaseImpurityImportanceEvaluator,
    "PED-ANOVA": PedAnovaImportanceEvaluator,
}
MIN_IMPORTANCE_TRIALS = 5
# With fewer complete trials than this, a ranking of dozens of knobs is a hint, not a finding:
# few trials sample each knob's values only a handful of times.
RELIABLE_IMPORTANCE_TRIALS = 50
PARALLEL_KNOBS = 8  # knobs the parallel coordinates show at first: more are unreadable


@dataclass
class Hypervolume:
    """Hypervolume of the feasible front after each trial, and the reference point used."""

    history: pd.DataFrame  # columns: number, hypervolume
    reference: dict[str, float]  # objective name → value, in its own units
    rule: str  # how the reference point was chosen
    stored: bool  # True: the point the search fixed; False: provisional, over all trials


def _reference(data: StudyData, feasible: np.ndarray) -> tuple[np.ndarray, str, bool]:
    """The reference point in minimisation form, how it was chosen, and whether it is stored."""
    stored = data.spec_reference
    if stored is not None:
        point = to_minimization([stored["point"]], data.directions)[0]
        return point, str(stored.get("rule", "stored with the study")), True
    rule = (
        "provisional: the worst value of each objective among all feasible trials so far, "
        "moved outwards by 10% of their range"
    )
    return nadir_reference(feasible), rule, False


def hypervolume_history(data: StudyData) -> Hypervolume | None:
    """Hypervolume of the feasible front after each trial number (None: no feasible trial)."""
    if data.trials.empty:
        return None
    columns = [f"objective:{name}" for name in data.metric_names]
    done = data.trials[data.trials["status"] == "feasible"].dropna(subset=columns)
    if done.empty:
        return None
    points = to_minimization(done[columns].to_numpy(dtype=float), data.directions)
    reference, rule, stored = _reference(data, points)
    numbers = done["number"].to_numpy()
    history = [
        {"number": int(n), "hypervolume": hypervolume(points[numbers <= n], reference)}
        for n in sorted(data.trials["number"])
    ]
    in_units = to_minimization([reference], data.directions)[0]  # the sign flip is its own inverse
    return Hypervolume(
        pd.DataFrame(history),
        {name: float(v) for name, v in zip(data.metric_names, in_units)},
        rule,
        stored,
    )


def state_counts(data: StudyData) -> pd.DataFrame:
    """Trials per status (feasible, infeasible, pruned, failed, running), in that order."""
    counts = data.trials["status"].value_counts() if not data.trials.empty else pd.Series()
    return pd.DataFrame(
        {"status": list(STATUSES), "trials": [int(counts.get(s, 0)) for s in STATUSES]}
    )


def knob_importance(
    storage: BaseStorage, name: str, objective: int = 0, evaluator: str = "fanova", seed: int = 0
) -> tuple[pd.Series | None, str | None]:
    """Importance of each knob for one objective, over the finished trials.

    Returns:
        ``(importances, None)``, highest first, or ``(None, why)`` when it cannot be computed
        (too few finished trials, or the evaluator refuses the data).

    Raises:
        KeyError: unknown evaluator. StorageError: no such study.
    """
    if evaluator not in EVALUATORS:
        raise KeyError(f"unknown importance evaluator {evaluator!r}; known: {list(EVALUATORS)}")
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise StorageError(f"no study {name!r} in this storage") from None
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < MIN_IMPORTANCE_TRIALS:
        return None, (
            f"knob importance needs at least {MIN_IMPORTANCE_TRIALS} complete trials; "
            f"this study has {len(complete)}"
        )
    cls = EVALUATORS[evaluator]
    made = cls() if cls is PedAnovaImportanceEvaluator else cls(seed=seed)
    # PED-ANOVA asks which knobs lead to *low* targets: a maximised objective is negated (the
    # variance-based evaluators do not depend on the sign).
    sign = -1.0 if study.directions[objective] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*low `target` values")
            found = optuna.importance.get_param_importances(
                study, evaluator=made, target=lambda t: sign * t.values[objective]
            )
    except (ValueError, RuntimeError, ZeroDivisionError) as err:
        return None, f"the {evaluator} evaluator cannot rank these trials: {err}"
    return pd.Series(found, name="importance").sort_values(ascending=False), None


def importance_warning(complete: int) -> str | None:
    """Why an importance ranking over ``complete`` trials is not to be trusted yet (or None)."""
    if complete >= RELIABLE_IMPORTANCE_TRIALS:
        return None
    return (
        f"This ranking rests on {complete} complete trials; below about "
        f"{RELIABLE_IMPORTANCE_TRIALS} it mostly reflects which values happened to be sampled. "
        "Treat it as a hint."
    )


def top_knobs(
    importance: pd.Series | None, varied: list[str], n: int = PARALLEL_KNOBS
) -> list[str]:
    """The ``n`` knobs to show first: most important first, among the knobs that varied.

    Without a ranking, the first ``n`` varied knobs in the space's order.
    """
    if importance is None:
        return varied[:n]
    ranked = [k for k in importance.index if k in varied]
    return (ranked + [k for k in varied if k not in ranked])[:n]

"""A predicted-latency search's front, judged by what was measured.

A predicted search stores each trial's predicted latency, and re-measures its front at the end
(``archlab.search.remeasure``) into the study attribute ``remeasured``. Finished trials cannot be
changed, so whoever reads the front judges each trial here:

- a re-measured trial by its measured latency, hence its measured feasibility;
- any other by its prediction times the study's :class:`Correction`, the median ratio of measured
  to predicted latency over the re-measured trials.

The front is then recomputed on those latencies, among the trials judged feasible. A study without
re-measured trials has the correction 1, and its front is Optuna's own.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from archlab.study.objectives import OBJECTIVES
from archlab.study.record import RECORD_ATTR, StudyRecord

__all__ = [
    "CORRECTION_ATTR",
    "FRONT_BEFORE_ATTR",
    "REMEASURED_ATTR",
    "Correction",
    "Judged",
    "correction_of",
    "fit_correction",
    "is_predicted",
    "judge_trials",
    "judged_front",
    "leave_one_out_errors",
    "non_dominated",
    "target_ms",
]

REMEASURED_ATTR = "remeasured"  # {trial number: the re-measured figures}
CORRECTION_ATTR = "latency_correction"  # Correction.to_attr()
FRONT_BEFORE_ATTR = "front_before_remeasurement"  # front size on the bare predictions
_LATENCY = OBJECTIVES["latency"].name
_RESAMPLES = 2000  # bootstrap resamples of the correction's interval


@dataclass(frozen=True)
class Correction:
    """Measured ÷ predicted latency on this machine now: the median ratio over the re-measured
    trials, with a 95 % bootstrap interval of that median."""

    scale: float = 1.0
    low: float = 1.0
    high: float = 1.0
    models: int = 0  # re-measured trials it was fitted on; 0: no correction

    def to_attr(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "ci95": [self.low, self.high],
            "models": self.models,
            "fit": "median of measured / predicted latency over the re-measured trials; "
            f"95% interval by bootstrap ({_RESAMPLES} resamples)",
        }

    @classmethod
    def from_attr(cls, stored: dict[str, Any] | None) -> Correction:
        if not stored:
            return cls()
        low, high = stored["ci95"]
        return cls(float(stored["scale"]), float(low), float(high), int(stored["models"]))


def fit_correction(
    measured_ms: Sequence[float], predicted_ms: Sequence[float], seed: int = 0
) -> Correction:
    """The :class:`Correction` of these pairs (none for no pair)."""
    ratios = np.array([m / p for m, p in zip(measured_ms, predicted_ms) if p > 0 and m > 0])
    if not len(ratios):
        return Correction()
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(ratios, size=(_RESAMPLES, len(ratios))), axis=1)
    low, high = np.quantile(medians, [0.025, 0.975])
    return Correction(float(np.median(ratios)), float(low), float(high), len(ratios))


def leave_one_out_errors(
    measured_ms: Sequence[float], predicted_ms: Sequence[float]
) -> list[float]:
    """Relative errors of corrected predictions, each corrected by the scale of the others, so
    that no model checks a correction fitted on itself."""
    ratios = [m / p for m, p in zip(measured_ms, predicted_ms)]
    if len(ratios) < 2:
        return []
    out = []
    for i, (m, p) in enumerate(zip(measured_ms, predicted_ms)):
        scale = statistics.median(ratios[:i] + ratios[i + 1 :])
        out.append(p * scale / m - 1)
    return out


def correction_of(study: optuna.Study) -> Correction:
    """The correction stored with a study (1 when none was fitted)."""
    return Correction.from_attr(study.user_attrs.get(CORRECTION_ATTR))


def _record(study: optuna.Study) -> StudyRecord | None:
    stored = study.user_attrs.get(RECORD_ATTR)
    return StudyRecord.from_attr(dict(stored)) if stored else None


def is_predicted(study: optuna.Study) -> bool:
    """Whether the study's latencies were predicted (``--latency predicted``)."""
    record = _record(study)
    return record is not None and record.settings.latency_mode == "predicted"


def target_ms(study: optuna.Study) -> float | None:
    """The study's latency target in ms (None for a study not made by archlab)."""
    record = _record(study)
    return None if record is None else record.settings.target_latency_s * 1e3


@dataclass(frozen=True)
class Judged:
    """One trial of a predicted search, as its front judges it."""

    trial: optuna.trial.FrozenTrial
    latency_ms: float  # measured if re-measured, else the corrected prediction
    measured: bool
    feasible: bool  # every constraint met, latency judged as above
    values: tuple[float, ...]  # the objectives, latency judged as above


def judge_trials(study: optuna.Study, correction: Correction | None = None) -> list[Judged]:
    """Every complete trial with a predicted latency, judged (see the module docstring)."""
    correction = correction or correction_of(study)
    target = target_ms(study)
    remeasured = study.user_attrs.get(REMEASURED_ATTR) or {}
    names = list(study.metric_names or [])
    slot = names.index(_LATENCY) if _LATENCY in names else None
    judged = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        predicted = t.user_attrs.get("latency_ms_predicted")
        if predicted is None or t.values is None:
            continue
        figures = remeasured.get(str(t.number))
        latency = figures["latency_ms"] if figures else predicted * correction.scale
        others = [v <= 0 for k, v in (t.constraints or {}).items() if k != "latency"]
        feasible = all(others) and (target is None or latency <= target)
        values = list(t.values)
        if slot is not None:
            values[slot] = latency
        judged.append(Judged(t, float(latency), figures is not None, feasible, tuple(values)))
    return judged


def non_dominated(points: np.ndarray) -> list[int]:
    """Rows of ``points`` (to minimise, one column per objective) that no other row dominates."""
    keep = []
    for i, p in enumerate(points):
        no_worse = (points <= p).all(axis=1)
        better = (points < p).any(axis=1)
        if not (no_worse & better).any():
            keep.append(i)
    return keep


def judged_front(study: optuna.Study, correction: Correction | None = None) -> list[Judged]:
    """The Pareto front of the trials judged feasible, on their judged objectives."""
    feasible = [j for j in judge_trials(study, correction) if j.feasible]
    if not feasible:
        return []
    signs = np.array([1.0 if d.name == "MINIMIZE" else -1.0 for d in study.directions])
    points = np.array([j.values for j in feasible], dtype=float) * signs
    return [feasible[i] for i in non_dominated(points)]

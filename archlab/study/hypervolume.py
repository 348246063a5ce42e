"""Hypervolume of a Pareto front: how much of objective space it dominates, up to a reference point.

The hypervolume indicator (Zitzler & Thiele, PPSN 1998) is the volume of the union of the boxes
spanned by each point and the reference point; larger is better, and it rewards both closeness to
the true front and spread along it. Everything here works on **minimisation** values
(:func:`to_minimization` negates maximised objectives). Points not strictly better than the
reference in every objective add nothing and are dropped.

Exact computation: a sweep in 2-D, and slicing along the last objective above that (each slab adds
its thickness times the hypervolume of the points below it in one dimension fewer), which is fast
enough for the 2-4 objectives and few hundred points of a search.

In a study (:func:`record_hypervolume`), the reference point is fixed once, when
:data:`REFERENCE_TRIALS` complete feasible trials exist: per objective, the worst of their values
moved outwards by 10% of their range (:func:`nadir_reference`). It is stored in the study's user
attribute ``hypervolume_reference`` (values in the objectives' own units and directions, with
this rule), and every trial from then on stores the hypervolume of the feasible front so far,
itself included, as its user attribute ``hypervolume``. Hypervolumes of different studies are
comparable only under the same reference point.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna

from archlab.study.trials import is_feasible

__all__ = [
    "REFERENCE_TRIALS",
    "hypervolume",
    "nadir_reference",
    "non_dominated",
    "record_hypervolume",
    "to_minimization",
]

REFERENCE_TRIALS = 10  # complete feasible trials that fix a study's reference point
_REFERENCE_RULE = (
    f"worst value of each objective among the first {REFERENCE_TRIALS} complete feasible trials, "
    "moved outwards by 10% of their range"
)


def to_minimization(
    values: Sequence[Sequence[float] | np.ndarray] | np.ndarray, directions: Sequence[str]
) -> np.ndarray:
    """Rows of objective values → a float array where smaller is better in every column.

    Raises:
        ValueError: a direction other than "minimize"/"maximize", or a column count mismatch.
    """
    bad = [d for d in directions if d not in ("minimize", "maximize")]
    if bad:
        raise ValueError(f"directions must be 'minimize' or 'maximize', got {bad}")
    points = np.asarray(values, dtype=float).reshape(-1, len(directions))
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return points * signs


def non_dominated(points: np.ndarray) -> np.ndarray:
    """The rows of ``points`` (minimisation) that no other row dominates, duplicates kept once."""
    points = np.unique(np.asarray(points, dtype=float), axis=0)
    if len(points) <= 1:
        return points
    no_worse = (points[:, None, :] <= points[None, :, :]).all(-1)  # [i, j]: i is no worse than j
    better = (points[:, None, :] < points[None, :, :]).any(-1)
    dominated = (no_worse & better).any(0)
    return points[~dominated]


def _hv2d(points: np.ndarray, reference: np.ndarray) -> float:
    points = points[np.argsort(points[:, 0], kind="stable")]
    best_y = np.minimum.accumulate(points[:, 1])  # the front's height at each x
    next_x = np.append(points[1:, 0], reference[0])
    return float(np.sum((next_x - points[:, 0]) * (reference[1] - best_y)))


def _hv(points: np.ndarray, reference: np.ndarray) -> float:
    if len(points) == 0:
        return 0.0
    if points.shape[1] == 1:
        return float(reference[0] - points[:, 0].min())
    if points.shape[1] == 2:
        return _hv2d(points, reference)
    points = non_dominated(points)
    points = points[np.argsort(points[:, -1], kind="stable")]
    tops = np.append(points[1:, -1], reference[-1])
    total = 0.0
    for i, top in enumerate(tops):
        thickness = top - points[i, -1]
        if thickness > 0:
            total += thickness * _hv(points[: i + 1, :-1], reference[:-1])
    return total


def hypervolume(
    points: Sequence[Sequence[float]] | np.ndarray, reference: Sequence[float] | np.ndarray
) -> float:
    """Hypervolume of ``points`` (minimisation rows) with respect to ``reference``.

    Non-finite rows and rows not strictly better than the reference in every objective are ignored.

    Raises:
        ValueError: ``reference`` has another length than the rows, or is not finite.

    Example:
        >>> hypervolume([[1, 3], [2, 2], [3, 1]], reference=[4, 4])
        6.0
    """
    ref = np.asarray(reference, dtype=float)
    if ref.ndim != 1 or not np.isfinite(ref).all():
        raise ValueError(f"the reference point must be a finite vector, got {list(reference)}")
    pts = np.asarray(points, dtype=float).reshape(-1, len(ref))
    pts = pts[np.isfinite(pts).all(1) & (pts < ref).all(1)]
    return _hv(pts, ref)


def nadir_reference(
    points: Sequence[Sequence[float]] | np.ndarray, margin: float = 0.1
) -> np.ndarray:
    """Reference point: the worst finite value of each objective, moved out by ``margin`` × range.

    Args:
        points: minimisation rows; non-finite rows are ignored.
        margin: share of each objective's range (best to worst) added beyond the worst value, so
            that the worst points still dominate a little volume.

    Raises:
        ValueError: no finite point.
    """
    pts = np.asarray(points, dtype=float)
    pts = pts[np.isfinite(pts).all(1)] if pts.ndim == 2 else pts[:0]
    if len(pts) == 0:
        raise ValueError("a reference point needs at least one finite point")
    worst, best = pts.max(0), pts.min(0)
    spread = np.maximum(worst - best, 1e-9 * np.maximum(1.0, np.abs(worst)))
    return worst + margin * spread


def _reference(study: optuna.Study, points: list[list[float]], directions: list[str]) -> Any:
    stored = study.user_attrs.get("hypervolume_reference")
    if stored is not None:
        return stored["point"]
    finite = [p for p in points if np.isfinite(p).all()]
    if len(finite) < REFERENCE_TRIALS:
        return None
    ref_min = nadir_reference(to_minimization(finite[:REFERENCE_TRIALS], directions))
    point = [float(-r if d == "maximize" else r) for r, d in zip(ref_min, directions)]
    study.set_user_attr("hypervolume_reference", {"point": point, "rule": _REFERENCE_RULE})
    return point


def record_hypervolume(
    trial: optuna.Trial, values: list[float], feasible: bool, directions: list[str]
) -> float | None:
    """Store the hypervolume of the study's feasible front, ``trial`` included, on ``trial``.

    Returns:
        The hypervolume, or None while the study has too few feasible trials to fix its reference
        point (see the module docstring).
    """
    study = trial.study
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    ordered = sorted(done, key=lambda t: t.number)
    points = [list(t.values) for t in ordered if is_feasible(t) is not False]
    if feasible:
        points.append(list(values))
    reference = _reference(study, points, directions)
    if reference is None:
        return None
    value = hypervolume(
        to_minimization(points, directions), to_minimization([reference], directions)[0]
    )
    trial.set_user_attr("hypervolume", value)
    return value

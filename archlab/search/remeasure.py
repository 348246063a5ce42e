"""Re-measuring the Pareto front of a predicted-latency search, whole and interleaved, until
the front is judged on measured latencies (:mod:`archlab.study.measured_front`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna

from archlab.measurement.interleave import free_core_processes, measure_many_in_processes
from archlab.predict.profile import Anchor, DeviceProfile, current_setup
from archlab.predict.time_base import compare_to_profile, pick_anchors
from archlab.space import SearchSpace
from archlab.study.measured_front import (
    CORRECTION_ATTR,
    FRONT_BEFORE_ATTR,
    REMEASURED_ATTR,
    Correction,
    correction_of,
    fit_correction,
    judged_front,
)
from archlab.study.record import space_of
from archlab.study.settings import SearchSpec

__all__ = [
    "CALIBRATION_MODELS",
    "FRONT_CHUNK",
    "calibrate",
    "distinct_archs",
    "front_anchors",
    "remeasure_front",
    "remeasure_processes",
    "remeasure_study_front",
]


def remeasure_study_front(study: optuna.Study, spec: SearchSpec) -> dict[str, Any]:
    """:func:`remeasure_front` with the space rebuilt from the study's record."""
    return remeasure_front(study, space_of(study), spec)


FRONT_CHUNK = 64  # front models built and measured together when re-measuring
CALIBRATION_MODELS = 8  # front models measured during a search to fit its first correction


def remeasure_processes(spec: SearchSpec) -> int:
    """How many processes re-measure a front at once (``spec.remeasure_processes``, or auto)."""
    if spec.remeasure_processes is not None:
        return max(1, spec.remeasure_processes)
    return free_core_processes(spec.threads, spec.remeasure_slices)


def front_anchors(spec: SearchSpec, space: SearchSpace) -> list[Anchor]:
    """The profile's anchors to time beside the front; none when the comparison would be void.

    Void means another machine or setup (CPU, threads, backend, allocator, torch), another input
    resolution, or a profile made before anchors were recorded.
    """
    if not spec.latency_model:
        return []
    profile = DeviceProfile.load(Path(spec.latency_model))
    here = current_setup(spec.threads, spec.backend, profile.setup["batch"])
    if profile.mismatches(here) or profile.resolution != space.resolution:
        return []
    return pick_anchors(profile.anchors)


def remeasure_front(study: optuna.Study, space: SearchSpace, spec: SearchSpec) -> dict[str, Any]:
    """Measure the (predicted) Pareto front whole, interleaved, and judge it by what was measured.

    The models are built and timed in fresh processes, one per free core
    (:func:`archlab.measurement.interleave.measure_many_in_processes`), each running its share of
    the slices, in chunks of at most :data:`FRONT_CHUNK` models: a long search's front can hold
    hundreds, which each process would otherwise hold in memory at once. Each chunk is stored as it
    completes, so an interrupted re-measurement resumes where it stopped.

    After each chunk the study's :class:`~archlab.study.measured_front.Correction` (measured ÷
    predicted latency) is refitted on every re-measured trial and stored, and the front is
    recomputed: re-measured trials by their measured latency, the others by their corrected
    prediction (:func:`~archlab.study.measured_front.judged_front`). Members that measure over the
    target leave it, and the candidates that take their place, nearest the target first, are
    measured next, up to ``spec.remeasure_budget`` models beyond the first front. It stops when
    every member of the front has been measured.

    Finished trials cannot be changed, so the figures go into the study's ``remeasured`` user
    attribute, ``{trial number: {latency_ms, latency_ms_predicted, ...}}``, which
    :mod:`archlab.study.trials` merges into its rows.

    When the profile was made on this machine and setup, some of its calibration models (anchors)
    are timed in every chunk too, and each trial also gets how fast the machine ran compared with
    profiling time (``speed_vs_profile``, now / then) and its latency on the profile's time base
    (``latency_ms_profile_time``), which is what the prediction should be compared with.
    """
    done = dict(study.user_attrs.get(REMEASURED_ATTR) or {})
    first = {j.trial.number for j in judged_front(study) if not j.measured}
    # the front as the search judged it, an arch sampled twice counted once
    study.set_user_attr(FRONT_BEFORE_ATTR, distinct_archs(study.best_trials))
    anchors = front_anchors(spec, space)
    fill_left = spec.remeasure_budget
    while True:
        chunk = _next_chunk(_unmeasured_front(study), first, fill_left)
        if not chunk:
            return done
        fill_left -= sum(t.number not in first for t in chunk)
        done = _measure_and_refit(study, done, chunk, anchors, space, spec)


def calibrate(study: optuna.Study, space: SearchSpace, spec: SearchSpec) -> Correction:
    """Measure a few members of the current (predicted) front and fit the study's correction.

    Called part-way through a predicted search (``spec.calibrate_after`` trials), so that the
    rest of the search judges its latency constraint on corrected predictions: up to
    :data:`CALIBRATION_MODELS` unmeasured members, spread over the front's latency range, are
    timed with the anchors, as the final re-measurement does, and stay measured for it.
    """
    todo = _unmeasured_front(study)
    if todo:
        done = dict(study.user_attrs.get(REMEASURED_ATTR) or {})
        chunk = _spread(todo, CALIBRATION_MODELS)
        _measure_and_refit(study, done, chunk, front_anchors(spec, space), space, spec)
    return correction_of(study)


def distinct_archs(trials: list[optuna.trial.FrozenTrial]) -> int:
    """How many different archs ``trials`` hold (samplers may propose one arch twice)."""
    return len({json.dumps(t.params, sort_keys=True) for t in trials})


def _unmeasured_front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The members of the judged front not measured yet, by predicted latency."""
    todo = [j.trial for j in judged_front(study) if not j.measured]
    return sorted(todo, key=lambda t: t.user_attrs["latency_ms_predicted"])


def _spread(trials: list[optuna.trial.FrozenTrial], most: int) -> list[optuna.trial.FrozenTrial]:
    """At most ``most`` of ``trials``, evenly strided so that they span their range."""
    return trials[:: -(-len(trials) // most)]


def _next_chunk(
    by_latency: list[optuna.trial.FrozenTrial], first: set[int], fill_left: int
) -> list[optuna.trial.FrozenTrial]:
    """The next models to measure: the first front's, spread over its range; then those that
    joined the front, nearest the target first, while the budget lasts."""
    front = [t for t in by_latency if t.number in first]
    if front:
        return _spread(front, FRONT_CHUNK)
    return by_latency[::-1][: min(FRONT_CHUNK, max(fill_left, 0))]


def _measure_and_refit(
    study: optuna.Study,
    done: dict[str, Any],
    chunk: list[optuna.trial.FrozenTrial],
    anchors: list[Anchor],
    space: SearchSpace,
    spec: SearchSpec,
) -> dict[str, Any]:
    """Measure ``chunk``, store it with the figures ``done`` already holds and refit the study's
    correction on them all; the figures stored."""
    done = done | _measure(chunk, anchors, space, spec)
    study.set_user_attr(REMEASURED_ATTR, done)  # kept chunk by chunk
    _refit_correction(study, done, spec)
    return done


def _measure(
    chunk: list[optuna.trial.FrozenTrial],
    anchors: list[Anchor],
    space: SearchSpace,
    spec: SearchSpec,
) -> dict[str, dict[str, Any]]:
    """One chunk of models (and the anchors) measured together; the figures by trial number."""
    latencies = measure_many_in_processes(
        [space.to_config(t.params) for t in chunk] + [a.config for a in anchors],
        space.resolution,
        processes=remeasure_processes(spec),
        slices=spec.remeasure_slices,
        seed=0 if spec.seed is None else spec.seed,
        threads=spec.threads,
        backend=spec.backend,
    )
    base = (
        compare_to_profile(
            [a.ms for a in anchors], [lat.median_ms for lat in latencies[-len(anchors) :]]
        )
        if anchors
        else None
    )
    out: dict[str, dict[str, Any]] = {}
    for t, lat in zip(chunk, latencies):
        out[str(t.number)] = {
            "latency_ms": lat.median_ms,
            "latency_iqr_ms": lat.iqr_ms,
            "latency_ci_rel": lat.ci_rel,
            "latency_runs": lat.runs,
            "latency_processes": lat.processes,
            "latency_ms_predicted": t.user_attrs["latency_ms_predicted"],
            "feasible_measured": lat.median_ms / 1e3 <= spec.target_latency_s,
        }
        if base is not None:
            out[str(t.number)] |= {
                "speed_vs_profile": base.factor,
                "speed_vs_profile_ci_rel": base.ci_rel,
                "latency_ms_profile_time": base.to_profile_time(lat.median_ms),
            }
    return out


def _refit_correction(study: optuna.Study, done: dict[str, Any], spec: SearchSpec) -> None:
    rows = list(done.values())
    correction = fit_correction(
        [r["latency_ms"] for r in rows],
        [r["latency_ms_predicted"] for r in rows],
        seed=0 if spec.seed is None else spec.seed,
    )
    study.set_user_attr(CORRECTION_ATTR, correction.to_attr())

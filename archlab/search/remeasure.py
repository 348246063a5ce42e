"""Re-measuring the Pareto front of a predicted-latency search, whole and interleaved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from archlab.measurement.interleave import free_core_processes, measure_many_in_processes
from archlab.predict.profile import Anchor, DeviceProfile, current_setup
from archlab.predict.time_base import compare_to_profile, pick_anchors
from archlab.space import SearchSpace
from archlab.study.record import space_of
from archlab.study.settings import SearchSpec

__all__ = [
    "FRONT_CHUNK",
    "front_anchors",
    "remeasure_front",
    "remeasure_processes",
    "remeasure_study_front",
]


def remeasure_study_front(study: optuna.Study, spec: SearchSpec) -> dict[str, Any]:
    """:func:`remeasure_front` with the space rebuilt from the study's record."""
    return remeasure_front(study, space_of(study), spec)


FRONT_CHUNK = 64  # front models built and measured together when re-measuring


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
    """Measure the (predicted) Pareto front whole, interleaved, and store it with the study.

    The models are built and timed in fresh processes, one per free core
    (:func:`archlab.measurement.interleave.measure_many_in_processes`), each running its share of
    the slices, in chunks of at most :data:`FRONT_CHUNK` models: a long search's front can hold
    hundreds, which each process would otherwise hold in memory at once. Each chunk is stored as it
    completes, so an interrupted re-measurement resumes where it stopped.

    Finished trials cannot be changed, so the figures go into the study's ``remeasured`` user
    attribute, ``{trial number: {latency_ms, latency_ms_predicted, ...}}``, which
    ``archlab.report.tables.pareto_frame`` merges into its rows.

    When the profile was made on this machine and setup, some of its calibration models (anchors)
    are timed in every chunk too, and each trial also gets how fast the machine ran compared with
    profiling time (``speed_vs_profile``, now / then) and its latency on the profile's time base
    (``latency_ms_profile_time``), which is what the prediction should be compared with.
    """
    front = [t for t in study.best_trials if "latency_ms_predicted" in t.user_attrs]
    done = dict(study.user_attrs.get("remeasured") or {})
    todo = [t for t in front if str(t.number) not in done]
    anchors = front_anchors(spec, space)
    chunks = -(-len(todo) // FRONT_CHUNK)
    for chunk in (todo[i::chunks] for i in range(chunks)):  # each spans the front's range
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
        for t, lat in zip(chunk, latencies):
            done[str(t.number)] = {
                "latency_ms": lat.median_ms,
                "latency_iqr_ms": lat.iqr_ms,
                "latency_ci_rel": lat.ci_rel,
                "latency_runs": lat.runs,
                "latency_processes": lat.processes,
                "latency_ms_predicted": t.user_attrs["latency_ms_predicted"],
                "feasible_measured": lat.median_ms / 1e3 <= spec.target_latency_s,
            }
            if base is not None:
                done[str(t.number)] |= {
                    "speed_vs_profile": base.factor,
                    "speed_vs_profile_ci_rel": base.ci_rel,
                    "latency_ms_profile_time": base.to_profile_time(lat.median_ms),
                }
        study.set_user_attr("remeasured", done)  # kept chunk by chunk
    return done

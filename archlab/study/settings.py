"""The settings of a search: what a study measures, stored with it (:mod:`archlab.study.record`).

They live with the study, not with the search loop, so that every reader of a study (reports,
the dashboard, workers that join) understands it without importing the loop.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from archlab.study.heartbeat import DEFAULT_GRACE_PERIOD_S
from archlab.study.objectives import DEFAULT_OBJECTIVES

__all__ = [
    "IDENTITY_FIELDS",
    "LATENCY_FIELDS",
    "LEGACY_PROBES",
    "PROBE_DEFAULTS",
    "SAMPLERS",
    "SearchError",
    "SearchResult",
    "SearchSpec",
    "TRAIN_FIELDS",
    "resolve_sampler",
]

# "auto": multivariate TPE for two objectives, NSGA-III (reference-point based) for three or four.
SAMPLERS = ("auto", "nsga2", "tpe", "random", "nsga3")
# Settings that define what a study measures: resuming with different values would mix figures.
IDENTITY_FIELDS = (
    "space",
    "space_yaml",
    "objectives",
    "target_latency_s",
    "resolution",
    "threads",
    "proxy_resolution",
    "proxy_data",
)
# ... and, when short training is an objective, its budget and data.
TRAIN_FIELDS = ("train_steps", "train_batch", "data")
# Identity settings added later: a study stored before them had their default.
LATENCY_FIELDS = {"latency_mode": "measured", "backend": "eager"}
# The estimates' probe settings. New studies take PROBE_DEFAULTS, the settings the shipped accuracy
# evidence was measured with (archlab.estimate.evidence); a study resumed without them given keeps
# its own; a study stored before ``proxy_data`` existed probed scikit-learn digits at 64 px.
PROBE_DEFAULTS: dict[str, Any] = {"proxy_data": "fashion-mnist", "proxy_resolution": 32}
LEGACY_PROBES: dict[str, Any] = {"proxy_data": "digits", "proxy_resolution": 64}


class SearchError(ValueError):
    """A search that cannot start (bad settings, or settings that contradict the stored study)."""


@dataclass
class SearchSpec:
    """Everything a study is: stored with it, so any process can rebuild its trials or join it."""

    space: str = "plgvit"
    study_name: str | None = None
    storage: str | None = None
    target_latency_s: float = 1.0
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    n_trials: int | None = 20
    timeout_s: float | None = None
    sampler: str = "auto"
    population_size: int = 24
    seed: int | None = 0
    threads: int = 1
    resolution: int | None = None  # None: the space's resolution
    proxy_batch: int = 8
    # Accuracy estimates (proxies, short training) run on the arch reduced to this input size;
    # the proxies' probe batch comes from proxy_data. None: see PROBE_DEFAULTS.
    proxy_resolution: int | None = None
    proxy_data: str | None = None
    train_steps: int = 100  # short training (objective short_train): optimiser steps,
    train_batch: int = 32  # images per step,
    train_time_limit_s: float | None = 120.0  # and the wall-clock limit per trial
    data: str | None = None  # ImageFolder path for short training; None: scikit-learn digits
    latency_max_time_s: float = 3.0
    # "measured": every candidate is timed; "predicted": looked up in the device profile
    # latency_model (archlab.predict.predictor), and the final Pareto front is re-measured whole.
    latency_mode: str = "measured"
    latency_model: str | None = None
    # Predicted mode, blocks the profile lacks: "measure" them in context (and add them to the
    # profile), "estimate" them with the profile's cost model (archlab.predict.cost_model), or
    # "auto": measure when this process has the profile's setup, else estimate.
    unseen_blocks: str = "auto"
    # Re-measuring the front: interleaved slices of 2 runs per model, spread over this many
    # processes at once (None: one per core the threads leave, at most one per slice).
    remeasure_slices: int = 8
    remeasure_processes: int | None = None
    backend: str = "eager"  # inference backend timed (archlab.measurement.backends)
    # A new study starts with the space's smallest and largest archs (SearchSpace.corners), so the
    # front spans the space from the first generation on; random search never gets them.
    corners: bool = True
    max_memory_bytes: int | None = None  # constraint on peak inference memory (measurement.memory)
    # A RUNNING trial whose worker sent no heartbeat for this long is failed and retried once.
    grace_period_s: int = DEFAULT_GRACE_PERIOD_S

    def resolved_name(self) -> str:
        target_ms = round(self.target_latency_s * 1000)
        return self.study_name or f"{self.space_name()}@{target_ms}ms"

    def probe_resolution(self) -> int:
        """The estimates' input size (``proxy_resolution`` or its default)."""
        return int(self.proxy_resolution or PROBE_DEFAULTS["proxy_resolution"])

    def probe_data(self) -> str:
        """The proxies' probe data set (``proxy_data`` or its default)."""
        return str(self.proxy_data or PROBE_DEFAULTS["proxy_data"])

    def with_probes_of(self, stored: dict[str, Any] | None) -> SearchSpec:
        """This spec with its unset probe settings filled in: from ``stored`` (the record of the
        study being resumed; one older than ``proxy_data`` had :data:`LEGACY_PROBES`) or else
        from :data:`PROBE_DEFAULTS`."""
        source = PROBE_DEFAULTS if stored is None else {**LEGACY_PROBES, **stored}
        filled = {k: source[k] for k in PROBE_DEFAULTS if getattr(self, k) is None}
        return dataclasses.replace(self, **filled)

    def space_name(self) -> str:
        return self.space.rsplit("/", 1)[-1].removesuffix(".yaml").removesuffix(".yml")


@dataclass
class SearchResult:
    study: optuna.Study
    spec: SearchSpec
    interrupted: bool = False
    new_trials: int = 0
    stored_spec: dict[str, Any] = field(default_factory=dict)  # the study's record, as stored
    outputs: Path | None = None  # the study folder with spec.yaml and pareto.csv


def resolve_sampler(spec: SearchSpec) -> str:
    """The sampler a spec runs: ``auto`` is multivariate TPE for 2 objectives, NSGA-III for 3-4.

    TPE because it is the sampler that reached random search's 300-trial hypervolume within 100
    trials on every seed of ``bench/search_efficiency.py``; NSGA-II did on one or two of three
    (README, "Samplers").
    """
    if spec.sampler == "auto":
        return "tpe" if len(spec.objectives) <= 2 else "nsga3"
    return spec.sampler

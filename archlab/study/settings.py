"""The settings of a search: what a study measures, stored with it (:mod:`archlab.study.record`).

They live with the study, not with the search loop, so that every reader of a study (reports,
the dashboard, workers that join) understands it without importing the loop.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from archlab.study.heartbeat import DEFAULT_GRACE_PERIOD_S
from archlab.study.objectives import DEFAULT_OBJECTIVES, get_objectives

__all__ = [
    "IDENTITY_FIELDS",
    "LATENCY_FIELDS",
    "LEGACY_PROBES",
    "PROBE_DEFAULTS",
    "SAMPLERS",
    "SearchError",
    "SearchResult",
    "SearchSpec",
    "MAX_WORKERS_PER_CPU",
    "TRAIN_FIELDS",
    "available_cpus",
    "check_workers",
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
    # None: a resumed study's own, else the space's default (search.defaults.default_objectives).
    objectives: tuple[str, ...] | None = None
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
    # Models re-measured beyond the front itself, to fill it when members measure over target.
    remeasure_budget: int = 32
    # Predicted mode: after this many trials, measure a few front members and judge the rest of
    # the search's constraint on corrected predictions (archlab.search.remeasure.calibrate); 0: off.
    calibrate_after: int = 40
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

    def with_defaults_of(
        self, stored: dict[str, Any] | None, objectives: tuple[str, ...]
    ) -> SearchSpec:
        """This spec with its unset objectives and probe settings filled in: from ``stored`` (the
        record of the study being resumed; one older than ``proxy_data`` had
        :data:`LEGACY_PROBES`) or else from the defaults (:data:`PROBE_DEFAULTS`, and
        ``objectives``, those of a new study of the space)."""
        source = PROBE_DEFAULTS if stored is None else {**LEGACY_PROBES, **stored}
        filled: dict[str, Any] = {k: source[k] for k in PROBE_DEFAULTS if getattr(self, k) is None}
        if self.objectives is None:
            filled["objectives"] = tuple((stored or {}).get("objectives") or objectives)
        return dataclasses.replace(self, **filled)

    def objective_names(self) -> tuple[str, ...]:
        """The objectives; while unset, the pooled default's, which has as many as any space's."""
        return self.objectives or DEFAULT_OBJECTIVES

    def space_name(self) -> str:
        return self.space.rsplit("/", 1)[-1].removesuffix(".yaml").removesuffix(".yml")

    def validate(self) -> None:
        """Check every setting against its bounds, before any storage is opened.

        Raises:
            SearchError: the first bad setting, named by its command-line option.
        """
        for name, (low, high) in _BOUNDS.items():
            _check_number(name, getattr(self, name), low, high)
        cpus = available_cpus()
        if isinstance(self.threads, int) and not 1 <= self.threads <= cpus:
            raise SearchError(
                f"--threads must be between 1 and {cpus} (the CPUs here), got {self.threads}"
            )
        _check_number("threads", self.threads, 1, cpus)
        for name in ("resolution", "proxy_resolution"):
            _check_resolution(name, getattr(self, name))
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise SearchError(
                    f"{_option(name)}: {getattr(self, name)!r} is not one of {allowed}"
                )
        try:
            if self.objectives is not None:
                get_objectives(self.objectives)
        except ValueError as err:
            raise SearchError(f"--objectives: {err}") from None
        _check_study_name(self.resolved_name())
        self._check_paths()

    def _check_paths(self) -> None:
        if self.proxy_data not in (None, *_PROBE_SETS) and not Path(self.proxy_data).is_dir():
            raise SearchError(
                f"--proxy-data: {self.proxy_data!r} is neither {' nor '.join(_PROBE_SETS)} "
                "nor an existing folder"
            )
        if self.data is not None and not Path(self.data).is_dir():
            raise SearchError(f"--data: {self.data!r} is not an existing folder")
        if self.latency_mode == "predicted" and not self.latency_model:
            raise SearchError(
                "--latency predicted needs --latency-model PROFILE.json "
                "(made by archlab profile-device)"
            )


# Bounds (inclusive) of the numeric settings; a setting left at None takes its default unchecked.
_BOUNDS: dict[str, tuple[float, float]] = {
    "target_latency_s": (1e-6, 3600.0),  # past an hour per image no budget is meant
    "timeout_s": (1e-3, 366 * 86400.0),
    "n_trials": (1, 1_000_000),
    "population_size": (2, 100_000),  # NSGA-II/III need two parents
    "seed": (0, 2**31 - 1),  # numpy seeds stop at 2**32; workers add offsets to it
    "proxy_batch": (1, 1024),
    "train_steps": (1, 1_000_000),
    "train_batch": (1, 4096),
    "train_time_limit_s": (1e-3, 86400.0),
    "latency_max_time_s": (1e-3, 3600.0),
    "remeasure_slices": (1, 1000),
    "remeasure_processes": (1, 1024),
    "remeasure_budget": (0, 100_000),
    "calibrate_after": (0, 1_000_000),
    "max_memory_bytes": (1, 2**50),
    "grace_period_s": (2, 7 * 86400),
}
_INTEGERS = {
    "n_trials", "population_size", "seed", "proxy_batch", "train_steps", "train_batch",
    "remeasure_slices", "remeasure_processes", "max_memory_bytes", "grace_period_s", "threads",
    "remeasure_budget", "calibrate_after",
}  # fmt: skip
_OPTIONAL = {
    "timeout_s", "n_trials", "seed", "train_time_limit_s", "remeasure_processes",
    "max_memory_bytes", "resolution", "proxy_resolution",
}  # fmt: skip
_CHOICES: dict[str, tuple[str, ...]] = {
    "sampler": SAMPLERS,
    "latency_mode": ("measured", "predicted"),
    "unseen_blocks": ("auto", "measure", "estimate"),
    "backend": ("eager", "torchscript", "onnxruntime", "onnxruntime-int8"),
}
# The command-line option of each setting that has one, for messages; others go by field name.
_OPTIONS = {
    "target_latency_s": "--target-latency",
    "timeout_s": "--timeout",
    "population_size": "--population",
    "train_time_limit_s": "--train-time-limit",
    "max_memory_bytes": "--max-memory",
    "grace_period_s": "--grace-period",
    "study_name": "--study",
    "latency_mode": "--latency",
    **{
        name: "--" + name.replace("_", "-")
        for name in (
            "n_trials", "seed", "train_steps", "train_batch", "threads", "resolution",
            "proxy_resolution", "sampler", "unseen_blocks", "backend", "remeasure_budget",
            "calibrate_after",
        )
    },
}  # fmt: skip
_MAX_RESOLUTION = 2048
_MAX_STUDY_NAME = 255  # a file name's limit on common file systems
_PROBE_SETS = ("fashion-mnist", "digits")
# Local workers per CPU at most: each is a process with its own torch (a few hundred MB) and
# they time latency on the shared cores, so past a few per core they only slow each other down
# and use up memory.
MAX_WORKERS_PER_CPU = 4


def _option(name: str) -> str:
    return _OPTIONS.get(name, name)


def _check_number(name: str, value: Any, low: float, high: float) -> None:
    if value is None and name in _OPTIONAL:
        return
    whole = name in _INTEGERS
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
        raise SearchError(f"{_option(name)} must be {kind}, got {value!r}")
    if not low <= value <= high:  # also refuses nan; exact for any int
        raise SearchError(
            f"{_option(name)} must be between {_show(low)} and {_show(high)}, got {_show(value)}"
        )


def _show(value: float) -> str:
    """A number for people: 1,000,000 rather than 1e+06; a huge whole number by its length."""
    if isinstance(value, int):
        text = f"{value:,}"
        return text if len(text) <= 30 else f"a number of {len(str(abs(value)))} digits"
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:g}"


def _check_resolution(name: str, value: Any) -> None:
    if value is None:  # the space's (resolution) or the default (proxy_resolution)
        return
    if isinstance(value, bool) or not isinstance(value, int) or value % 32:
        raise SearchError(f"{_option(name)} must be a multiple of 32, got {value!r}")
    _check_number(name, value, 32, _MAX_RESOLUTION)


def _check_study_name(name: str) -> None:
    if not name.strip() or len(name) > _MAX_STUDY_NAME:
        raise SearchError(
            f"--study: a study name has 1 to {_MAX_STUDY_NAME} characters, got {len(name)}"
        )
    if not name.isprintable():
        raise SearchError(f"--study: {name!r} holds control characters")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def check_workers(workers: int) -> None:
    """Refuse a number of local worker processes below 1 or above :data:`MAX_WORKERS_PER_CPU`
    per CPU.

    Raises:
        SearchError: the number is out of bounds.
    """
    limit = MAX_WORKERS_PER_CPU * available_cpus()
    if not 1 <= workers <= limit:
        raise SearchError(
            f"--workers must be between 1 and {limit} ({MAX_WORKERS_PER_CPU} per CPU here), "
            f"got {workers}"
        )


@dataclass
class SearchResult:
    study: optuna.Study
    spec: SearchSpec
    interrupted: bool = False
    new_trials: int = 0
    stored_spec: dict[str, Any] = field(default_factory=dict)  # the study's record, as stored
    outputs: Path | None = None  # the study folder with spec.yaml and pareto.csv
    stop_signal: int | None = None  # SIGINT or SIGTERM, if one stopped the search


def resolve_sampler(spec: SearchSpec) -> str:
    """The sampler a spec runs: ``auto`` is multivariate TPE for 2 objectives, NSGA-III for 3-4.

    TPE because it is the sampler that reached random search's 300-trial hypervolume within 100
    trials on every seed of ``bench/search_efficiency.py``; NSGA-II did on one or two of three
    (README, "Samplers").
    """
    if spec.sampler == "auto":
        return "tpe" if len(spec.objective_names()) <= 2 else "nsga3"
    return spec.sampler

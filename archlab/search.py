"""Multi-objective architecture search with Optuna over a space, measuring every candidate.

A trial samples an arch from the space (``trial.params``), builds the model, counts parameters and
MACs, computes the accuracy proxy, times it on this CPU, stores all of it as user attributes and
sets the latency budget as a constraint (``trial.set_constraint``), so infeasible trials are kept
and marked. Impossible knob combinations are pruned with their reason; a candidate that crashes
becomes a FAIL trial with its reason and the study goes on.
"""

from __future__ import annotations

import dataclasses
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
import torch

import archlab
from archlab.flops import count_macs, count_params
from archlab.latency import cpu_model, measure_latency
from archlab.objectives import DEFAULT_OBJECTIVES, get_objectives
from archlab.proxies import naswot, probe_batch
from archlab.space import SearchSpace, load_space
from archlab.storage import open_storage

__all__ = ["SAMPLERS", "SearchError", "SearchResult", "SearchSpec", "evaluate_arch", "run_search"]

SAMPLERS = ("nsga2", "tpe", "random", "nsga3")
# Settings that define what a study measures: resuming with different values would mix figures.
_IDENTITY_FIELDS = ("space", "space_yaml", "objectives", "target_latency_s", "resolution", "threads")


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
    sampler: str = "nsga2"
    population_size: int = 24
    seed: int | None = 0
    threads: int = 1
    resolution: int | None = None  # None: the space's resolution
    proxy_batch: int = 8
    latency_max_time_s: float = 3.0

    def resolved_name(self) -> str:
        target_ms = round(self.target_latency_s * 1000)
        return self.study_name or f"{self.space_name()}@{target_ms}ms"

    def space_name(self) -> str:
        return self.space.rsplit("/", 1)[-1].removesuffix(".yaml").removesuffix(".yml")


@dataclass
class SearchResult:
    study: optuna.Study
    spec: SearchSpec
    interrupted: bool = False
    new_trials: int = 0
    stored_spec: dict[str, Any] = field(default_factory=dict)


def _sampler(spec: SearchSpec, seed: int | None) -> optuna.samplers.BaseSampler:
    if spec.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=spec.population_size, seed=seed)
    if spec.sampler == "nsga3":
        return optuna.samplers.NSGAIIISampler(population_size=spec.population_size, seed=seed)
    if spec.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise SearchError(f"unknown sampler {spec.sampler!r}; choose from {list(SAMPLERS)}")


def evaluate_arch(
    space: SearchSpace, arch: dict[str, Any], spec: SearchSpec, resolution: int
) -> dict[str, Any]:
    """Build and measure one arch; returns its metrics."""
    cfg = space.to_cfg(arch)
    torch.manual_seed(0 if spec.seed is None else spec.seed)
    model = space.family.build(cfg).eval()
    macs = count_macs(model, resolution)
    latency = measure_latency(
        model, resolution, threads=spec.threads, max_time_s=spec.latency_max_time_s
    )
    return {
        "params": count_params(model),
        "macs": macs.total,
        "naswot": naswot(model, probe_batch(spec.proxy_batch, resolution)),
        "latency_ms": latency.median_ms,
        "latency_iqr_ms": latency.iqr_ms,
        "latency_ci_rel": latency.ci_rel,
        "latency_runs": latency.runs,
        "unsupported_ops": macs.unsupported_ops,
    }


def _objective(
    space: SearchSpace, spec: SearchSpec, resolution: int
) -> Callable[[optuna.Trial], list[float]]:
    objectives = get_objectives(spec.objectives)

    def objective(trial: optuna.Trial) -> list[float]:
        arch = space.suggest(trial)
        try:
            space.to_cfg(arch)
        except ValueError as err:  # an impossible combination of knobs: no candidate to measure
            trial.set_user_attr("prune_reason", str(err))
            raise optuna.TrialPruned(str(err)) from None
        try:
            metrics = evaluate_arch(space, arch, spec, resolution)
        except Exception as err:  # the candidate crashed or ran out of memory: keep the reason
            trial.set_user_attr("fail_reason", f"{type(err).__name__}: {err}")
            trial.set_user_attr("traceback", traceback.format_exc(limit=8)[-4000:])
            raise
        for key, value in metrics.items():
            trial.set_user_attr(key, value)
        trial.set_constraint("latency", metrics["latency_ms"] / 1e3 - spec.target_latency_s)
        return [float(metrics[o.metric]) for o in objectives]

    return objective


def _stored_spec(spec: SearchSpec, space: SearchSpace, resolution: int) -> dict[str, Any]:
    with open(space.source) as f:
        space_yaml = f.read()
    stored = dataclasses.asdict(spec)
    stored.update(
        space=spec.space_name(),
        space_yaml=space_yaml,
        family=space.family.name,
        objectives=list(spec.objectives),
        resolution=resolution,
        cpu=cpu_model(),
        torch_version=str(torch.__version__),
        archlab_version=archlab.__version__,
        study_name=spec.resolved_name(),
    )
    stored.pop("storage", None)
    return stored


def _check_resume(study: optuna.Study, stored: dict[str, Any]) -> dict[str, Any]:
    previous = study.user_attrs.get("archlab_spec")
    if previous is None:
        if study.trials:
            raise SearchError(f"study {study.study_name!r} exists but was not created by archlab")
        study.set_user_attr("archlab_spec", stored)
        return stored
    differ = [k for k in _IDENTITY_FIELDS if previous.get(k) != stored.get(k)]
    if differ:
        shown = "; ".join(f"{k}: stored {previous.get(k)!r:.60} vs now {stored.get(k)!r:.60}"
                          for k in differ)
        raise SearchError(
            f"study {study.study_name!r} was created with other settings ({shown}); "
            "use another --study name or the same settings to resume"
        )
    return dict(previous)


def create_or_resume(spec: SearchSpec) -> tuple[optuna.Study, SearchSpace, dict[str, Any]]:
    """Open (or create) the study for ``spec`` and check a resumed one measures the same thing."""
    space = load_space(spec.space)
    resolution = spec.resolution or space.resolution
    space.resolution = resolution
    objectives = get_objectives(spec.objectives)
    storage = open_storage(spec.storage)
    study = optuna.create_study(
        storage=storage,
        study_name=spec.resolved_name(),
        directions=[o.direction for o in objectives],
        load_if_exists=True,
    )
    stored = _check_resume(study, _stored_spec(spec, space, resolution))
    study.set_metric_names([o.name for o in objectives])
    return study, space, stored


def run_search(
    spec: SearchSpec, callbacks: list[Callable[[optuna.Study, Any], None]] | None = None
) -> SearchResult:
    """Run (or resume) a study: ``spec.n_trials`` more trials or until ``spec.timeout_s``.

    Ctrl-C stops after marking the running trial as failed; every finished trial is kept.

    Example:
        >>> from archlab import run_search, SearchSpec
        >>> result = run_search(SearchSpec(space="plgvit", n_trials=2,
        ...                                storage="sqlite:////tmp/archlab-doc.db"))
        >>> len(result.study.trials) >= 2
        True
    """
    if spec.sampler not in SAMPLERS:
        raise SearchError(f"unknown sampler {spec.sampler!r}; choose from {list(SAMPLERS)}")
    study, space, stored = create_or_resume(spec)
    before = len(study.trials)
    # Offset the seed by the trials already run, so a resumed study does not replay its samples.
    seed = None if spec.seed is None else spec.seed + before
    study.sampler = _sampler(spec, seed)
    random.seed(seed)
    interrupted = False
    try:
        study.optimize(
            _objective(space, spec, space.resolution),
            n_trials=spec.n_trials,
            timeout=spec.timeout_s,
            catch=(Exception,),
            callbacks=callbacks,
            gc_after_trial=True,
        )
    except KeyboardInterrupt:
        interrupted = True
    return SearchResult(study, spec, interrupted, len(study.trials) - before, stored)

"""Multi-objective architecture search with Optuna over a space, measuring every candidate.

A trial samples an arch from the space (``trial.params``), builds the model, counts parameters and
MACs, computes the accuracy estimates its objectives ask for (zero-cost proxies or short training,
on the arch reduced to ``proxy_resolution``: :mod:`archlab.estimate.estimates`), times it on this
CPU, stores all of it as user attributes and sets the latency budget as a constraint
(``trial.set_constraint``), so infeasible trials are kept and marked. Each trial also stores the
hypervolume of the feasible front so far (:func:`archlab.study.hypervolume.record_hypervolume`).
Impossible knob combinations are pruned with their reason; a candidate that crashes becomes a FAIL
trial with its reason and the study goes on. The sampler ``auto`` is multivariate TPE for two
objectives and NSGA-III (Deb & Jain 2014) for three or four (:func:`resolve_sampler`).
"""

from __future__ import annotations

import dataclasses
import gc
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch

import archlab
from archlab.estimate.estimates import ESTIMATES, estimate_accuracy
from archlab.estimate.training import Progress, TrainSpec
from archlab.measurement.fast_macs import (
    BlockCount,
    UncountedOpError,
    count_macs_with_blocks,
)
from archlab.measurement.flops import MacCount, count_macs, count_params
from archlab.measurement.interleave import free_core_processes, measure_many_in_processes
from archlab.measurement.latency import cpu_model, measure_latency, torch_threads
from archlab.measurement.memory import memory_use, peak_memory
from archlab.predict.predictor import LatencyPredictor
from archlab.predict.profile import Anchor, DeviceProfile, current_setup
from archlab.predict.time_base import compare_to_profile, pick_anchors
from archlab.space import SearchSpace, load_space
from archlab.study.heartbeat import DEFAULT_GRACE_PERIOD_S, worker_id
from archlab.study.hypervolume import record_hypervolume
from archlab.study.objectives import DEFAULT_OBJECTIVES, Objective, get_objectives
from archlab.study.storage import STARTED_STATES, open_storage

__all__ = [
    "SAMPLERS",
    "SearchError",
    "SearchResult",
    "SearchSpec",
    "evaluate_arch",
    "make_sampler",
    "remeasure_front",
    "remeasure_processes",
    "remeasure_study_front",
    "resolve_sampler",
    "run_search",
    "run_trials",
    "train_spec",
]

# "auto": multivariate TPE for two objectives, NSGA-III (reference-point based) for three or four.
SAMPLERS = ("auto", "nsga2", "tpe", "random", "nsga3")
# Settings that define what a study measures: resuming with different values would mix figures.
_IDENTITY_FIELDS = (
    "space",
    "space_yaml",
    "objectives",
    "target_latency_s",
    "resolution",
    "threads",
    "proxy_resolution",
)
# ... and, when short training is an objective, its budget and data.
_TRAIN_FIELDS = ("train_steps", "train_batch", "data")
# Identity settings added later: a study stored before them had their default.
_LATENCY_FIELDS = {"latency_mode": "measured", "backend": "eager"}


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
    # Accuracy estimates (proxies, short training) run on the arch reduced to this input size.
    proxy_resolution: int = 64
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

    def space_name(self) -> str:
        return self.space.rsplit("/", 1)[-1].removesuffix(".yaml").removesuffix(".yml")


@dataclass
class SearchResult:
    study: optuna.Study
    spec: SearchSpec
    interrupted: bool = False
    new_trials: int = 0
    stored_spec: dict[str, Any] = field(default_factory=dict)


def resolve_sampler(spec: SearchSpec) -> str:
    """The sampler a spec runs: ``auto`` is multivariate TPE for 2 objectives, NSGA-III for 3-4.

    TPE because it is the sampler that reached random search's 300-trial hypervolume within 100
    trials on every seed of ``bench/search_efficiency.py``; NSGA-II did on one or two of three
    (README, "Samplers").
    """
    if spec.sampler == "auto":
        return "tpe" if len(spec.objectives) <= 2 else "nsga3"
    return spec.sampler


def make_sampler(spec: SearchSpec, seed: int | None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler of ``spec`` (see :func:`resolve_sampler`), seeded."""
    name = resolve_sampler(spec)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=spec.population_size, seed=seed)
    if name == "nsga3":
        return optuna.samplers.NSGAIIISampler(population_size=spec.population_size, seed=seed)
    if name == "tpe":
        # constant liar: workers running side by side do not all sample next to the same trials
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise SearchError(f"unknown sampler {spec.sampler!r}; choose from {list(SAMPLERS)}")


def train_spec(spec: SearchSpec, resolution: int) -> TrainSpec:
    """The short-training budget of a search (its data at the proxy resolution)."""
    return TrainSpec(
        steps=spec.train_steps,
        batch=spec.train_batch,
        resolution=min(spec.proxy_resolution, resolution),
        time_limit_s=spec.train_time_limit_s,
        seed=0 if spec.seed is None else spec.seed,
        data=spec.data,
    )


def _estimates(
    space: SearchSpace,
    arch: dict[str, Any],
    spec: SearchSpec,
    resolution: int,
    progress: Progress | None,
) -> dict[str, Any]:
    """The accuracy estimates the objectives read, on the arch reduced to the proxy resolution."""
    wanted = [o.metric for o in get_objectives(spec.objectives) if o.metric in ESTIMATES]
    return estimate_accuracy(
        space,
        arch,
        wanted,
        resolution=min(spec.proxy_resolution, resolution),
        proxy_batch=spec.proxy_batch,
        seed=0 if spec.seed is None else spec.seed,
        train=train_spec(spec, resolution),
        progress=progress,
    )


def evaluate_arch(
    space: SearchSpace,
    arch: dict[str, Any],
    spec: SearchSpec,
    resolution: int,
    progress: Progress | None = None,
    predictor: LatencyPredictor | None = None,
) -> dict[str, Any]:
    """Build and measure one arch; returns its metrics (costs, latency, the estimates asked for).

    With a ``predictor`` the latency is predicted (``latency_ms_predicted``) instead of measured.
    """
    cfg = space.to_cfg(arch)
    torch.manual_seed(0 if spec.seed is None else spec.seed)
    model = space.family.build(cfg).eval()
    # count_macs' total without its JIT trace. The fast count raises on any op it has no entry
    # for, so one that returns leaves no op unsupported; else the reference counts and lists it.
    # In predicted mode the same pass finds the blocks the predictor looks up.
    # The same pass records the peak memory, at the spec's thread count.
    counted: MacCount | BlockCount
    try:
        with torch_threads(spec.threads):
            counted = count_macs_with_blocks(
                model, resolution, blocks=predictor is not None, memory=True
            )
        assert counted.activations_peak_bytes is not None  # asked for
        memory = memory_use(model, counted.input_bytes, counted.activations_peak_bytes)
        unsupported: dict[str, int] = {}
    except UncountedOpError:
        counted = count_macs(model, resolution)
        unsupported = counted.unsupported_ops
        memory = peak_memory(model, resolution, threads=spec.threads, warm=True)
    return {
        "params": count_params(model),
        "macs": counted.total,
        **_estimates(space, arch, spec, resolution, progress),
        **_latency_metrics(model, resolution, spec, counted, predictor),
        "peak_memory_bytes": memory.peak_bytes,
        "activations_peak_bytes": memory.activations_peak_bytes,
        "unsupported_ops": unsupported,
    }


def _latency_metrics(
    model: torch.nn.Module,
    resolution: int,
    spec: SearchSpec,
    macs: MacCount | BlockCount,
    predictor: LatencyPredictor | None,
) -> dict[str, Any]:
    if predictor is not None:
        pred = predictor.predict(model, resolution, macs)
        return {
            "latency_ms_predicted": pred.latency_ms,
            "latency_blocks_measured_on_demand": pred.measured_on_demand,
            "latency_blocks_estimated": pred.estimated,
        }
    latency = measure_latency(
        model,
        resolution,
        threads=spec.threads,
        max_time_s=spec.latency_max_time_s,
        backend=spec.backend,
    )
    return {
        "latency_ms": latency.median_ms,
        "latency_iqr_ms": latency.iqr_ms,
        "latency_ci_rel": latency.ci_rel,
        "latency_runs": latency.runs,
        "latency_contaminated_slices": latency.contaminated_slices,
    }


def _metric(metrics: dict[str, Any], name: str) -> Any:
    """A metric, or its predicted stand-in (``latency_ms`` → ``latency_ms_predicted``)."""
    return metrics[name] if name in metrics else metrics[f"{name}_predicted"]


def _predictor(spec: SearchSpec) -> LatencyPredictor | None:
    if spec.latency_mode == "measured":
        return None
    if spec.latency_mode != "predicted":
        raise SearchError(
            f"unknown latency mode {spec.latency_mode!r}; choose measured or predicted"
        )
    if not spec.latency_model:
        raise SearchError(
            "--latency predicted needs --latency-model PROFILE.json "
            "(made by archlab profile-device)"
        )
    choices = {"auto": None, "measure": True, "estimate": False}
    if spec.unseen_blocks not in choices:
        raise SearchError(
            f"unknown unseen-blocks policy {spec.unseen_blocks!r}; choose auto, measure or estimate"
        )
    return LatencyPredictor(spec.latency_model, on_demand=choices[spec.unseen_blocks])


def _objective(
    space: SearchSpace, spec: SearchSpec, resolution: int, progress: Progress | None = None
) -> Callable[[optuna.Trial], list[float]]:
    objectives = get_objectives(spec.objectives)
    predictor = _predictor(spec)

    def objective(trial: optuna.Trial) -> list[float]:
        trial.set_user_attr("worker", worker_id())
        arch = space.suggest(trial)
        try:
            space.to_cfg(arch)
        except ValueError as err:  # an impossible combination of knobs: no candidate to measure
            trial.set_user_attr("prune_reason", str(err))
            raise optuna.TrialPruned(str(err)) from None
        try:
            metrics = evaluate_arch(space, arch, spec, resolution, progress, predictor)
        except Exception as err:  # the candidate crashed or ran out of memory: keep the reason
            trial.set_user_attr("fail_reason", f"{type(err).__name__}: {err}")
            trial.set_user_attr("traceback", traceback.format_exc(limit=8)[-4000:])
            raise
        for key, value in metrics.items():
            trial.set_user_attr(key, value)
        slack = _metric(metrics, "latency_ms") / 1e3 - spec.target_latency_s
        trial.set_constraint("latency", slack)
        if spec.max_memory_bytes:
            memory_slack = metrics["peak_memory_bytes"] / spec.max_memory_bytes - 1
            trial.set_constraint("memory", memory_slack)
            slack = max(slack, memory_slack)
        values = [float(_metric(metrics, o.metric)) for o in objectives]
        _record_hypervolume(trial, values, slack <= 0, objectives)
        return values

    return objective


def _record_hypervolume(
    trial: optuna.Trial, values: list[float], feasible: bool, objectives: list[Objective]
) -> None:
    try:
        record_hypervolume(trial, values, feasible, [o.direction for o in objectives])
    except Exception as err:  # a bookkeeping figure must never cost a measured trial
        trial.set_user_attr("hypervolume_error", f"{type(err).__name__}: {err}")


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
    fields = _IDENTITY_FIELDS + (_TRAIN_FIELDS if "short_train" in stored["objectives"] else ())
    fields += tuple(_LATENCY_FIELDS)
    differ = [k for k in fields if previous.get(k, _LATENCY_FIELDS.get(k)) != stored.get(k)]
    if differ:
        shown = "; ".join(
            f"{k}: stored {previous.get(k)!r:.60} vs now {stored.get(k)!r:.60}" for k in differ
        )
        raise SearchError(
            f"study {study.study_name!r} was created with other settings ({shown}); "
            "use another --study name or the same settings to resume"
        )
    return dict(previous)


def started_trials(study: optuna.Study) -> int:
    """How many trials have started (queued ones, e.g. the corners, not yet)."""
    return len(study.get_trials(deepcopy=False, states=STARTED_STATES))


def seed_corners(study: optuna.Study, space: SearchSpace) -> None:
    """Queue the space's smallest and largest archs as the study's next trials."""
    for arch in space.corners():
        study.enqueue_trial(arch, user_attrs={"seeded": "corner"}, skip_if_exists=True)


def create_or_resume(spec: SearchSpec) -> tuple[optuna.Study, SearchSpace, dict[str, Any]]:
    """Open (or create) the study for ``spec`` and check a resumed one measures the same thing."""
    space = load_space(spec.space)
    resolution = spec.resolution or space.resolution
    space.resolution = resolution
    objectives = get_objectives(spec.objectives)
    storage = open_storage(spec.storage, grace_period_s=spec.grace_period_s)
    study = optuna.create_study(
        storage=storage,
        study_name=spec.resolved_name(),
        directions=[o.direction for o in objectives],
        load_if_exists=True,
    )
    new_study = "archlab_spec" not in study.user_attrs and not study.trials
    stored = _check_resume(study, _stored_spec(spec, space, resolution))
    if new_study and spec.corners and resolve_sampler(spec) != "random":
        seed_corners(study, space)
    if stored.get("grace_period_s") != spec.grace_period_s:  # workers that join read it from here
        stored["grace_period_s"] = spec.grace_period_s
        study.set_user_attr("archlab_spec", stored)
    study.set_metric_names([o.name for o in objectives])
    return study, space, stored


def run_search(
    spec: SearchSpec,
    callbacks: list[Callable[[optuna.Study, Any], None]] | None = None,
    progress: Progress | None = None,
) -> SearchResult:
    """Run (or resume) a study: ``spec.n_trials`` more trials or until ``spec.timeout_s``.

    Ctrl-C stops after marking the running trial as failed; every finished trial is kept.
    ``progress(step, steps, loss)`` is called during short training (objective ``short_train``).

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
    before = started_trials(study)
    # Offset the seed by the trials already run, so a resumed study does not replay its samples.
    seed = None if spec.seed is None else spec.seed + before
    _predictor(spec)  # a bad profile fails here, before any trial
    interrupted = run_trials(study, space, spec, seed, callbacks, progress)
    if spec.latency_mode == "predicted" and not interrupted:
        remeasure_front(study, space, spec)
    return SearchResult(study, spec, interrupted, started_trials(study) - before, stored)


def remeasure_study_front(study: optuna.Study, spec: SearchSpec) -> dict[str, Any]:
    """:func:`remeasure_front` with the space rebuilt from the study's stored YAML."""
    from archlab.space import load_space_text

    stored = study.user_attrs["archlab_spec"]
    space = load_space_text(stored["space_yaml"], stored["space"])
    space.resolution = int(stored["resolution"])
    return remeasure_front(study, space, spec)


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
    the
    slices,
    in chunks of at most :data:`FRONT_CHUNK` models: a long search's front can hold hundreds, which
    each process would otherwise hold in memory at once. Each chunk is stored as it completes, so
    an interrupted re-measurement resumes where it stopped.

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


def _collect_garbage(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Free the last candidate's cyclic garbage before the next one is timed.

    What survives a collection is moved out of the collector's reach (``gc.freeze``): the objects
    of lazy imports (some 400,000 after the first trial: the profiler, the tracer, ...) and the
    study's growing cache of finished trials, all of which live as long as the process. Without it
    each full collection walked them again: 0.3-0.4 s per trial at first, and still ~25 ms per
    trial of a predicted-mode search with everything but the cache frozen. Objects that become
    garbage later are still freed by reference counting; only cycles formed before a freeze and
    broken after it would stay, which ``bench/eval_throughput.py`` checks by the search's RSS over
    1,000 trials.
    """
    gc.collect()
    gc.freeze()


def run_trials(
    study: optuna.Study,
    space: SearchSpace,
    spec: SearchSpec,
    seed: int | None,
    callbacks: list[Callable[[optuna.Study, Any], None]] | None = None,
    progress: Progress | None = None,
) -> bool:
    """Run ``spec.n_trials`` trials (or until ``spec.timeout_s``) of ``study`` in this process.

    The one evaluation loop behind both :func:`run_search` and ``archlab.search.workers``: same
    sampler, objective, constraint and stored metrics, whichever process runs the trial.

    Returns:
        True if Ctrl-C stopped it (the running trial is then marked failed).
    """
    study.sampler = make_sampler(spec, seed)
    random.seed(seed)
    try:
        study.optimize(
            _objective(space, spec, space.resolution, progress),
            n_trials=spec.n_trials,
            timeout=spec.timeout_s,
            catch=(Exception,),
            callbacks=[_collect_garbage, *(callbacks or [])],
        )
    except KeyboardInterrupt:
        return True
    return False

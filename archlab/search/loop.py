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

import contextlib
import dataclasses
import gc
import logging
import random
import signal
import time
import traceback
from collections.abc import Callable
from typing import Any

import optuna
import torch

from archlab._version import __version__
from archlab.estimate.surrogate import FITTED_ESTIMATE, surrogate_for
from archlab.estimate.training import Progress
from archlab.measurement.latency import cpu_model
from archlab.search.defaults import default_objectives
from archlab.search.evaluate import evaluate_arch, latency_predictor, metric
from archlab.search.outputs import write_study_outputs
from archlab.search.remeasure import calibrate, remeasure_front
from archlab.search.signals import Interrupted, StopSignals
from archlab.space import SearchSpace, load_space
from archlab.study.heartbeat import worker_id
from archlab.study.hypervolume import record_hypervolume
from archlab.study.measured_front import correction_of
from archlab.study.objectives import Objective, get_objectives
from archlab.study.record import RECORD_ATTR, StudyRecord
from archlab.study.settings import (
    IDENTITY_FIELDS,
    LATENCY_FIELDS,
    LEGACY_PROBES,
    SAMPLERS,
    TRAIN_FIELDS,
    SearchError,
    SearchResult,
    SearchSpec,
    resolve_sampler,
)
from archlab.study.storage import STARTED_STATES, open_storage
from archlab.study.trials import LATENCY_MS, set_constraints

_log = logging.getLogger(__name__)

__all__ = [
    "check_search",
    "create_or_resume",
    "make_sampler",
    "run_search",
    "run_trials",
    "seed_corners",
    "started_trials",
]


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


def _objective(
    space: SearchSpace,
    spec: SearchSpec,
    resolution: int,
    progress: Progress | None = None,
    stop: StopSignals | None = None,
    latency_scale: float = 1.0,
) -> Callable[[optuna.Trial], list[float]]:
    """The objective of a trial. ``latency_scale`` multiplies predicted latencies before they are
    judged against the target: the correction an earlier re-measurement of the study fitted."""
    objectives = get_objectives(spec.objective_names())
    predictor = latency_predictor(spec)
    stop = stop or StopSignals()

    def measure(trial: optuna.Trial) -> list[float]:
        trial.set_user_attr("worker", worker_id())
        arch = space.suggest(trial)
        try:
            space.to_cfg(arch)
        except ValueError as err:  # an impossible combination of knobs: no candidate to measure
            trial.set_user_attr("prune_reason", str(err))
            raise optuna.TrialPruned(str(err)) from None
        try:
            with stop.interruptible():
                metrics = evaluate_arch(space, arch, spec, resolution, progress, predictor)
        except Exception as err:  # the candidate crashed or ran out of memory: keep the reason
            trial.set_user_attr("fail_reason", f"{type(err).__name__}: {err}")
            trial.set_user_attr("traceback", traceback.format_exc(limit=8)[-4000:])
            raise
        for key, value in metrics.items():
            trial.set_user_attr(key, value)
        latency_ms = metric(metrics, LATENCY_MS)
        if LATENCY_MS not in metrics and latency_scale != 1.0:
            latency_ms *= latency_scale
            trial.set_user_attr("latency_correction_scale", latency_scale)
        slacks = {"latency": latency_ms / 1e3 - spec.target_latency_s}
        if spec.max_memory_bytes:
            slacks["memory"] = metrics["peak_memory_bytes"] / spec.max_memory_bytes - 1
        set_constraints(trial, slacks)
        slack = max(slacks.values())
        values = [float(metric(metrics, o.metric)) for o in objectives]
        _record_hypervolume(trial, values, slack <= 0, objectives)
        return values

    def objective(trial: optuna.Trial) -> list[float]:
        try:
            stop.check()  # stopped while this trial was claimed or sampled
            return measure(trial)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: Optuna fails the trial, we say why
            trial.set_user_attr("fail_reason", "interrupted")
            raise

    return objective


def _record_hypervolume(
    trial: optuna.Trial, values: list[float], feasible: bool, objectives: list[Objective]
) -> None:
    try:
        record_hypervolume(trial, values, feasible, [o.direction for o in objectives])
    except Exception as err:  # a bookkeeping figure must never cost a measured trial
        trial.set_user_attr("hypervolume_error", f"{type(err).__name__}: {err}")


def _new_record(spec: SearchSpec, space: SearchSpace, resolution: int) -> StudyRecord:
    with open(space.source) as f:
        space_yaml = f.read()
    settings = dataclasses.replace(
        spec,
        space=spec.space_name(),
        resolution=resolution,
        study_name=spec.resolved_name(),
        storage=None,
    )
    return StudyRecord(
        settings,
        space_yaml=space_yaml,
        family=space.family.name,
        cpu=cpu_model(),
        torch_version=str(torch.__version__),
        archlab_version=__version__,
    )


def _check_resume(study: optuna.Study, stored: dict[str, Any]) -> dict[str, Any]:
    previous = study.user_attrs.get(RECORD_ATTR)
    if previous is None:
        if study.trials:
            raise SearchError(f"study {study.study_name!r} exists but was not created by archlab")
        study.set_user_attr(RECORD_ATTR, stored)
        return stored
    _check_same_settings(study.study_name, previous, stored)
    return dict(previous)


def _check_same_settings(name: str, previous: dict[str, Any], stored: dict[str, Any]) -> None:
    """Refuse to resume a study whose stored record measures something else than ``stored``."""
    fields = IDENTITY_FIELDS + (TRAIN_FIELDS if "short_train" in stored["objectives"] else ())
    fields += tuple(LATENCY_FIELDS)
    before_field = {**LATENCY_FIELDS, **LEGACY_PROBES}  # what a study stored before a field had
    differ = [k for k in fields if previous.get(k, before_field.get(k)) != stored.get(k)]
    if differ:
        shown = "; ".join(
            f"{k}: stored {previous.get(k, before_field.get(k))!r:.60} vs now {stored.get(k)!r:.60}"
            for k in differ
        )
        raise SearchError(
            f"study {name!r} was created with other settings ({shown}); "
            "use another --study name or the same settings to resume"
        )


def check_fitted_objective(spec: SearchSpec, space: SearchSpace) -> None:
    """A model fitted on a ground truth exists for the space, if an objective asks for one.

    Raises:
        SearchError: the objective ``knob_ridge`` on a space without a fitted model, or on one
            whose knobs differ from those it was fitted on.
    """
    if FITTED_ESTIMATE in spec.objective_names():
        try:
            surrogate_for(space.name, space.knobs)
        except ValueError as err:
            raise SearchError(f"--objectives: {err}") from None


def check_search(spec: SearchSpec) -> None:
    """What a search checks before its first trial, done up front and changing no study: the
    settings, the space, the device profile, the storage, and that a study of that name (if
    one exists) was made by archlab with the same settings.

    Raises:
        SearchError: bad settings, or a study that cannot be resumed with them.
        SpaceError: the space does not load.
        StorageError: the storage cannot be opened.
        ValueError: the device profile cannot be read.
    """
    spec.validate()
    space = load_space(spec.space)
    resolution = spec.resolution or space.resolution
    latency_predictor(spec)
    check_fitted_objective(spec, space)
    storage = open_storage(spec.storage, grace_period_s=spec.grace_period_s)
    try:
        study = optuna.load_study(study_name=spec.resolved_name(), storage=storage)
    except KeyError:  # a new study
        return
    previous = study.user_attrs.get(RECORD_ATTR)
    if previous is None:
        if study.trials:
            raise SearchError(f"study {study.study_name!r} exists but was not created by archlab")
        return
    spec = spec.with_defaults_of(previous, default_objectives(spec.space_name()))
    stored = _new_record(spec, space, resolution).to_attr()
    _check_same_settings(study.study_name, previous, stored)


def started_trials(study: optuna.Study) -> int:
    """How many trials have started (queued ones, e.g. the corners, not yet)."""
    return len(study.get_trials(deepcopy=False, states=STARTED_STATES))


def seed_corners(study: optuna.Study, space: SearchSpace) -> None:
    """Queue the space's smallest and largest archs as the study's next trials."""
    for arch in space.corners():
        study.enqueue_trial(arch, user_attrs={"seeded": "corner"}, skip_if_exists=True)


def _stored_record(storage: optuna.storages.BaseStorage, name: str) -> dict[str, Any] | None:
    """The archlab record of the study ``name``, or None for a new study (or a foreign one)."""
    try:
        return optuna.load_study(study_name=name, storage=storage).user_attrs.get(RECORD_ATTR)
    except KeyError:
        return None


def create_or_resume(
    spec: SearchSpec,
) -> tuple[optuna.Study, SearchSpace, dict[str, Any], SearchSpec]:
    """Open (or create) the study for ``spec`` and check a resumed one measures the same thing.

    Returns the study, its space, its stored record and ``spec`` with the settings it left unset
    resolved (a resumed study's own, else the defaults).
    """
    spec.validate()  # bad settings fail here, before any storage is opened
    space = load_space(spec.space)
    resolution = spec.resolution or space.resolution
    space.resolution = resolution
    storage = open_storage(spec.storage, grace_period_s=spec.grace_period_s)
    previous = _stored_record(storage, spec.resolved_name())
    spec = spec.with_defaults_of(previous, default_objectives(spec.space_name()))
    check_fitted_objective(spec, space)
    objectives = get_objectives(spec.objective_names())
    study = optuna.create_study(
        storage=storage,
        study_name=spec.resolved_name(),
        directions=[o.direction for o in objectives],
        load_if_exists=True,
    )
    new_study = RECORD_ATTR not in study.user_attrs and not study.trials
    stored = _check_resume(study, _new_record(spec, space, resolution).to_attr())
    if new_study and spec.corners and resolve_sampler(spec) != "random":
        seed_corners(study, space)
    if stored.get("grace_period_s") != spec.grace_period_s:  # workers that join read it from here
        stored["grace_period_s"] = spec.grace_period_s
        study.set_user_attr(RECORD_ATTR, stored)
    study.set_metric_names([o.name for o in objectives])
    return study, space, stored, spec


def run_search(
    spec: SearchSpec,
    callbacks: list[Callable[[optuna.Study, Any], None]] | None = None,
    progress: Progress | None = None,
) -> SearchResult:
    """Run (or resume) a study: ``spec.n_trials`` more trials or until ``spec.timeout_s``.

    Ctrl-C or SIGTERM stops it (:mod:`archlab.search.signals`): a trial being evaluated is failed
    with ``fail_reason`` "interrupted", every finished trial is kept, and the outputs are written
    all the same (``result.stop_signal`` says which signal). Otherwise a predicted-latency search
    then re-measures its front. The study folder gets ``spec.yaml`` and ``pareto.csv``
    (:mod:`archlab.search.outputs`).
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
    study, space, stored, spec = create_or_resume(spec)
    before = started_trials(study)
    # Offset the seed by the trials already run, so a resumed study does not replay its samples.
    seed = None if spec.seed is None else spec.seed + before
    latency_predictor(spec)  # a bad profile fails here, before any trial
    with StopSignals() as stop:
        signum = run_trials(study, space, spec, seed, callbacks, progress, stop=stop)
        if spec.latency_mode == "predicted" and signum is None:
            _remeasure_front(study, space, spec, stop)
        outputs = write_study_outputs(study, stored)
    signum = signum or stop.signum
    new_trials = started_trials(study) - before
    return SearchResult(study, spec, signum is not None, new_trials, stored, outputs, signum)


def _remeasure_front(
    study: optuna.Study, space: SearchSpace, spec: SearchSpec, stop: StopSignals
) -> None:
    """Re-measure the front, unless a stop signal cuts it short (a later run resumes it)."""
    try:
        with stop.interruptible():
            remeasure_front(study, space, spec)
    except Interrupted:
        pass


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
    *,
    stop: StopSignals | None = None,
    budget: Callable[[], bool] | None = None,
) -> int | None:
    """Run ``spec.n_trials`` trials (or until ``spec.timeout_s``) of ``study`` in this process.

    The one evaluation loop behind both :func:`run_search` and ``archlab.search.workers``: same
    sampler, objective, constraint and stored metrics, whichever process runs the trial. A trial
    that another worker finished meanwhile (it failed it as stale) is skipped with a warning.

    Args:
        stop: the stop signals to obey, if the caller has installed them (to cover what it does
            after the trials too); otherwise they are installed while the trials run.
        budget: called before each trial; False ends the loop (a budget shared by workers).

    Returns:
        The signal that stopped it (SIGINT or SIGTERM; a trial being evaluated is then failed
        with ``fail_reason`` "interrupted"), or None.
    """
    study.sampler = make_sampler(spec, seed)
    random.seed(seed)
    signals = StopSignals() if stop is None else contextlib.nullcontext(stop)
    with signals as stop:
        predicted = spec.latency_mode == "predicted"
        scale = correction_of(study).scale if predicted else 1.0
        objective = _objective(space, spec, space.resolution, progress, stop, scale)
        callbacks = [_collect_garbage, *(callbacks or [])]
        deadline = None if spec.timeout_s is None else time.monotonic() + spec.timeout_s
        started = 0
        try:
            while stop.signum is None and (spec.n_trials is None or started < spec.n_trials):
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if budget is not None and not budget():
                    break
                if predicted and started == spec.calibrate_after > 0:
                    scale = _calibrated_scale(study, space, spec, stop)
                    objective = _objective(space, spec, space.resolution, progress, stop, scale)
                started += 1
                _run_one_trial(study, objective, callbacks)
        except KeyboardInterrupt as err:  # Interrupted, or Ctrl-C without our handler
            return getattr(err, "signum", None) or stop.signum or signal.SIGINT
        return stop.signum


def _calibrated_scale(
    study: optuna.Study,
    space: SearchSpace,
    spec: SearchSpec,
    stop: StopSignals,
) -> float:
    """The latency scale for the rest of a predicted search: a study without a correction
    measures a few front members now and fits one (:func:`archlab.search.remeasure.calibrate`);
    one with a correction (resumed, or fitted by another worker) keeps the latest stored."""
    stored = correction_of(study)
    if stored.models:
        return stored.scale
    with stop.interruptible():
        fitted = calibrate(study, space, spec)
    if fitted.models:
        _log.info(
            "predictions calibrated on %d re-measured front models: x%.3f (95%% CI %.3f-%.3f)",
            fitted.models, fitted.scale, fitted.low, fitted.high,
        )  # fmt: skip
    return fitted.scale


def _run_one_trial(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], list[float]],
    callbacks: list[Callable[[optuna.Study, Any], None]],
) -> None:
    """One trial through ``study.optimize``, skipping it if another worker finished it first."""
    running: list[optuna.Trial] = []
    told: list[bool] = []

    def run(trial: optuna.Trial) -> list[float]:
        running.append(trial)
        return objective(trial)

    def on_told(_study: optuna.Study, _trial: Any) -> None:  # Optuna's first call after the tell
        told.append(True)

    try:
        study.optimize(run, n_trials=1, catch=(Exception,), callbacks=[on_told, *callbacks])
    except Exception as err:
        lost = _finished_elsewhere(study, running, told)
        if lost is None:
            raise
        _log.warning(
            "trial %d was finished by another worker (%s%s) while this one ran it; skipping it "
            "(%s: %s)",
            lost.number,
            lost.state.name,
            f": {lost.user_attrs['fail_reason']}" if "fail_reason" in lost.user_attrs else "",
            type(err).__name__,
            err,
        )


def _finished_elsewhere(
    study: optuna.Study, running: list[optuna.Trial], told: list[bool]
) -> optuna.trial.FrozenTrial | None:
    """The trial this process ran, if it could not record its result because the trial was
    already finished (a stale-trial check of another worker failed it)."""
    if not running or told:
        return None
    number = running[0].number
    trial = study.get_trials(deepcopy=False)[number]
    return trial if trial.state.is_finished() else None

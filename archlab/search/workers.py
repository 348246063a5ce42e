"""Scale-out: join a study from any process or machine, or run several local workers on one storage.

A study stores everything that defines it in its record (:mod:`archlab.study.record`: the
space's full YAML text, objectives, target, resolution, threads, seed, grace period), so a worker
needs only the study's name and storage URL: it rebuilds the space from the stored text and runs
trials with the same loop as :func:`archlab.search.loop.run_search`
(:func:`archlab.search.loop.run_trials`).
Optuna coordinates the workers through the storage; ``archlab.study.heartbeat`` fails (and retries
once) the trial of a worker that dies mid-trial.

``run_workers`` starts N ``archlab worker`` processes on this machine, one CPU thread each by
default: on a 2-core machine two 1-thread workers slow each other by only a few percent, so they
about double the trials per hour. Their output goes to ``studies/<study>/workers/worker-<i>.log``.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch

from archlab.search.loop import create_or_resume, run_trials, started_trials
from archlab.search.outputs import write_study_outputs
from archlab.search.remeasure import remeasure_study_front
from archlab.search.worker_env import storage_in_environment
from archlab.space import SearchSpace
from archlab.study.record import load_record
from archlab.study.settings import SAMPLERS, SearchError, SearchResult, SearchSpec
from archlab.study.storage import default_storage_url, load_study, open_storage, study_dir

__all__ = ["WorkersResult", "join_study", "run_worker", "run_workers"]

_FINISHED = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
)
# Spacing of the workers' sampler seeds, so no two workers of one run draw the same samples.
_SEED_STRIDE = 1_000_003


@dataclass
class WorkersResult(SearchResult):
    """A :class:`SearchResult` from several worker processes, with how each one ended."""

    exit_codes: list[int] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def failed_workers(self) -> list[tuple[int, int, Path]]:
        """(worker index, exit code, log file) of each worker that did not exit cleanly."""
        return [(i, code, self.logs[i]) for i, code in enumerate(self.exit_codes) if code != 0]


def join_study(
    study_name: str, storage: str | None = None
) -> tuple[optuna.Study, SearchSpace, SearchSpec, dict[str, Any]]:
    """Open an existing study with all a worker needs to run its trials, from the storage alone.

    Raises:
        StorageError: no such study, or it was not created by ``archlab search`` (or by one too
            old to store its space).
        SpaceError: the stored space no longer validates (e.g. a family changed since).
    """
    record = load_record(load_study(study_name, storage))
    space = record.space()
    spec = record.spec(storage)
    study = optuna.load_study(
        study_name=study_name, storage=open_storage(storage, grace_period_s=spec.grace_period_s)
    )
    return study, space, spec, record.to_attr()


def run_worker(
    study_name: str,
    storage: str | None = None,
    *,
    n_trials: int | None = None,
    timeout_s: float | None = None,
    seed: int | None = None,
    callbacks: list[Callable[[optuna.Study, Any], None]] | None = None,
) -> SearchResult:
    """Join a study and run trials until ``n_trials`` or ``timeout_s`` (neither: until Ctrl-C).

    Args:
        study_name: the study to join (created by ``archlab search``).
        storage: its storage URL (default: the default SQLite file).
        n_trials: trials this worker runs.
        timeout_s: stop starting trials after this long.
        seed: the sampler's seed; None draws one from the OS, so workers differ.
        callbacks: called after each trial, as ``study.optimize`` does.

    Example:
        >>> from archlab.search.workers import run_worker
        >>> result = run_worker("plgvit@1000ms", n_trials=2)  # doctest: +SKIP
    """
    study, space, spec, stored = join_study(study_name, storage)
    spec = dataclasses.replace(spec, n_trials=n_trials, timeout_s=timeout_s)
    torch.set_num_threads(spec.threads)
    ran: list[int] = []

    def count(_study: optuna.Study, trial: Any) -> None:
        ran.append(trial.number)

    interrupted = run_trials(study, space, spec, seed, [count, *(callbacks or [])])
    return SearchResult(study, spec, interrupted, len(ran), stored)


def _shares(n_trials: int | None, workers: int) -> list[int | None]:
    """Split a trial budget over workers as evenly as possible (no worker with 0 trials)."""
    if n_trials is None:
        return [None] * workers
    shares = [n_trials // workers + (i < n_trials % workers) for i in range(workers)]
    return [s for s in shares if s > 0]


def _worker_command(
    study_name: str, url: str, share: int | None, spec: SearchSpec, seed: int | None
) -> list[str]:
    cmd = [sys.executable, "-m", "archlab.cli", "worker", "--study", study_name, "--storage", url]
    if share is not None:
        cmd += ["--n-trials", str(share)]
    if spec.timeout_s is not None:
        cmd += ["--timeout", f"{spec.timeout_s}s"]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    return cmd


def _launch(cmd: list[str], threads: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd, env = storage_in_environment(cmd, env)  # a password in argv would show in ps
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def _n_finished(study: optuna.Study, before: int) -> int:
    return sum(t.number >= before for t in study.get_trials(deepcopy=False, states=_FINISHED))


def _wait(
    procs: list[subprocess.Popen[bytes]],
    progress: Callable[[], None],
    poll_s: float,
) -> bool:
    """Wait for every worker; on Ctrl-C let them fail their running trial and exit.

    Returns:
        True if interrupted.
    """
    try:
        while any(p.poll() is None for p in procs):
            time.sleep(poll_s)
            progress()
    except KeyboardInterrupt:
        for proc in procs:  # a terminal's Ctrl-C reached them too; a kill of this process did not
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            proc.wait()
        return True
    return False


def run_workers(
    spec: SearchSpec,
    workers: int,
    on_progress: Callable[[int], None] | None = None,
    poll_s: float = 2.0,
) -> WorkersResult:
    """Create (or resume) the study of ``spec``, then run its trials in ``workers`` processes.

    ``spec.n_trials`` is split evenly over the workers; each runs ``archlab worker`` with its own
    sampler seed (derived from ``spec.seed``) and ``spec.threads`` CPU threads. Then, as
    :func:`archlab.search.loop.run_search` does, a predicted-latency search re-measures its front
    and the study folder gets ``spec.yaml`` and ``pareto.csv``.

    Args:
        spec: the search, as for :func:`archlab.search.loop.run_search`.
        workers: number of worker processes.
        on_progress: called with the number of trials finished so far, every ``poll_s`` seconds.
        poll_s: seconds between progress checks.

    Raises:
        SearchError: bad settings (as for ``run_search``), or fewer than one worker.
    """
    if workers < 1:
        raise SearchError(f"--workers must be at least 1, got {workers}")
    if spec.sampler not in SAMPLERS:
        raise SearchError(f"unknown sampler {spec.sampler!r}; choose from {list(SAMPLERS)}")
    study, _, stored, spec = create_or_resume(spec)
    before = started_trials(study)
    url = spec.storage or default_storage_url()
    log_dir = study_dir(study.study_name) / "workers"
    log_dir.mkdir(exist_ok=True)
    procs, logs = [], []
    for i, share in enumerate(_shares(spec.n_trials, workers)):
        seed = None if spec.seed is None else spec.seed + before + _SEED_STRIDE * i
        logs.append(log_dir / f"worker-{i}.log")
        cmd = _worker_command(study.study_name, url, share, spec, seed)
        procs.append(_launch(cmd, spec.threads, logs[-1]))

    def progress() -> None:
        if on_progress is not None:
            on_progress(_n_finished(study, before))

    interrupted = _wait(procs, progress, poll_s)
    progress()
    if spec.latency_mode == "predicted" and not interrupted:
        remeasure_study_front(study, spec)
    outputs = write_study_outputs(study, stored)
    new_trials = started_trials(study) - before
    codes = [int(p.returncode) for p in procs]
    return WorkersResult(study, spec, interrupted, new_trials, stored, outputs, codes, logs)

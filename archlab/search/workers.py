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
The workers draw their trials from one budget (a pipe holding a byte per trial), so when one dies
the others run what it had not started. The parent passes SIGINT and SIGTERM on to them and waits
for them (:mod:`archlab.search.signals`); they die with it.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
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
from archlab.search.signals import StopSignals, die_with_parent
from archlab.search.worker_env import storage_in_environment
from archlab.space import SearchSpace
from archlab.study.heartbeat import worker_id
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
    still_running: list[int] = field(default_factory=list)  # trials its dead workers left

    def failed_workers(self) -> list[tuple[int, int, Path]]:
        """(worker index, exit code, log file) of each worker that did not exit cleanly."""
        return [(i, code, self.logs[i]) for i, code in enumerate(self.exit_codes) if code != 0]

    def failures(self) -> list[str]:
        """One line per worker that did not exit cleanly: which one, how it ended and why."""
        lines = []
        for index, code, log in self.failed_workers():
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            why = _last_line(log)
            lines.append(f"Worker {index} {how}" + (f": {why}" if why else "") + f" (log: {log})")
        return lines

    def still_running_note(self) -> str | None:
        """What a dead worker left RUNNING, and when it will be failed and retried."""
        if not self.still_running:
            return None
        numbers = ", ".join(str(n) for n in self.still_running)
        one = len(self.still_running) == 1
        return (
            f"Trial{'' if one else 's'} {numbers} of a dead worker {'is' if one else 'are'} "
            f"still RUNNING: the next search of this study, or an archlab worker, fails "
            f"{'it' if one else 'them'} and retries {'it' if one else 'each'} once when "
            f"{'it has' if one else 'they have'} been silent for the grace period "
            f"({self.spec.grace_period_s} s)."
        )


def _last_line(log: Path) -> str:
    """The last non-blank line of a worker's log: its error message, or its last trial."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            tail = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


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


#: Environment of a worker started by ``run_workers``: its parent's pid and its trial budget.
PARENT_ENV = "ARCHLAB_PARENT_PID"
BUDGET_ENV = "ARCHLAB_TRIAL_BUDGET_FD"


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

    SIGTERM stops it as Ctrl-C does (:mod:`archlab.search.signals`). Started by
    :func:`run_workers`, it also stops when its parent exits or the budget they share runs out.

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
    if PARENT_ENV in os.environ:
        die_with_parent(int(os.environ[PARENT_ENV]))
    study, space, spec, stored = join_study(study_name, storage)
    spec = dataclasses.replace(spec, n_trials=n_trials, timeout_s=timeout_s)
    torch.set_num_threads(spec.threads)
    ran: list[int] = []

    def count(_study: optuna.Study, trial: Any) -> None:
        ran.append(trial.number)

    budget = _take_from(int(os.environ[BUDGET_ENV])) if BUDGET_ENV in os.environ else None
    signum = run_trials(study, space, spec, seed, [count, *(callbacks or [])], budget=budget)
    return SearchResult(study, spec, signum is not None, len(ran), stored, stop_signal=signum)


def _take_from(fd: int) -> Callable[[], bool]:
    """Take one trial from a budget shared by workers: False once it is used up."""
    return lambda: os.read(fd, 1) == b"+"


def _fill_budget(fd: int, n_trials: int) -> None:
    """Write a budget of ``n_trials`` trials into a pipe, then close it (the readers then see
    its end). A pipe holds 64 kB, so this blocks until the workers have taken most of a large
    budget: it runs in a thread."""
    try:
        for start in range(0, n_trials, 4096):
            os.write(fd, b"+" * min(4096, n_trials - start))
    except BrokenPipeError:  # every worker has exited
        pass
    finally:
        os.close(fd)


def _worker_command(study_name: str, url: str, spec: SearchSpec, seed: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "archlab.cli", "worker", "--study", study_name, "--storage", url]
    if spec.timeout_s is not None:
        cmd += ["--timeout", f"{spec.timeout_s}s"]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    return cmd


def _launch(
    cmd: list[str], threads: int, log: Path, budget_fd: int | None
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        PARENT_ENV: str(os.getpid()),
    }
    if budget_fd is not None:
        env[BUDGET_ENV] = str(budget_fd)
    cmd, env = storage_in_environment(cmd, env)  # a password in argv would show in ps
    with open(log, "wb") as out:
        # A session of its own: a terminal's Ctrl-C reaches the parent only, which passes it on
        # once (two would be two stops).
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            pass_fds=() if budget_fd is None else (budget_fd,),
            start_new_session=True,
        )


def _n_finished(study: optuna.Study, before: int) -> int:
    return sum(t.number >= before for t in study.get_trials(deepcopy=False, states=_FINISHED))


def _wait(
    procs: list[subprocess.Popen[bytes]],
    progress: Callable[[], None],
    poll_s: float,
) -> int | None:
    """Wait for every worker, passing SIGINT and SIGTERM on to them (each then fails the trial
    it is evaluating and exits).

    Returns:
        The first stop signal received, or None.
    """

    def forward(signum: int) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    with StopSignals(on_signal=forward) as stop:
        while any(p.poll() is None for p in procs):
            time.sleep(poll_s)
            progress()
    return stop.signum


def run_workers(
    spec: SearchSpec,
    workers: int,
    on_progress: Callable[[int], None] | None = None,
    poll_s: float = 2.0,
) -> WorkersResult:
    """Create (or resume) the study of ``spec``, then run its trials in ``workers`` processes.

    The workers share ``spec.n_trials``: each takes the next trial from the budget when it is
    free, so a worker that dies leaves its unstarted trials to the others. Each runs ``archlab
    worker`` with its own sampler seed (derived from ``spec.seed``) and ``spec.threads`` CPU
    threads. Then, as :func:`archlab.search.loop.run_search` does, a predicted-latency search
    re-measures its front and the study folder gets ``spec.yaml`` and ``pareto.csv``. SIGINT and
    SIGTERM are passed on to the workers, and their trials stopped as in ``run_search``.

    Args:
        spec: the search, as for :func:`archlab.search.loop.run_search`.
        workers: number of worker processes (at most one per trial).
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
    procs, logs = _start_workers(study, spec, min(workers, spec.n_trials or workers), before)

    def progress() -> None:
        if on_progress is not None:
            on_progress(_n_finished(study, before))

    signum = _wait(procs, progress, poll_s)
    progress()
    if spec.latency_mode == "predicted" and signum is None:
        remeasure_study_front(study, spec)
    outputs = write_study_outputs(study, stored)
    return WorkersResult(
        study,
        spec,
        interrupted=signum is not None,
        new_trials=started_trials(study) - before,
        stored_spec=stored,
        outputs=outputs,
        stop_signal=signum,
        exit_codes=[int(p.returncode) for p in procs],
        logs=logs,
        still_running=_left_running(study, procs),
    )


def _start_workers(
    study: optuna.Study, spec: SearchSpec, workers: int, before: int
) -> tuple[list[subprocess.Popen[bytes]], list[Path]]:
    """Start the worker processes, with a budget of ``spec.n_trials`` trials to share."""
    url = spec.storage or default_storage_url()
    log_dir = study_dir(study.study_name) / "workers"
    log_dir.mkdir(exist_ok=True)
    budget_fd, fill_fd = os.pipe() if spec.n_trials is not None else (None, None)
    procs, logs = [], []
    try:
        for i in range(workers):
            seed = None if spec.seed is None else spec.seed + before + _SEED_STRIDE * i
            logs.append(log_dir / f"worker-{i}.log")
            cmd = _worker_command(study.study_name, url, spec, seed)
            procs.append(_launch(cmd, spec.threads, logs[-1], budget_fd))
    finally:
        if budget_fd is not None and fill_fd is not None:
            os.close(budget_fd)  # the workers hold it now
            args = (fill_fd, spec.n_trials if procs else 0)
            threading.Thread(target=_fill_budget, args=args, daemon=True).start()
    return procs, logs


def _left_running(study: optuna.Study, procs: list[subprocess.Popen[bytes]]) -> list[int]:
    """Trials still RUNNING whose worker was one of ``procs`` (all of which have exited)."""
    host = worker_id().rsplit(":", 1)[0]
    ours = {f"{host}:{p.pid}" for p in procs}
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    return [t.number for t in running if t.user_attrs.get("worker") in ours]

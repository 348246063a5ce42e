"""Scale-out: workers joining a study from its storage alone, several processes on SQLite, a
journal file and PostgreSQL, and a worker killed mid-trial. The studies are ``quick_spec`` ones:
no accuracy estimate to compute (what is coordinated does not depend on it)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import STORAGES
from patched_cli import check_race
from typer.testing import CliRunner

import archlab.search.workers as workers_mod
from archlab.cli import app
from archlab.search.loop import create_or_resume
from archlab.search.workers import run_worker, run_workers
from archlab.space import load_space
from archlab.study.settings import SearchSpec
from archlab.study.storage import StorageError, load_study

optuna.logging.set_verbosity(optuna.logging.WARNING)
runner = CliRunner()
TrialState = optuna.trial.TrialState
PATCHED_CLI = Path(__file__).parent / "patched_cli.py"


def _worker(url: str, n_trials: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "archlab.cli", "worker", "--study", "t", "--storage", url]
    cmd += ["--n-trials", str(n_trials)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _check_no_trial_lost_or_duplicated(study: optuna.Study, n: int, workers: int) -> None:
    trials = study.get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(n))
    for trial in trials:
        assert trial.state in (TrialState.COMPLETE, TrialState.FAIL), trial.state
        if trial.state == TrialState.FAIL:
            assert trial.user_attrs["fail_reason"]
        else:
            assert trial.user_attrs["params"] > 0 and trial.user_attrs["macs"] > 0
    assert len({t.user_attrs["worker"] for t in trials}) == workers  # really separate processes


def test_worker_needs_only_the_study_name_and_storage(
    tiny_space_path: Path, storage_url: str, tmp_path: Path, quick_spec: Callable[..., SearchSpec]
) -> None:
    space_file = tmp_path / "gone.yaml"
    shutil.copy(tiny_space_path, space_file)
    # one sampled trial, no queue
    create_or_resume(quick_spec(space_file, storage_url, corners=False))
    space_file.unlink()  # the worker must rebuild the space from the text the study stores
    result = run_worker("t", storage_url, n_trials=1, seed=3)
    assert result.new_trials == 1 and not result.interrupted
    knobs = set(load_space(tiny_space_path).knobs)
    for trial in load_study("t", storage_url).trials:
        assert trial.state == TrialState.COMPLETE and set(trial.params) == knobs
        attrs = trial.user_attrs
        assert attrs["params"] > 0 and attrs["macs"] > 0 and attrs["latency_runs"] >= 10
        assert trial.values == [attrs["macs"], attrs["latency_ms"]]
        assert attrs["worker"].endswith(f":{os.getpid()}")


def test_worker_refuses_missing_and_foreign_studies(storage_url: str) -> None:
    with pytest.raises(StorageError, match=r"no study 'nope'"):
        run_worker("nope", storage_url, n_trials=1)
    optuna.create_study(study_name="plain", storage=storage_url)
    with pytest.raises(StorageError, match="not created by archlab search"):
        run_worker("plain", storage_url, n_trials=1)


def test_worker_cli_explains_a_missing_study(storage_url: str) -> None:
    result = runner.invoke(
        app, ["worker", "--study", "nope", "--storage", storage_url, "--n-trials", "1"]
    )
    assert result.exit_code == 2
    assert "no study 'nope'" in result.output and "Traceback" not in result.output


def test_search_with_two_workers_on_the_default_sqlite_file(
    tiny_space_path: Path,
    archlab_home: Path,
    quick_spec: Callable[..., SearchSpec],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each worker's first claim waits for the other's (a barrier in tests/patched_cli.py): on a
    # busy machine one worker could otherwise run both trials before the other has started.
    monkeypatch.setenv("ARCHLAB_TEST_RACE_DIR", str(tmp_path))
    monkeypatch.setenv("ARCHLAB_TEST_RACE_WORKERS", "2")
    _workers_through_patched_cli(monkeypatch)
    # Created first with a short latency cap, which the CLI's resume keeps and the workers read;
    # its two corner archs are the two queued trials the workers claim.
    create_or_resume(quick_spec(tiny_space_path, None, study_name="cli"))
    args = ["search", "--space", str(tiny_space_path), "--study", "cli", "--n-trials", "2"]
    args += ["--workers", "2", "--seed", "1", "--objectives", "macs,latency"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 new trials" in result.output, result.output
    _check_no_trial_lost_or_duplicated(load_study("cli"), 2, workers=2)
    check_race(tmp_path, 2)
    assert sorted(p.name for p in (archlab_home / "cli" / "workers").iterdir()) == [
        "worker-0.log",
        "worker-1.log",
    ]


def _workers_through_patched_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    real = workers_mod._worker_command

    def command(*args: Any, **kwargs: Any) -> list[str]:
        cmd = real(*args, **kwargs)
        return [cmd[0], str(PATCHED_CLI), *cmd[3:]]  # instead of "-m archlab.cli"

    monkeypatch.setattr(workers_mod, "_worker_command", command)


def test_search_exits_non_zero_naming_the_worker_that_failed_and_why(
    tiny_space_path: Path,
    archlab_home: Path,
    quick_spec: Callable[..., SearchSpec],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    create_or_resume(quick_spec(tiny_space_path, None, study_name="cli", corners=False))
    real, made = workers_mod._worker_command, []

    def command(*args: Any, **kwargs: Any) -> list[str]:  # the second worker crashes at once
        made.append(1)
        if len(made) == 2:
            return [sys.executable, "-c", "import sys; sys.exit('error: simulated crash')"]
        return real(*args, **kwargs)

    monkeypatch.setattr(workers_mod, "_worker_command", command)
    args = ["search", "--space", str(tiny_space_path), "--study", "cli", "--n-trials", "2"]
    result = runner.invoke(app, [*args, "--workers", "2", "--objectives", "macs,latency"])
    assert result.exit_code == 1, result.output
    assert "Worker 1 exited with code 1: error: simulated crash" in result.output


@pytest.mark.parametrize("kind", STORAGES)
def test_workers_racing_for_a_queued_trial_run_it_once(
    kind: str,
    storage_of: Callable[[str], tuple[str, str]],
    tiny_space_path: Path,
    tmp_path: Path,
    quick_spec: Callable[..., SearchSpec],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both workers read the first queued corner as WAITING before either claims it (a barrier
    and a delay injected into each worker's first claim): one must win, the other take the next."""
    url, name = storage_of(kind)
    race = tmp_path / "race"
    race.mkdir()
    monkeypatch.setenv("ARCHLAB_TEST_RACE_DIR", str(race))
    monkeypatch.setenv("ARCHLAB_TEST_RACE_WORKERS", "2")
    _workers_through_patched_cli(monkeypatch)
    # two corners queued, then one sampled trial
    result = run_workers(
        quick_spec(tiny_space_path, url, study_name=name, n_trials=3), 2, poll_s=0.2
    )
    asked = [int(n) for log in race.glob("asked-*") for n in log.read_text().split()]
    assert sorted(asked) == [0, 1, 2]  # no trial run twice, every asked trial run
    assert result.exit_codes == [0, 0]
    _check_no_trial_lost_or_duplicated(load_study(name, url), 3, workers=2)
    check_race(race, 2)


@pytest.mark.postgres
def test_three_workers_on_postgresql(
    storage_of: Callable[[str], tuple[str, str]],
    tiny_space_path: Path,
    archlab_home: Path,
    quick_spec: Callable[..., SearchSpec],
) -> None:
    url, name = storage_of("postgres")
    result = run_workers(
        quick_spec(tiny_space_path, url, study_name=name, n_trials=6), 3, poll_s=0.5
    )
    assert result.exit_codes == [0, 0, 0]
    _check_no_trial_lost_or_duplicated(load_study(name, url), 6, workers=3)


def _wait_for_running_trial(study: optuna.Study, proc: subprocess.Popen[bytes], knobs: int) -> int:
    """Number of a trial ``proc`` is measuring (its arch is sampled, its metrics not yet)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            mine = trial.user_attrs.get("worker", "").endswith(f":{proc.pid}")
            if mine and len(trial.params) == knobs:
                return trial.number
        time.sleep(0.05)
    raise AssertionError(f"the worker never started a trial (exit code {proc.poll()})")


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_killed_worker_trial_fails_with_reason_and_the_others_go_on(
    kind: str, tiny_space_path: Path, tmp_path: Path, quick_spec: Callable[..., SearchSpec]
) -> None:
    """A worker is SIGKILLed mid-trial. On the journal file a second worker process runs beside
    it (the multi-process journal test; SQLite's is the ``--workers 2`` test above)."""
    url = f"sqlite:///{tmp_path}/s.db" if kind == "sqlite" else f"journal://{tmp_path}/s.log"
    # no corner archs queued: the retry of the stale trial must be the next trial a worker takes
    spec = quick_spec(tiny_space_path, url, grace_period_s=2, corners=False)
    study, _, _, _ = create_or_resume(spec)
    victim = _worker(url, 50)
    others = [_worker(url, 1)] if kind == "journal" else []
    try:
        number = _wait_for_running_trial(study, victim, len(load_space(tiny_space_path).knobs))
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        assert [other.wait() for other in others] == [0] * len(others)  # they went on
    stale = study.get_trials(deepcopy=False)[number]
    time.sleep(3)  # past the 2 s grace period: the next worker to start a trial fails it
    assert run_worker("t", url, n_trials=1, seed=5).new_trials == 1
    trials = load_study("t", url).get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    failed = trials[stale.number]
    assert failed.state == TrialState.FAIL and failed.params == stale.params
    reason = failed.user_attrs["fail_reason"]
    assert reason.startswith(f"stale: no heartbeat from worker {failed.user_attrs['worker']}")
    (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == stale.number]
    assert retry.state == TrialState.COMPLETE and retry.params == stale.params
    assert retry.user_attrs["worker"] != failed.user_attrs["worker"]
    assert all(t.state == TrialState.COMPLETE for t in trials if t.number != stale.number)
    for other in others:
        assert sum(t.user_attrs["worker"].endswith(f":{other.pid}") for t in trials) == 1

"""Stopping searches: SIGINT and SIGTERM on a search and on the parent of ``--workers``, the parent
killed, a worker killed. Each search runs as a subprocess through ``patched_cli.py``, whose
processes hold each candidate after measuring it until the test releases them, so a signal always
arrives while a trial is evaluated. Every check is on what the storage holds afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from conftest import STORAGES

from archlab.search.loop import create_or_resume
from archlab.search.signals import Interrupted, StopSignals
from archlab.study.settings import SearchSpec
from archlab.study.storage import home, load_study, study_folder_name

TrialState = optuna.trial.TrialState
PATCHED_CLI = Path(__file__).parent / "patched_cli.py"
WAIT_S = 180  # a generous limit on each wait, only so that a broken test cannot hang


class _Search:
    """``archlab search`` of the tiny space as a subprocess, holding each measured candidate."""

    def __init__(self, spec: SearchSpec, hold: Path, n_trials: int, workers: int) -> None:
        cmd = [sys.executable, str(PATCHED_CLI), "search", "--space", spec.space]
        cmd += ["--study", str(spec.study_name), "--storage", str(spec.storage)]
        cmd += ["--n-trials", str(n_trials), "--objectives", "macs,latency"]
        cmd += ["--seed", str(spec.seed), "--workers", str(workers)]
        hold.mkdir()
        env = {**os.environ, "ARCHLAB_TEST_HOLD_DIR": str(hold)}
        self.hold = hold
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)

    def held(self, count: int) -> list[int]:
        """Pids of the processes holding a measured candidate, once there are ``count``."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and self.proc.poll() is None:
            pids = [int(p.name.split("-")[1]) for p in self.hold.glob("held-*")]
            if len(pids) >= count:
                return pids
            time.sleep(0.05)
        raise AssertionError(f"{count} held candidates never came:\n{self.output()}")

    def release(self) -> None:
        (self.hold / "release").touch()

    def output(self) -> str:
        try:
            out, _ = self.proc.communicate(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out.decode(errors="replace")


@pytest.fixture
def search(
    storage_of: Callable[[str], tuple[str, str]],
    tiny_space_path: Path,
    archlab_home: Path,
    tmp_path: Path,
    quick_spec: Callable[..., SearchSpec],
) -> Callable[..., tuple[_Search, optuna.Study]]:
    """``search(kind, n_trials, workers=1)``: a search started on a fresh study of that storage
    kind (created here first, with the short latency cap the CLI's resume keeps)."""

    def start(kind: str, n_trials: int, workers: int = 1) -> tuple[_Search, optuna.Study]:
        url, name = storage_of(kind)
        spec = quick_spec(tiny_space_path, url, study_name=name, corners=False)
        create_or_resume(spec)
        running = _Search(spec, tmp_path / "hold", n_trials, workers)
        return running, load_study(name, url)

    return start


def _worker_logs(study: optuna.Study) -> str:
    """What the study's worker processes wrote, to show beside a failed check."""
    logs = sorted((home() / study_folder_name(study.study_name) / "workers").glob("*.log"))
    return "".join(f"\n--- {log.name}\n{log.read_text(errors='replace')}" for log in logs)


def _check_interrupted(study: optuna.Study, held: int) -> None:
    """The trials being evaluated failed as interrupted; nothing else started or is left over."""
    trials = study.get_trials(deepcopy=False)
    states = [(t.number, t.state.name, t.user_attrs.get("worker")) for t in trials]
    assert [t.state for t in trials] == [TrialState.FAIL] * held, f"{states}{_worker_logs(study)}"
    assert all(t.user_attrs["fail_reason"] == "interrupted" for t in trials)


def _check_outputs(study: optuna.Study) -> None:
    folder = home() / study_folder_name(study.study_name)
    assert (folder / "spec.yaml").is_file() and (folder / "pareto.csv").is_file()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("kind", STORAGES)
def test_stop_signal_fails_the_running_trial_and_writes_the_outputs(
    kind: str, signum: int, search: Callable[..., tuple[_Search, optuna.Study]]
) -> None:
    running, study = search(kind, n_trials=5)
    running.held(1)
    running.proc.send_signal(signum)
    output = running.output()
    assert running.proc.returncode == 128 + signum, output
    assert "Interrupted" in output
    _check_interrupted(study, held=1)
    _check_outputs(study)


@pytest.mark.parametrize(
    ("kind", "signum"),
    [(kind, signal.SIGTERM) for kind in STORAGES] + [("sqlite", signal.SIGINT)],
)
def test_stop_signal_to_the_parent_stops_its_workers(
    kind: str, signum: int, search: Callable[..., tuple[_Search, optuna.Study]]
) -> None:
    running, study = search(kind, n_trials=6, workers=2)
    running.held(2)
    running.proc.send_signal(signum)
    output = running.output()
    assert running.proc.returncode == 128 + signum, output
    _check_interrupted(study, held=2)
    _check_outputs(study)


def _gone(pid: int) -> bool:
    """Whether a process has exited (a zombie nobody reaped counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("kind", STORAGES)
def test_workers_die_with_their_parent(
    kind: str, search: Callable[..., tuple[_Search, optuna.Study]]
) -> None:
    running, study = search(kind, n_trials=6, workers=2)
    workers = running.held(2)
    running.proc.kill()
    running.output()
    deadline = time.monotonic() + WAIT_S
    while not all(_gone(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(pid) for pid in workers)
    _check_interrupted(study, held=2)  # each failed its trial when its parent died


_COUNTS_ITS_STOPS = """
import os, signal, sys, time
from archlab.search.signals import die_with_parent
received = []
signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
die_with_parent(os.getppid())
open(sys.argv[1] + ".ready", "w").close()
deadline = time.monotonic() + 60
while not received and time.monotonic() < deadline:
    time.sleep(0.001)
time.sleep(0.3)  # a second notice would arrive meanwhile
open(sys.argv[1], "w").write(str(len(received)))
"""

_PARENT_WITH_THREADS = """
import subprocess, sys, threading, time
for _ in range(8):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
subprocess.Popen([sys.executable, sys.argv[1], sys.argv[2]])
time.sleep(60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's notice is Linux's")
def test_a_parent_with_threads_dying_is_one_stop(tmp_path: Path) -> None:
    """The kernel notifies a child once per thread of its parent that exits; a worker must see
    one SIGTERM all the same (three would force a stop while it records its interrupted trial)."""
    child, parent = tmp_path / "child.py", tmp_path / "parent.py"
    child.write_text(_COUNTS_ITS_STOPS)
    parent.write_text(_PARENT_WITH_THREADS)
    counts = []
    for attempt in range(8):  # the old notice came more than once in about half of the deaths
        out = tmp_path / f"stops-{attempt}"
        proc = subprocess.Popen([sys.executable, str(parent), str(child), str(out)])
        deadline = time.monotonic() + WAIT_S
        while not out.with_suffix(".ready").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.kill()
        proc.wait()
        while not (out.exists() and out.read_text()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert out.exists(), f"attempt {attempt}: the child wrote no count (it died or hung)"
        counts.append(int(out.read_text()))
    assert counts == [1] * 8


@pytest.mark.parametrize("kind", STORAGES)
def test_killed_worker_leaves_its_share_to_the_other_and_its_trial_is_reported(
    kind: str, search: Callable[..., tuple[_Search, optuna.Study]]
) -> None:
    running, study = search(kind, n_trials=4, workers=2)
    victim, _ = running.held(2)
    os.kill(victim, signal.SIGKILL)
    running.release()
    output = running.output()
    assert running.proc.returncode == 1, output  # a worker failed
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 4  # the other worker ran the share the killed one had not started
    (killed,) = [t for t in trials if t.user_attrs["worker"].endswith(f":{victim}")]
    assert killed.state == TrialState.RUNNING
    assert all(t.state == TrialState.COMPLETE for t in trials if t is not killed)
    last = output.strip().splitlines()[-1]
    assert f"Trial {killed.number} of a dead worker is still RUNNING" in last, output
    assert "was killed by signal 9" in output


def test_a_signal_outside_the_interruptible_part_waits_for_it() -> None:
    """In-process: a signal between trials is noted, and the next evaluation does not start."""
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)  # outside interruptible(): only noted
        assert stop.signum == signal.SIGTERM
        with pytest.raises(Interrupted) as raised:
            with stop.interruptible():
                pytest.fail("the evaluation started after the signal")
    assert raised.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is removed again

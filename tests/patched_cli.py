"""The archlab CLI with test hooks, for tests that need a subprocess to pause at a chosen point.

Run as ``python tests/patched_cli.py <archlab arguments>``. Workers that ``search --workers N``
starts run through this script too, so they get the same hooks. The hooks, chosen by environment
variables (all optional):

- ``ARCHLAB_TEST_RACE_DIR``, ``ARCHLAB_TEST_RACE_WORKERS``: the first claim of a queued trial in
  each process waits until that many processes reach it (a barrier of files in the folder), and on
  an RDB storage the claim sleeps between reading the trial's row and writing it. Two workers
  then read the same queued trial as WAITING before either marks it RUNNING, which is the race a
  storage must settle. Every trial a process asks for is appended to ``asked-<pid>`` there; a
  barrier that gave up waiting leaves ``barrier-timed-out-<pid>`` (see :func:`check_race`).
- ``ARCHLAB_TEST_HOLD_DIR``: after measuring a candidate, the process writes ``held-<pid>``
  there and waits until a file ``release`` appears, so that a test
  can signal or kill it while it evaluates a trial.
"""

from __future__ import annotations

import os
import runpy
import sys
import time
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
RACE_DELAY_S = 1.0  # between reading a claimed row and writing it: long enough for both readers
WAIT_LIMIT_S = 120.0  # a hook never waits longer than this, so a broken test cannot hang
BARRIER_TIMEOUT = "barrier-timed-out"  # a file left in the race folder when the barrier gave up


def _wait_for(done: Any) -> bool:
    """Wait until ``done()``; False if the limit passed first."""
    deadline = time.monotonic() + WAIT_LIMIT_S
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _race_hooks(folder: Path, workers: int) -> None:
    import optuna
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages._rdb import models

    first = {"claim": True, "read": True}

    def barrier() -> None:
        (folder / f"arrived-{os.getpid()}").touch()
        if not _wait_for(lambda: len(list(folder.glob("arrived-*"))) >= workers):
            (folder / f"{BARRIER_TIMEOUT}-{os.getpid()}").touch()  # the test then fails

    def hold_claims(cls: Any) -> None:
        real = cls.set_trial_state_values

        def set_state(self: Any, trial_id: int, state: Any, values: Any = None) -> bool:
            if state == optuna.trial.TrialState.RUNNING and first["claim"]:
                first["claim"] = False
                barrier()
            return real(self, trial_id, state, values)

        cls.set_trial_state_values = set_state

    hold_claims(RDBStorage)
    hold_claims(JournalStorage)
    real_find = models.TrialModel.find_or_raise_by_id.__func__  # type: ignore[attr-defined]

    def find(cls: Any, trial_id: int, session: Any, for_update: bool = False) -> Any:
        row = real_find(cls, trial_id, session, for_update)
        if for_update and first["read"]:
            first["read"] = False
            time.sleep(RACE_DELAY_S)
        return row

    models.TrialModel.find_or_raise_by_id = classmethod(find)  # type: ignore[method-assign]
    real_ask = optuna.Study.ask

    def ask(self: Any, *args: Any, **kwargs: Any) -> Any:
        trial = real_ask(self, *args, **kwargs)
        with open(folder / f"asked-{os.getpid()}", "a") as f:
            f.write(f"{trial.number}\n")
        return trial

    optuna.Study.ask = ask  # type: ignore[method-assign]


def _hold_hooks(folder: Path) -> None:
    import archlab.search.loop as loop

    real = loop.evaluate_arch

    def evaluate(*args: Any, **kwargs: Any) -> Any:
        metrics = real(*args, **kwargs)
        (folder / f"held-{os.getpid()}").touch()
        _wait_for(lambda: (folder / "release").exists())
        return metrics

    loop.evaluate_arch = evaluate


def _workers_run_here() -> None:
    import archlab.search.workers as workers

    real = workers._worker_command

    def command(*args: Any, **kwargs: Any) -> list[str]:
        cmd = real(*args, **kwargs)
        return [cmd[0], str(SCRIPT), *cmd[3:]]  # drop "-m archlab.cli"

    workers._worker_command = command


def check_race(folder: Path, workers: int) -> None:
    """Assert that ``workers`` processes met at the barrier in ``folder`` and none gave up."""
    arrived = sorted(p.name for p in folder.glob("arrived-*"))
    assert len(arrived) == workers, f"{len(arrived)} of {workers} workers reached the barrier"
    timed_out = sorted(p.name for p in folder.glob(f"{BARRIER_TIMEOUT}-*"))
    assert not timed_out, f"the barrier gave up waiting: {timed_out}"


def main() -> None:
    race = os.environ.get("ARCHLAB_TEST_RACE_DIR")
    if race:
        _race_hooks(Path(race), int(os.environ.get("ARCHLAB_TEST_RACE_WORKERS", "2")))
    hold = os.environ.get("ARCHLAB_TEST_HOLD_DIR")
    if hold:
        _hold_hooks(Path(hold))
    _workers_run_here()
    sys.argv[0] = "archlab"
    runpy.run_module("archlab.cli", run_name="__main__")


if __name__ == "__main__":
    main()

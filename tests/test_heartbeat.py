from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import STORAGES
from optuna.storages import RDBStorage
from optuna.storages._rdb import models

from archlab.study.heartbeat import HeartbeatJournalStorage, heartbeat_interval
from archlab.study.storage import StorageError, open_storage

TrialState = optuna.trial.TrialState


def test_heartbeat_interval_leaves_room_for_two_missed_beats() -> None:
    assert heartbeat_interval(180) == 60 and heartbeat_interval(2) == 1
    with pytest.raises(ValueError, match="at least 2 s"):
        heartbeat_interval(1)
    with pytest.raises(StorageError, match="at least 2 s"):
        open_storage("sqlite:///:memory:", grace_period_s=1)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_silent_running_trial_is_failed_with_reason_and_requeued_once(
    kind: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/s.db" if kind == "sqlite" else f"journal://{tmp_path}/s.log"
    study = optuna.create_study(storage=open_storage(url, grace_period_s=2))
    trial = study.ask()  # RUNNING; nothing beats for it, as if its process had died
    trial.suggest_int("x", 0, 9)
    trial.set_user_attr("worker", "elsewhere:1")
    if kind == "sqlite":  # Optuna ignores RDB trials that never beat: give it one, long ago
        study._storage.record_heartbeat(trial._trial_id)
    time.sleep(3)
    optuna.storages.fail_stale_trials(study)
    stale, retry = study.get_trials(deepcopy=False)
    assert stale.state == TrialState.FAIL
    assert stale.user_attrs["fail_reason"].startswith(
        "stale: no heartbeat from worker elsewhere:1 for over 2 s"
    )
    assert retry.state == TrialState.WAITING and retry.params == stale.params
    assert retry.user_attrs == {"retry_of": stale.number}


def _race_stale_checks(patch: pytest.MonkeyPatch, workers: int) -> None:
    """Make ``workers`` threads that fail stale trials all read a stale trial as RUNNING before
    any of them writes FAIL: a barrier between the read and the write, and on an RDB storage a
    delay between reading the trial's row (``FOR UPDATE``) and writing it."""
    barrier = threading.Barrier(workers, timeout=60)

    def hold_fail(cls: type) -> None:
        real = cls.set_trial_state_values  # type: ignore[attr-defined]

        def set_state(self: Any, trial_id: int, state: TrialState, values: Any = None) -> bool:
            if state == TrialState.FAIL:
                barrier.wait()
            return real(self, trial_id, state, values)

        patch.setattr(cls, "set_trial_state_values", set_state)

    hold_fail(RDBStorage)
    hold_fail(HeartbeatJournalStorage)
    real_find = models.TrialModel.find_or_raise_by_id.__func__  # type: ignore[attr-defined]

    def find(cls: Any, trial_id: int, session: Any, for_update: bool = False) -> Any:
        row = real_find(cls, trial_id, session, for_update)
        if for_update:
            time.sleep(0.5)
        return row

    patch.setattr(models.TrialModel, "find_or_raise_by_id", classmethod(find))


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
@pytest.mark.parametrize("kind", STORAGES)
def test_workers_finding_the_same_stale_trial_fail_and_retry_it_once(
    kind: str, storage_of: Callable[[str], tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, name = storage_of(kind)
    study = optuna.create_study(study_name=name, storage=open_storage(url, grace_period_s=2))
    trial = study.ask()
    trial.suggest_int("x", 0, 9)
    study._storage.record_heartbeat(trial._trial_id)  # type: ignore[attr-defined]
    time.sleep(3)
    _race_stale_checks(monkeypatch, workers=2)
    # two workers, each with its own connection to the storage, as two processes would have
    studies = [
        optuna.load_study(study_name=name, storage=open_storage(url, grace_period_s=2))
        for _ in range(2)
    ]
    errors: list[BaseException] = []

    def check(study: optuna.Study) -> None:
        try:
            optuna.storages.fail_stale_trials(study)
        except BaseException as err:  # re-raised below, in the test's own thread
            errors.append(err)

    threads = [threading.Thread(target=check, args=(s,)) for s in studies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    stale, *retries = study.get_trials(deepcopy=False)
    assert stale.state == TrialState.FAIL and stale.user_attrs["fail_reason"].startswith("stale")
    assert [(t.state, t.user_attrs) for t in retries] == [
        (TrialState.WAITING, {"retry_of": stale.number})
    ]

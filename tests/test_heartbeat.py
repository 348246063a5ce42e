from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest

from archlab.study.heartbeat import heartbeat_interval
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

"""Trial liveness across processes: a worker killed mid-trial leaves no trial RUNNING forever.

While a trial runs, a thread that Optuna starts with it records a heartbeat every
``heartbeat_interval(grace_period_s)`` seconds. Before any worker starts its next trial, Optuna's
``fail_stale_trials`` fails every RUNNING trial of the study whose last heartbeat is older than the
grace period. On top of Optuna's mechanism this module

- gives :class:`~optuna.storages.JournalStorage` a heartbeat (Optuna 5 has one for RDB storages
  only): the beat is a trial system attribute holding the writer's wall-clock time, so workers
  sharing a journal file from several machines need synchronised clocks (NTP);
- stores why the trial failed (user attribute ``fail_reason``, naming the silent worker) while the
  trial is still RUNNING, because a finished trial can no longer be annotated;
- re-queues a stale trial's arch once as a fresh trial (user attribute ``retry_of``), with Optuna's
  ``RetryHeartbeatStaleTrialCallback``: a killed worker is usually the machine's fault, not the
  arch's, but a second loss is not retried again.

When several workers find the same stale trial, only the first to fail it queues the retry: the
others' state change fails (``UpdateFinishedTrialError``, which Optuna skips). RDB storages settle
this with the row lock of Optuna's state change, which SQLite gets from
``archlab.study.storage``; a journal applies the first change in log order and raises for the
later ones.
"""

from __future__ import annotations

import copy
import os
import socket
import time
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages import RetryHeartbeatStaleTrialCallback as _OptunaRetry
from optuna.storages._heartbeat import BaseHeartbeat  # not re-exported; Optuna checks for it
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "DEFAULT_GRACE_PERIOD_S",
    "MAX_RETRY",
    "HeartbeatJournalStorage",
    "RetryStaleTrial",
    "heartbeat_interval",
    "journal_storage",
    "rdb_storage",
    "worker_id",
]

DEFAULT_GRACE_PERIOD_S = 180
MAX_RETRY = 1
_BEAT_ATTR = "archlab:heartbeat"
StaleCallback = Callable[[optuna.Study, FrozenTrial], None]


def worker_id() -> str:
    """``host:pid`` of this process, stored with each trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def heartbeat_interval(grace_period_s: int) -> int:
    """Seconds between heartbeats: a third of the grace period, so two beats may be missed.

    Raises:
        ValueError: the grace period is under 2 s (a beat must fit in it at least twice).
    """
    if grace_period_s < 2:
        raise ValueError(f"grace period must be at least 2 s, got {grace_period_s}")
    return max(1, grace_period_s // 3)


class RetryStaleTrial(_OptunaRetry):
    """Re-queue a stale trial once, as a fresh trial that remembers the one it replaces.

    The stale trial's partial user attributes (its ``fail_reason`` included) are not copied: the
    retry gets only ``retry_of``; Optuna's ``failed_trial`` and ``retry_history`` system
    attributes record the chain too.
    """

    def __init__(self, max_retry: int = MAX_RETRY) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            super().__init__(max_retry=max_retry)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        fresh = copy.copy(trial)
        fresh.user_attrs = {"retry_of": trial.number}
        super().__call__(study, fresh)


def _record_reasons(storage: BaseStorage, trial_ids: list[int], grace_period_s: float) -> None:
    """Write ``fail_reason`` on trials about to be failed as stale (skipping finished ones)."""
    for trial_id in trial_ids:
        silent = storage.get_trial(trial_id).user_attrs.get("worker", "unknown worker")
        reason = (
            f"stale: no heartbeat from worker {silent} for over {grace_period_s:g} s "
            f"(killed, crashed or cut off); failed by worker {worker_id()}"
        )
        try:
            storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        except UpdateFinishedTrialError:  # it finished (or another worker failed it) meanwhile
            pass


class _ReasonedRDBStorage(RDBStorage):
    """Optuna's RDB storage, recording why each stale trial is failed."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        _record_reasons(self, stale, float(self.grace_period or 0))
        return stale


def _last_beat(trial: FrozenTrial, now: float) -> float:
    """Wall-clock time of a trial's last heartbeat (its start if it died before the first)."""
    beat = trial.system_attrs.get(_BEAT_ATTR)
    if beat is not None:
        return float(beat)
    return trial.datetime_start.timestamp() if trial.datetime_start else now


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """A journal storage with heartbeats, so stale trials are failed as with RDB storages."""

    def __init__(
        self, backend: Any, grace_period_s: int, stale_callback: StaleCallback | None = None
    ) -> None:
        super().__init__(backend)
        self.grace_period = grace_period_s
        self.heartbeat_interval = heartbeat_interval(grace_period_s)
        self._stale_callback = stale_callback

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.set_trial_system_attr(trial_id, _BEAT_ATTR, time.time())
        except UpdateFinishedTrialError:  # failed as stale by another worker meanwhile
            pass

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        stale = [t._trial_id for t in running if now - _last_beat(t, now) > self.grace_period]
        _record_reasons(self, stale, self.grace_period)
        return stale

    def get_heartbeat_interval(self) -> int:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> StaleCallback | None:
        return self._stale_callback


def rdb_storage(
    url: str, grace_period_s: int, engine_kwargs: dict[str, Any] | None = None
) -> RDBStorage:
    """An RDB storage (SQLite, PostgreSQL, MySQL) with heartbeats and stale-trial retries."""
    interval = heartbeat_interval(grace_period_s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return _ReasonedRDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=interval,
            grace_period=grace_period_s,
            heartbeat_stale_trial_callback=RetryStaleTrial(),
        )


def journal_storage(path: str, grace_period_s: int) -> HeartbeatJournalStorage:
    """A journal-file storage with heartbeats and stale-trial retries."""
    return HeartbeatJournalStorage(JournalFileBackend(path), grace_period_s, RetryStaleTrial())

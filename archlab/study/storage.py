"""Where studies live: storage URLs, per-study output folders, loading studies and their trials.

The default storage is one SQLite file, ``studies/archlab.db`` (``$ARCHLAB_HOME`` overrides the
``studies`` folder), holding every study; each study also gets an output folder
``studies/<study>/`` for its ``spec.yaml`` and ``pareto.csv``. Any Optuna storage URL works
(``sqlite:///…``, ``postgresql://…``, ``mysql://…``), and ``journal:///path/to/file.log`` selects
Optuna's JournalStorage on a file. SQLite files are opened in WAL mode with a 60 s lock timeout,
so several worker processes on one machine can share one file.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage

from archlab.study.heartbeat import DEFAULT_GRACE_PERIOD_S, journal_storage, rdb_storage

__all__ = [
    "STARTED_STATES",
    "StorageError",
    "default_storage_url",
    "home",
    "list_studies",
    "load_study",
    "open_storage",
    "study_dir",
]

#: Trials that have started; a WAITING trial is only queued (e.g. a corner arch), knobs unset.
STARTED_STATES = tuple(s for s in optuna.trial.TrialState if s != optuna.trial.TrialState.WAITING)


class StorageError(ValueError):
    """A storage URL that cannot be opened, or a study that is not in it."""


def home() -> Path:
    """The folder for study storage and outputs (``$ARCHLAB_HOME`` or ``./studies``)."""
    return Path(os.environ.get("ARCHLAB_HOME", "studies")).resolve()


def default_storage_url() -> str:
    return f"sqlite:///{home() / 'archlab.db'}"


def study_dir(study_name: str) -> Path:
    """Output folder of a study (created on demand)."""
    safe = re.sub(r"[^A-Za-z0-9_.@=-]+", "_", study_name)
    path = home() / safe
    path.mkdir(parents=True, exist_ok=True)
    return path


# Seconds a SQLite writer waits for another process's lock before failing ("database is locked").
SQLITE_LOCK_TIMEOUT_S = 60


def open_storage(
    url: str | None = None, *, grace_period_s: int = DEFAULT_GRACE_PERIOD_S
) -> BaseStorage:
    """Open an Optuna storage from a URL (``None`` = the default SQLite file).

    Every storage records trial heartbeats: a trial whose worker has been silent for
    ``grace_period_s`` is failed (with its reason) and retried once by the next worker that starts
    a trial (see ``archlab.study.heartbeat``).

    Raises:
        StorageError: the URL is malformed or the storage cannot be reached; the message says why.
    """
    if grace_period_s < 2:
        raise StorageError(f"grace period must be at least 2 s, got {grace_period_s} s")
    url = url or default_storage_url()
    if url.startswith("journal://"):
        path = Path(url[len("journal://") :])
        if not path.parent.exists():
            raise StorageError(f"journal storage {url!r}: folder {path.parent} does not exist")
        return journal_storage(str(path), grace_period_s)
    if "://" not in url:
        raise StorageError(
            f"{url!r} is not a storage URL; use e.g. sqlite:///path/study.db, "
            "postgresql://user:pass@host/db or journal:///path/file.log"
        )
    url = _with_postgres_driver(url)
    sqlite = url.startswith("sqlite:///")
    engine_kwargs = None
    if sqlite:
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}}
    try:
        storage = rdb_storage(url, grace_period_s, engine_kwargs)
    except Exception as err:  # SQLAlchemy raises many types; all mean "cannot open"
        raise StorageError(f"cannot open storage {url!r}: {type(err).__name__}: {err}") from None
    if sqlite:
        _use_sqlite_wal(storage)
    return storage


def _use_sqlite_wal(storage: Any) -> None:
    """Write-ahead logging, synced at checkpoints: commits stop waiting for the disk.

    Without it every Optuna write (one per knob and attribute) is a transaction with its own fsync:
    with WAL, Optuna's bookkeeping per trial was 3-5× lower on a 2-core VM (see
    ``bench/storage_overhead.py``: ``sqlite`` vs ``sqlite-plain``), and
    readers no longer block the writer, which several workers on one file need. WAL needs all
    processes on one machine; several machines should share PostgreSQL instead.
    """
    import sqlalchemy

    def on_connect(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sqlalchemy.event.listen(storage.engine, "connect", on_connect)
    storage.engine.dispose()  # connections opened before the listener reconnect with it


def _with_postgres_driver(url: str) -> str:
    """Name the installed driver in a bare ``postgresql://`` URL.

    SQLAlchemy 2.1 reads a bare URL as psycopg 3; the ``postgres`` extra installs psycopg2.
    """
    if not url.startswith("postgresql://") or importlib.util.find_spec("psycopg") is not None:
        return url
    if importlib.util.find_spec("psycopg2") is None:
        raise StorageError(
            f"cannot open storage {url!r}: no PostgreSQL driver; install the "
            "postgres extra (pip install 'archlab[postgres]')"
        )
    return "postgresql+psycopg2://" + url[len("postgresql://") :]


def list_studies(url: str | None = None) -> list[optuna.study.StudySummary]:
    """Summaries of every study in a storage (empty if the default file does not exist yet)."""
    if url is None and not (home() / "archlab.db").exists():
        return []
    return optuna.get_all_study_summaries(open_storage(url), include_best_trial=False)


def load_study(study_name: str, url: str | None = None) -> optuna.Study:
    """Load an existing study.

    Raises:
        StorageError: no study of that name; the message lists the studies that exist.
    """
    storage = open_storage(url)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise StorageError(
            f"no study {study_name!r} in {url or default_storage_url()}; studies there: {names}"
        ) from None

"""Where studies live: storage URLs, per-study output folders, loading studies and their trials.

The default storage is one SQLite file, ``studies/archlab.db`` (``$ARCHLAB_HOME`` overrides the
``studies`` folder), holding every study; each study also gets an output folder
``studies/<study>/`` for its ``spec.yaml`` and ``pareto.csv``. Any Optuna storage URL works
(``sqlite:///…``, ``postgresql://…``, ``mysql://…``), and ``journal:///path/to/file.log`` selects
Optuna's JournalStorage on a file. SQLite files are opened in WAL mode with a 60 s lock timeout,
so several worker processes on one machine can share one file.

Reading never creates a storage (:func:`load_study`, :func:`list_studies`), and a URL is shown
with its password masked (:func:`masked_url`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage

from archlab.study.heartbeat import DEFAULT_GRACE_PERIOD_S, journal_storage, rdb_storage

__all__ = [
    "STARTED_STATES",
    "STORAGE_ENV",
    "MissingStorageError",
    "NAME_FILE",
    "StorageError",
    "default_storage_url",
    "home",
    "list_studies",
    "load_study",
    "masked_url",
    "open_storage",
    "optuna_url",
    "study_dir",
    "study_folder_name",
]

#: The environment variable that gives commands (and worker processes) the storage URL when no
#: ``--storage`` is given: unlike a command line, no other user can read it.
STORAGE_ENV = "ARCHLAB_STORAGE"

#: Trials that have started; a WAITING trial is only queued (e.g. a corner arch), knobs unset.
STARTED_STATES = tuple(s for s in optuna.trial.TrialState if s != optuna.trial.TrialState.WAITING)


class StorageError(ValueError):
    """A storage URL that cannot be opened, or a study that is not in it."""


def home() -> Path:
    """The folder for study storage and outputs (``$ARCHLAB_HOME`` or ``./studies``)."""
    return Path(os.environ.get("ARCHLAB_HOME", "studies")).resolve()


def default_storage_url() -> str:
    return f"sqlite:///{home() / 'archlab.db'}"


# A study name used as its folder name as it is: the characters archlab always allowed there
# (so folders of such studies keep their names), not starting with a dot (hidden, or "..").
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_@=-][A-Za-z0-9_.@=-]{0,99}")
NAME_FILE = "study_name.txt"  # in each study folder: the exact study name it belongs to


def study_folder_name(study_name: str) -> str:
    """The folder name of a study: safe on any file system and one per study name.

    A plain name (letters, digits, ``_.@=-``, not starting with a dot) is its own folder name;
    any other gets a readable slug plus ``~`` and 12 hex digits of its SHA-256, so ``..`` stays
    inside the studies folder and ``a/b`` or ``日本`` never share a folder with ``a_b`` or ``中文``
    (``~`` never appears in a plain name). The folder's ``study_name.txt`` gives the name back.
    """
    if _PLAIN_NAME.fullmatch(study_name):
        return study_name
    slug = re.sub(r"[^A-Za-z0-9_.@=-]+", "_", study_name).strip("._")[:60] or "study"
    return f"{slug}~{hashlib.sha256(study_name.encode()).hexdigest()[:12]}"


def study_dir(study_name: str) -> Path:
    """Output folder of a study (created on demand, with the name file)."""
    path = home() / study_folder_name(study_name)
    path.mkdir(parents=True, exist_ok=True)
    name_file = path / NAME_FILE
    if not name_file.exists():
        name_file.write_text(study_name + "\n")
    return path


# Seconds a SQLite writer waits for another process's lock before failing ("database is locked").
SQLITE_LOCK_TIMEOUT_S = 60


def open_storage(
    url: str | None = None, *, grace_period_s: int = DEFAULT_GRACE_PERIOD_S, create: bool = True
) -> BaseStorage:
    """Open an Optuna storage from a URL (``None`` = the default SQLite file).

    Every storage records trial heartbeats: a trial whose worker has been silent for
    ``grace_period_s`` is failed (with its reason) and retried once by the next worker that starts
    a trial (see ``archlab.study.heartbeat``).

    Args:
        url: the storage URL.
        grace_period_s: see above.
        create: whether a missing SQLite or journal file (and its folder) may be created; readers
            pass False.

    Raises:
        StorageError: the URL is malformed or the storage cannot be reached (or, with ``create``
            False, does not exist); the message says why, with the password masked.
    """
    if grace_period_s < 2:
        raise StorageError(f"grace period must be at least 2 s, got {grace_period_s} s")
    url = url or default_storage_url()
    if url.startswith("journal://"):
        return _open_journal(Path(url[len("journal://") :]), grace_period_s, create)
    if "://" not in url:
        raise StorageError(
            f"{masked_url(url)!r} is not a storage URL; use e.g. sqlite:///path/study.db, "
            "postgresql://user:pass@host/db or journal:///path/file.log"
        )
    url = _with_postgres_driver(url)
    sqlite = url.startswith("sqlite:///")
    engine_kwargs = None
    if sqlite:
        _check_sqlite_file(Path(url[len("sqlite:///") :]), create)
        engine_kwargs = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}}
    try:
        storage = rdb_storage(url, grace_period_s, engine_kwargs)
    except Exception as err:  # SQLAlchemy raises many types; all mean "cannot open"
        shown = str(err).replace(url, masked_url(url))
        raise StorageError(
            f"cannot open storage {masked_url(url)!r}: {type(err).__name__}: {shown}"
        ) from None
    if sqlite:
        _use_sqlite_wal(storage)
        _lock_rows_read_for_update(storage)
        storage.engine.dispose()  # connections opened before the listeners reconnect with them
    return storage


class MissingStorageError(StorageError):
    """A reader was pointed at a SQLite or journal file that does not exist."""


def _check_sqlite_file(path: Path, create: bool) -> None:
    if path.is_file() or str(path) == ":memory:":
        return
    if not create:
        raise MissingStorageError(f"no SQLite file at {path}")
    path.parent.mkdir(parents=True, exist_ok=True)


def _open_journal(path: Path, grace_period_s: int, create: bool) -> BaseStorage:
    """A journal-file storage, refusing a missing folder, or a file that is no journal."""
    if not path.exists():
        if not create:
            raise MissingStorageError(f"no journal file at {path}")
        if not path.parent.is_dir():
            raise StorageError(f"journal storage: folder {path.parent} does not exist")
    elif not path.is_file():
        raise StorageError(f"journal storage: {path} is not a file")
    else:
        _check_journal_head(path)
    try:
        return journal_storage(str(path), grace_period_s)
    except (OSError, ValueError) as err:  # unreadable, or a damaged entry further on
        raise StorageError(f"cannot open journal {path}: {type(err).__name__}: {err}") from None


def _check_journal_head(path: Path) -> None:
    """Refuse a file whose first line is not an Optuna journal entry (a JSON object)."""
    try:
        with open(path, "rb") as f:
            first = f.readline(1 << 16)
    except OSError as err:
        raise StorageError(f"cannot read journal {path}: {err.strerror}") from None
    if not first:
        return  # empty: a new journal
    try:
        entry = json.loads(first)
    except ValueError:
        entry = None
    if not isinstance(entry, dict) or "op_code" not in entry:
        raise StorageError(f"{path} is not an Optuna journal file (its first line is no entry)")


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


def _lock_rows_read_for_update(storage: Any) -> None:
    """Make SQLite honour ``SELECT … FOR UPDATE``: take the write lock before such a read.

    Optuna changes a trial's state by reading its row ``FOR UPDATE``, checking it, then writing
    it: claiming a queued (WAITING) trial, failing a stale one. SQLite has no row locks and drops
    the clause, and Python's sqlite3 runs a read outside any transaction, so two workers could
    both read WAITING and both claim the trial, or both fail a stale trial and both queue its
    retry. Opening the transaction with ``BEGIN IMMEDIATE`` before that read takes the database's
    write lock at once: the second worker waits (up to the lock timeout), then reads the row as
    the first one left it. Other reads keep running beside writers, as WAL allows.
    """
    import sqlalchemy

    def before_execute(connection: Any, statement: Any, *_args: Any) -> None:
        if getattr(statement, "_for_update_arg", None) is None:  # no public accessor
            return
        dbapi_connection = connection.connection.dbapi_connection
        if not dbapi_connection.in_transaction:
            dbapi_connection.execute("BEGIN IMMEDIATE")

    sqlalchemy.event.listen(storage.engine, "before_execute", before_execute)


def _with_postgres_driver(url: str) -> str:
    """Name the installed driver in a bare ``postgresql://`` URL.

    SQLAlchemy 2.1 reads a bare URL as psycopg 3; the ``postgres`` extra installs psycopg2.
    """
    if not url.startswith("postgresql://") or importlib.util.find_spec("psycopg") is not None:
        return url
    if importlib.util.find_spec("psycopg2") is None:
        raise StorageError(
            f"cannot open storage {masked_url(url)!r}: no PostgreSQL driver; install the "
            "postgres extra (pip install 'archlab[postgres]')"
        )
    return "postgresql+psycopg2://" + url[len("postgresql://") :]


def optuna_url(url: str) -> str:
    """The URL plain Optuna (``optuna.load_study(storage=...)``) opens the same storage with.

    A bare ``postgresql://`` gets the driver archlab uses (``postgresql+psycopg2://`` with the
    ``postgres`` extra); a ``journal://`` URL has none (see the README, "Storage").
    """
    try:
        return _with_postgres_driver(url)
    except StorageError:
        return url


def masked_url(url: str) -> str:
    """``url`` with its password, if any, shown as ``***`` (for printing and errors).

    Everything between ``user:`` and the last ``@`` before the query is masked, so a password
    holding an unescaped ``@`` is hidden whole.
    """
    head, sep, rest = url.partition("://")
    if not sep:
        return url
    query = rest.find("?")
    at = (rest if query < 0 else rest[:query]).rfind("@")
    if at < 0:
        return url
    user, colon, _ = rest[:at].partition(":")
    return f"{head}://{user}:***{rest[at:]}" if colon else url


def list_studies(url: str | None = None) -> list[optuna.study.StudySummary]:
    """Summaries of every study in a storage (empty if its SQLite or journal file is missing)."""
    try:
        storage = open_storage(url, create=False)
    except MissingStorageError:
        return []
    return optuna.get_all_study_summaries(storage, include_best_trial=False)


def load_study(study_name: str, url: str | None = None) -> optuna.Study:
    """Load an existing study, creating nothing.

    Raises:
        StorageError: no such storage, or no study of that name; the message lists the studies
            that exist.
    """
    shown = masked_url(url or default_storage_url())
    try:
        storage = open_storage(url, create=False)
    except MissingStorageError as err:
        raise StorageError(f"no study {study_name!r} in {shown}: {err}") from None
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise StorageError(f"no study {study_name!r} in {shown}; studies there: {names}") from None

"""Where studies live: storage URLs, per-study output folders, loading studies and their trials.

The default storage is one SQLite file, ``studies/archlab.db`` (``$ARCHLAB_HOME`` overrides the
``studies`` folder), holding every study; each study also gets an output folder
``studies/<study>/`` for its ``spec.yaml`` and ``pareto.csv``. Any Optuna storage URL works
(``sqlite:///…``, ``postgresql://…``, ``mysql://…``), and ``journal:///path/to/file.log`` selects
Optuna's JournalStorage on a file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

__all__ = [
    "StorageError",
    "default_storage_url",
    "home",
    "list_studies",
    "load_study",
    "open_storage",
    "study_dir",
]


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


def open_storage(url: str | None = None) -> BaseStorage:
    """Open an Optuna storage from a URL (``None`` = the default SQLite file).

    Raises:
        StorageError: the URL is malformed or the storage cannot be reached; the message says why.
    """
    url = url or default_storage_url()
    if url.startswith("journal://"):
        path = Path(url[len("journal://") :])
        if not path.parent.exists():
            raise StorageError(f"journal storage {url!r}: folder {path.parent} does not exist")
        return JournalStorage(JournalFileBackend(str(path)))
    if "://" not in url:
        raise StorageError(
            f"{url!r} is not a storage URL; use e.g. sqlite:///path/study.db, "
            "postgresql://user:pass@host/db or journal:///path/file.log"
        )
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    try:
        return RDBStorage(url, heartbeat_interval=60, grace_period=180)
    except Exception as err:  # SQLAlchemy raises many types; all mean "cannot open"
        raise StorageError(f"cannot open storage {url!r}: {type(err).__name__}: {err}") from None


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


def study_spec(study: optuna.Study) -> dict[str, Any]:
    """The settings a study was created with (see ``archlab.search.SearchSpec``)."""
    spec = study.user_attrs.get("archlab_spec")
    if not spec:
        raise StorageError(f"study {study.study_name!r} was not created by archlab search")
    return dict(spec)

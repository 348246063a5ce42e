from __future__ import annotations

import importlib.util
from pathlib import Path

import optuna
import pytest

from archlab.study.storage import (
    NAME_FILE,
    StorageError,
    list_studies,
    load_study,
    masked_url,
    open_storage,
    optuna_url,
    study_dir,
    study_folder_name,
)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@host:5432/db", "postgresql://u:***@host:5432/db"),
        ("postgresql+psycopg2://u:p@ss@host/db", "postgresql+psycopg2://u:***@host/db"),
        ("mysql://u:pw@host/db?ssl=a@b", "mysql://u:***@host/db?ssl=a@b"),
        ("postgresql://u@host/db", "postgresql://u@host/db"),
        ("sqlite:////tmp/a@b.db", "sqlite:////tmp/a@b.db"),
        ("journal:///tmp/x.log", "journal:///tmp/x.log"),
        ("not a url", "not a url"),
    ],
)
def test_masked_url_hides_the_password_only(url: str, shown: str) -> None:
    assert masked_url(url) == shown


@pytest.mark.parametrize(
    ("installed", "expected"),
    [
        ({"psycopg2"}, "postgresql+psycopg2://u:p@h/db"),  # the postgres extra
        ({"psycopg", "psycopg2"}, "postgresql://u:p@h/db"),  # SQLAlchemy picks psycopg 3
        ({"psycopg"}, "postgresql://u:p@h/db"),
    ],
)
def test_plain_optuna_url_names_the_driver(
    monkeypatch: pytest.MonkeyPatch, installed: set[str], expected: str
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: (
            (real("json") if name in installed else None)
            if name in ("psycopg", "psycopg2")
            else real(name, *a)
        ),
    )
    assert optuna_url("postgresql://u:p@h/db") == expected
    assert optuna_url("sqlite:///x.db") == "sqlite:///x.db"


def test_a_postgres_url_without_a_driver_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("psycopg", "psycopg2") else real(name, *a),
    )
    with pytest.raises(StorageError, match=r"no PostgreSQL driver.*archlab\[postgres\]") as info:
        open_storage("postgresql://u:secret@h/db")
    assert "secret" not in str(info.value)
    assert optuna_url("postgresql://u:p@h/db") == "postgresql://u:p@h/db"  # left for Optuna


@pytest.mark.parametrize("name", ["plgvit@1000ms", "cli", "t", "a_b", "run-3.v2", "x=1"])
def test_plain_study_names_keep_their_folder(name: str) -> None:
    assert study_folder_name(name) == name


def test_study_folders_are_safe_and_one_per_name() -> None:
    names = ["..", ".", "a/b", "a_b", "a b", "日本", "中文", "/etc", ".hidden", "a~b", "x" * 255]
    folders = [study_folder_name(n) for n in names]
    assert len(set(folders)) == len(names)
    for folder in folders:
        assert "/" not in folder and folder not in (".", "..") and not folder.startswith(".")
        assert len(folder.encode()) <= 100
    assert study_folder_name("a/b").startswith("a_b~")


def test_study_dir_stays_in_home_and_names_its_study(archlab_home: Path) -> None:
    for name in ("..", "a/b", "日本"):
        path = study_dir(name)
        assert path.parent == archlab_home
        assert (path / NAME_FILE).read_text().strip() == name
    assert sorted(p.name for p in archlab_home.parent.iterdir()) == ["studies"]


def test_readers_create_no_storage(tmp_path: Path) -> None:
    db = tmp_path / "missing" / "x.db"
    with pytest.raises(StorageError, match="no SQLite file at"):
        load_study("s", f"sqlite:///{db}")
    assert list_studies(f"sqlite:///{db}") == []
    assert list_studies(f"journal:///{tmp_path / 'x.log'}") == []
    assert not (tmp_path / "missing").exists() and not (tmp_path / "x.log").exists()


def test_a_file_that_is_no_journal_is_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(StorageError, match="not an Optuna journal file"):
        open_storage(f"journal:///{path}")
    assert path.read_text() == "root:x:0:0:root:/root:/bin/bash\n"


def test_a_journal_opens_again_after_it_is_written(tmp_path: Path) -> None:
    url = f"journal:///{tmp_path / 'j.log'}"
    optuna.create_study(study_name="s", storage=open_storage(url))
    assert [s.study_name for s in list_studies(url)] == ["s"]

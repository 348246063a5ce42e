from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from archlab.cli import app
from archlab.cli.common import STORAGE_ENV as CLI_STORAGE_ENV
from archlab.dashboard.launch import STORAGE_ENV as DASHBOARD_STORAGE_ENV
from archlab.search import workers
from archlab.search.worker_env import storage_in_environment
from archlab.study.storage import STORAGE_ENV

URL = "postgresql://archlab:s3cret@db.example/archlab"


def test_one_variable_carries_the_storage_everywhere() -> None:
    assert STORAGE_ENV == CLI_STORAGE_ENV == DASHBOARD_STORAGE_ENV == "ARCHLAB_STORAGE"


def test_storage_moves_from_the_command_line_to_the_environment() -> None:
    cmd = ["python", "-m", "archlab.cli", "worker", "--study", "s", "--storage", URL, "--seed", "1"]
    argv, env = storage_in_environment(cmd, {"PATH": "/bin"})
    assert argv == ["python", "-m", "archlab.cli", "worker", "--study", "s", "--seed", "1"]
    assert env == {"PATH": "/bin", STORAGE_ENV: URL}
    assert storage_in_environment(["x"], {}) == (["x"], {})


def test_worker_processes_get_no_password_in_argv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launched: dict[str, Any] = {}

    def fake_popen(cmd: list[str], **kwargs: Any) -> Any:
        launched.update(cmd=cmd, env=kwargs["env"])
        return None

    monkeypatch.setattr(subprocess, "Popen", fake_popen)
    cmd = workers._worker_command("s", URL, workers.SearchSpec(), 7)
    workers._launch(cmd, 1, tmp_path / "worker.log", None)
    assert not any("s3cret" in part for part in launched["cmd"])
    assert launched["env"][STORAGE_ENV] == URL


def test_the_worker_command_reads_the_storage_from_the_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    result = CliRunner().invoke(app, ["worker", "--study", "s"], env={STORAGE_ENV: url})
    assert result.exit_code == 2 and str(tmp_path / "w.db") in result.output
    assert not (tmp_path / "w.db").exists()

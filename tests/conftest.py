"""Shared fixtures: small inputs, one thread, a throw-away storage and study home per test."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def archlab_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the default storage and outputs (``studies/``) at a temporary folder."""
    home = tmp_path / "studies"
    monkeypatch.setenv("ARCHLAB_HOME", str(home))
    return home


@pytest.fixture
def storage_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


@pytest.fixture
def tiny_space_path() -> Path:
    """A PLG-ViT space at 64×64 with small widths: searches over it take about a second a trial."""
    return DATA / "tiny_plgvit.yaml"

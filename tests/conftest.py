"""Shared fixtures: small inputs, one thread, a throw-away storage and study home per test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class DashboardStudy:
    url: str  # storage URL
    home: Path  # $ARCHLAB_HOME: the study's output folder (reference cache) is under it
    name: str
    reference: str  # the preset measured as reference marker


@pytest.fixture(scope="session")
def dashboard_study(tmp_path_factory: pytest.TempPathFactory) -> DashboardStudy:
    """A tiny real search for the dashboard tests: 4 trials of the tiny space, the third failing
    (a simulated out-of-memory), plus one published variant measured at the study's resolution."""
    import archlab.search.loop as search
    from archlab.search.references import measure_references
    from archlab.study.storage import study_dir

    root = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{root / 'dashboard.db'}"
    study = DashboardStudy(url, root / "studies", "tiny", "lw_plgvit_r")
    real, calls = search.evaluate_arch, []

    def third_fails(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("out of memory: simulated")
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCHLAB_HOME", str(study.home))
        patch.setattr(search, "evaluate_arch", third_fails)
        spec = search.SearchSpec(
            space=str(DATA / "tiny_plgvit.yaml"),
            storage=study.url,
            study_name=study.name,
            n_trials=4,
            target_latency_s=0.02,
            seed=1,
            proxy_batch=4,
            latency_max_time_s=0.3,
        )
        result = search.run_search(spec)
        patch.setattr(search, "evaluate_arch", real)
        measure_references(result.stored_spec, study_dir(study.name), names=[study.reference])
    return study

"""Shared fixtures: small inputs, one thread, a throw-away storage and study home per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch
from ci import in_ci, missing
from idx_files import write_idx_set

if TYPE_CHECKING:
    from archlab.study.settings import SearchSpec

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def _fashion_mnist_or_stand_in(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Searches probe Fashion-MNIST by default. Where it is not installed (outside CI, which must
    install it), they probe IDX files the tests write instead, so that everything else still runs;
    the tests of the installed data set itself skip there."""
    from archlab.estimate.fashion_mnist import ENV_VAR, FashionMnistMissing, fashion_mnist_dir

    try:
        fashion_mnist_dir()
    except FashionMnistMissing:
        if in_ci():
            return  # the tests that need it fail, naming the package
        root = tmp_path_factory.mktemp("fashion-mnist-stand-in")
        write_idx_set(root, n_train=600, n_test=100)
        os.environ[ENV_VAR] = str(root)  # inherited by the CLI and worker subprocesses


@pytest.fixture
def archlab_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the default storage and outputs (``studies/``) at a temporary folder."""
    home = tmp_path / "studies"
    monkeypatch.setenv("ARCHLAB_HOME", str(home))
    return home


@pytest.fixture
def storage_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def postgres_url() -> str:
    """The test PostgreSQL server's URL; skips the test without one (fails it in CI)."""
    url = os.environ.get("ARCHLAB_TEST_POSTGRES_URL")
    if not url:
        missing("a PostgreSQL server", "set ARCHLAB_TEST_POSTGRES_URL; .ci/run starts one")
    return url


#: Storage kinds for ``storage_of``; parametrize a test with them to run it on each.
STORAGES = ["sqlite", "journal", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def storage_of(tmp_path: Path) -> Iterator[Callable[[str], tuple[str, str]]]:
    """``storage_of(kind)``: (URL, study name) for a fresh study on SQLite, a journal file or
    PostgreSQL (kinds: ``STORAGES``); the PostgreSQL study is deleted afterwards."""
    import optuna

    from archlab.study.storage import open_storage

    made: list[tuple[str, str]] = []

    def make(kind: str) -> tuple[str, str]:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path}/s.db", "t"
        if kind == "journal":
            return f"journal://{tmp_path}/s.log", "t"
        made.append((postgres_url(), f"test-{uuid.uuid4().hex[:8]}"))
        return made[-1]

    yield make
    for url, name in made:
        try:
            optuna.delete_study(study_name=name, storage=open_storage(url))
        except KeyError:  # the test stopped before creating it
            pass


@pytest.fixture
def tiny_space_path() -> Path:
    """A PLG-ViT space at 64×64 with small widths: searches over it take about a second a trial."""
    return DATA / "tiny_plgvit.yaml"


@pytest.fixture(scope="session")
def quick_spec() -> Callable[..., SearchSpec]:
    """``quick_spec(space, storage, **overrides)``: settings of a fast study "t" of 4 trials whose
    objectives (MACs and latency, timed for 0.3 s) need no accuracy estimate."""
    from archlab.study.settings import SearchSpec

    def make(space: Path, storage: str | None, **overrides: Any) -> SearchSpec:
        settings: dict[str, Any] = dict(
            space=str(space),
            storage=storage,
            study_name="t",
            n_trials=4,
            seed=1,
            objectives=("macs", "latency"),
            latency_max_time_s=0.3,
        )
        return SearchSpec(**{**settings, **overrides})

    return make


def fail_evaluation_at(patch: pytest.MonkeyPatch, call: int, error: BaseException) -> None:
    """Make the ``call``-th candidate evaluation of the search loop raise ``error``; the others are
    evaluated for real."""
    import archlab.search.loop as search

    real, calls = search.evaluate_arch, []

    def evaluate(*args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == call:
            raise error
        return real(*args, **kwargs)

    patch.setattr(search, "evaluate_arch", evaluate)


@pytest.fixture
def fail_evaluation(monkeypatch: pytest.MonkeyPatch) -> Callable[[int, BaseException], None]:
    """``fail_evaluation(n, error)``: the n-th candidate evaluation of the test's searches raises
    ``error`` (see :func:`fail_evaluation_at`)."""
    return partial(fail_evaluation_at, monkeypatch)


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
    real = search.evaluate_arch
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARCHLAB_HOME", str(study.home))
        fail_evaluation_at(patch, 3, RuntimeError("out of memory: simulated"))
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

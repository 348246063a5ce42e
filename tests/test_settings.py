from __future__ import annotations

from pathlib import Path

import pytest

from archlab.search.loop import run_search
from archlab.study.settings import SearchError, SearchSpec, available_cpus, check_workers


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"target_latency_s": float("inf")}, "--target-latency must be between"),
        ({"target_latency_s": 1e306}, "--target-latency must be between"),
        ({"grace_period_s": 10**400}, "--grace-period must be between"),
        ({"n_trials": 0}, "--n-trials must be between 1"),
        ({"n_trials": 1.5}, "--n-trials must be a whole number"),
        ({"resolution": 7}, "--resolution must be a multiple of 32"),
        ({"proxy_resolution": 0}, "--proxy-resolution must be between 32"),
        ({"threads": 0}, "--threads must be between 1"),
        ({"threads": True}, "--threads must be a whole number"),
        ({"study_name": "s" * 256}, "1 to 255 characters"),
        ({"objectives": ("latency",)}, "--objectives: give two to"),
        ({"latency_mode": "guessed"}, "--latency: 'guessed' is not one of"),
        ({"latency_mode": "predicted"}, "needs --latency-model"),
        ({"proxy_batch": 0}, "proxy_batch must be between 1"),
    ],
)
def test_run_search_refuses_bad_settings_before_opening_storage(
    tiny_space_path: Path, tmp_path: Path, change: dict[str, object], said: str
) -> None:
    db = tmp_path / "sub" / "s.db"
    spec = SearchSpec(space=str(tiny_space_path), storage=f"sqlite:///{db}", **change)  # type: ignore[arg-type]
    with pytest.raises(SearchError, match=said):
        run_search(spec)
    assert not (tmp_path / "sub").exists()


def test_defaults_and_unset_probes_validate() -> None:
    SearchSpec().validate()
    SearchSpec(proxy_resolution=None, proxy_data=None, n_trials=None, seed=None).validate()


def test_workers_are_capped_per_cpu() -> None:
    check_workers(1)
    with pytest.raises(SearchError, match="--workers must be between 1"):
        check_workers(0)
    with pytest.raises(SearchError, match="per CPU here"):
        check_workers(4 * available_cpus() + 1)

from __future__ import annotations

import pytest
import torch
from torch import nn

from archlab.measurement.latency import measure_latency, median_ci


def test_median_ci_brackets_the_median() -> None:
    samples = [float(i) for i in range(1, 101)]
    lo, hi = median_ci(samples)
    assert lo < 50.5 < hi
    assert hi - lo < 25  # ~ ±1 standard error of rank on 100 samples


def test_median_ci_narrows_with_more_samples() -> None:
    few = median_ci([float(i % 10) for i in range(20)])
    many = median_ci([float(i % 10) for i in range(2000)])
    assert many[1] - many[0] <= few[1] - few[0]


def test_measurement_respects_run_bounds_and_restores_threads() -> None:
    model = nn.Conv2d(3, 4, 3)
    before = torch.get_num_threads()
    lat = measure_latency(model, 32, threads=1, min_runs=5, max_runs=7, target_rel_ci=0.0)
    assert lat.runs == 7  # an unreachable CI target runs to max_runs
    assert torch.get_num_threads() == before
    assert lat.median_ms > 0 and lat.iqr_ms >= 0 and 0 <= lat.cv
    assert lat.env.threads == 1 and lat.env.resolution == 32 and lat.env.batch == 1


def test_measurement_stops_early_when_median_is_stable() -> None:
    lat = measure_latency(nn.Identity(), 8, min_runs=10, max_runs=500, target_rel_ci=10.0)
    assert lat.runs == 10


def test_time_cap_stops_measurement() -> None:
    class Slow(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            import time

            time.sleep(0.01)
            return x

    lat = measure_latency(Slow(), 8, min_runs=3, max_runs=1000, max_time_s=0.05, target_rel_ci=0.0)
    assert 3 <= lat.runs < 20


def test_environment_is_recorded() -> None:
    lat = measure_latency(nn.Identity(), 8, min_runs=3, max_runs=3, batch=2)
    assert lat.env.torch_version == torch.__version__
    assert lat.env.cpu and lat.env.allocator.startswith("glibc")
    assert lat.env.batch == 2
    assert "ms" in str(lat)


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_setting_is_used(threads: int) -> None:
    seen = []

    class Probe(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(torch.get_num_threads())
            return x

    measure_latency(Probe(), 8, threads=threads, min_runs=2, max_runs=2, warmup=0)
    assert set(seen) == {threads}


@pytest.mark.parametrize("backend", ["eager", "torchscript"])
def test_backend_and_memory_format_are_measured_and_recorded(backend: str) -> None:
    lat = measure_latency(
        nn.Conv2d(3, 4, 3),
        16,
        min_runs=3,
        max_runs=3,
        backend=backend,
        memory_format="channels_last",
    )
    assert lat.runs == 3 and lat.median_ms > 0
    assert lat.env.backend == backend and lat.env.memory_format == "channels_last"


def test_unknown_backend_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        measure_latency(nn.Identity(), 8, backend="tvm")


def test_contaminated_slices_are_run_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from archlab.measurement import contention

    loads = iter([5.0, 0.0] * 100)  # every slice: first attempt disturbed, retry clean

    def foreign(before: object, after: object) -> float:
        return next(loads)

    monkeypatch.setattr(contention, "foreign_cores", foreign)
    calls = []

    class Count(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(1)
            return x

    lat = measure_latency(Count(), 8, min_runs=4, max_runs=4, warmup=0, target_rel_ci=0.0)
    assert lat.runs == 4 and lat.reruns == 1 and lat.contaminated_slices == 0
    assert len(calls) == 8  # the disturbed slice's runs were thrown away


def test_latency_round_trips_through_a_dict() -> None:
    from archlab.measurement.latency import Latency

    lat = measure_latency(nn.Identity(), 8, min_runs=3, max_runs=3)
    assert Latency.from_dict(lat.as_dict()) == lat

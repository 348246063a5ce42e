from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from archlab.measurement.interleave import measure_many, measure_many_in_processes, paired_ratio
from archlab.measurement.latency import Latency, LatencyEnv, combine_processes
from archlab.space import load_space


class _Probe(nn.Module):
    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__()
        self.name, self.log = name, log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.log.append(self.name)
        return x


def _slices(log: list[str], size: int) -> list[str]:
    return [log[i] for i in range(0, len(log), size)]


def test_slices_go_round_robin_with_a_rotating_start() -> None:
    log: list[str] = []
    models = [_Probe(n, log) for n in "abc"]
    lats = measure_many(models, 8, slices=3, runs_per_slice=2, warmup=1, guard=False)
    timed = log[3:]  # after one warm-up pass each
    assert _slices(timed, 2) == list("abcbcacab")
    assert [lat.runs for lat in lats] == [6, 6, 6]
    assert all(lat.protocol == "interleaved" and lat.median_ms >= 0 for lat in lats)


def test_threads_are_set_and_restored() -> None:
    seen: list[int] = []

    class Threads(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(torch.get_num_threads())
            return x

    before = torch.get_num_threads()
    lats = measure_many([Threads()], 8, threads=2, slices=1, runs_per_slice=1, warmup=0)
    assert set(seen) == {2} and torch.get_num_threads() == before and lats[0].env.threads == 2


def test_bad_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="at least one model"):
        measure_many([], 8)
    with pytest.raises(ValueError, match="unknown memory format"):
        measure_many([nn.Identity()], 8, memory_format="nhwc")


def _latency(median: float, ci_rel: float, runs: int, **kw: int) -> Latency:
    env = LatencyEnv("cpu", 1, 1, 8)
    return Latency(median, 1.0, 0.1, ci_rel, runs, env, protocol="interleaved", **kw)


def test_processes_are_pooled_by_the_mean_of_their_medians() -> None:
    pooled = combine_processes(
        [_latency(10.0, 0.03, 8, reruns=1), _latency(14.0, 0.04, 8, contaminated_slices=2)]
    )
    assert pooled.median_ms == pytest.approx(12.0)
    # the CI of a mean of two independent medians: sqrt(0.3² + 0.56²) / 2 ms, relative to 12 ms
    assert pooled.ci_rel == pytest.approx(math.hypot(0.3, 0.56) / 2 / 12.0)
    counts = (pooled.runs, pooled.reruns, pooled.contaminated_slices, pooled.processes)
    assert counts == (16, 1, 2, 2)
    with pytest.raises(ValueError, match="nothing to combine"):
        combine_processes([])


def test_models_are_measured_in_several_processes_at_once(tiny_space_path: Path) -> None:
    space = load_space(str(tiny_space_path))
    configs = [space.to_config(space.default()), space.to_config(space.corners()[0])]
    lats = measure_many_in_processes(configs, 32, processes=2, slices=3, runs_per_slice=1)
    # 3 slices over 2 processes: 2 each (rounded up), 1 run per slice
    assert [(lat.processes, lat.runs) for lat in lats] == [(2, 4), (2, 4)]
    assert all(lat.median_ms > 0 and lat.protocol == "interleaved" for lat in lats)
    with pytest.raises(ValueError, match="at least one process"):
        measure_many_in_processes(configs, 32, processes=0)


def test_paired_ratio_gives_the_median_ratio_and_its_spread_over_rounds() -> None:
    # four rounds of two passes; the first runner is 10 % faster in every round but the last
    first = [9.0, 9.0, 18.0, 18.0, 9.0, 9.0, 20.0, 20.0]
    second = [10.0, 10.0, 20.0, 20.0, 10.0, 10.0, 10.0, 10.0]
    c = paired_ratio(first, second, 2)
    assert c.first_ms == 13.5 and c.second_ms == 10.0
    assert c.ratio == pytest.approx(1.35)
    assert c.round_q1 == pytest.approx(0.9)
    assert c.round_q3 > 1.0  # the odd round shows in the spread


def test_paired_ratio_refuses_lists_that_do_not_pair() -> None:
    with pytest.raises(ValueError, match="whole slices"):
        paired_ratio([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 2)
    with pytest.raises(ValueError, match="whole slices"):
        paired_ratio([1.0, 2.0], [1.0, 2.0, 3.0, 4.0], 2)
    with pytest.raises(ValueError, match="two rounds"):
        paired_ratio([1.0, 2.0], [1.0, 2.0], 2)

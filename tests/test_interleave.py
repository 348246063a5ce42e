from __future__ import annotations

import pytest
import torch
from torch import nn

from archlab.interleave import measure_many


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

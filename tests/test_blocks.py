from __future__ import annotations

import pytest
import torch
from torch import nn

from archlab.measurement.blocks import (
    block_infos,
    block_key,
    block_names,
    block_signature,
    stage_names,
    stage_of,
    time_in_context,
    time_in_context_many,
)
from archlab.measurement.flops import count_params
from archlab.models import FAMILIES
from archlab.space import load_space


class _ConvBlock(nn.Sequential):  # a Sequential subclass: a block, not a container
    def __init__(self, c: int) -> None:
        super().__init__(nn.Conv2d(c, c, 3, padding=1), nn.ReLU())


class _Toy(nn.Module):
    def __init__(self, width: int = 8, drop: float = 0.0) -> None:
        super().__init__()
        self.stem = _ConvBlock(3) if width == 3 else nn.Conv2d(3, width, 3, padding=1)
        self.stages = nn.ModuleList(
            [
                nn.Sequential(_ConvBlock(width), nn.Dropout(drop)),
                nn.Sequential(_ConvBlock(width)),
            ]
        )
        self.unused = nn.Linear(2, 2)
        self.head = nn.Linear(width, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(x.mean(dim=(2, 3)))


def test_stages_split_a_container_of_containers() -> None:
    assert stage_names(_Toy()) == ["stem", "stages.0", "stages.1", "unused", "head"]


def test_blocks_expand_plain_containers_only() -> None:
    assert block_names(_Toy()) == [
        "stem",
        "stages.0.0",
        "stages.0.1",
        "stages.1.0",
        "unused",
        "head",
    ]
    assert stage_of("stages.1.0", stage_names(_Toy())) == "stages.1"
    assert stage_of("nowhere", ["stem"]) is None


def test_block_key_ignores_weights_and_dropout_rates_but_not_widths() -> None:
    torch.manual_seed(0)
    a = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Dropout(0.1))
    torch.manual_seed(1)
    b = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Dropout(0.3))
    assert block_signature(a) == block_signature(b)
    assert block_signature(a) != block_signature(nn.Sequential(nn.Conv2d(3, 16, 3), nn.Dropout()))
    x = torch.randn(1, 3, 8, 8)
    assert block_key(a, (x,)).endswith("@1x3x8x8")
    assert block_key(a, (x,)) != block_key(a, (torch.randn(1, 3, 16, 16),))


def test_block_key_sees_plain_attributes() -> None:
    class Windowed(nn.Module):
        def __init__(self, window: int) -> None:
            super().__init__()
            self.window = window

    assert block_signature(Windowed(7)) != block_signature(Windowed(14))


def test_block_infos_lists_called_blocks_with_shared_keys() -> None:
    infos = block_infos(_Toy(), torch.randn(1, 3, 16, 16))
    names = [i.name for i in infos]
    assert names == ["stem", "stages.0.0", "stages.0.1", "stages.1.0", "head"]  # not "unused"
    keys = {i.name: i.key for i in infos}
    assert keys["stages.0.0"] == keys["stages.1.0"]  # same config, same input shape
    assert infos[0].kind == "Conv2d" and infos[0].calls == 1


def test_time_in_context_times_called_modules_over_the_runs() -> None:
    timing = time_in_context(_Toy(), torch.randn(1, 3, 16, 16), runs=4, warmup=1, guard=False)
    assert timing.runs == 4
    assert set(timing.module_ms) == {"stem", "stages.0.0", "stages.0.1", "stages.1.0", "head"}
    assert all(ms >= 0 for ms in timing.module_ms.values())
    assert sum(timing.module_ms.values()) <= timing.whole_ms * 1.5
    assert 0 < timing.share("stem") <= 1 and timing.share("unused") is None


def test_time_in_context_rejects_unknown_modules() -> None:
    with pytest.raises(KeyError, match="no module"):
        time_in_context(_Toy(), torch.randn(1, 3, 16, 16), ["nope"], runs=1)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_blocks_hold_every_parameter_of_a_family_model(family: str) -> None:
    space = load_space(family)
    torch.manual_seed(0)
    model = space.family.build(space.to_cfg(space.default()))
    modules = dict(model.named_modules())
    assert sum(count_params(modules[n]) for n in block_names(model)) == count_params(model)
    assert stage_names(model)


def test_time_in_context_many_interleaves_passes_and_removes_its_hooks() -> None:
    calls: list[int] = []

    class Tagged(_Toy):
        def __init__(self, tag: int) -> None:
            super().__init__()
            self.tag = tag

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(self.tag)
            return super().forward(x)

    models = [Tagged(0), Tagged(1), Tagged(2)]
    timings = time_in_context_many(models, torch.randn(1, 3, 16, 16), runs=3, warmup=1, guard=False)
    assert [t.runs for t in timings] == [3, 3, 3]
    assert all(
        set(t.module_ms) == {"stem", "stages.0.0", "stages.0.1", "stages.1.0", "head"}
        for t in timings
    )
    # warm-up passes model by model, then rounds that start one model later each time
    assert calls == [0, 1, 2, 0, 1, 2, 1, 2, 0, 2, 0, 1]
    assert all(
        not m._forward_hooks and not m._forward_pre_hooks
        for model in models
        for m in model.modules()
    )

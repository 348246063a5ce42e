"""Property-style check over every shipped space: random archs build, run and are fully counted."""

from __future__ import annotations

import pytest
import torch

from archlab.measurement.flops import count_macs
from archlab.space import list_spaces, load_space

SEEDS = range(100, 105)
OTHER_RESOLUTION = 256


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list_spaces())
def test_random_arch_runs_at_two_resolutions_with_every_op_counted(name: str, seed: int) -> None:
    space = load_space(name)
    arch = space.sample(seed)
    cfg = space.to_cfg(arch)
    cfg.check_resolution(OTHER_RESOLUTION)
    torch.manual_seed(seed)
    model = space.family.build(cfg, num_classes=10).eval()
    with torch.inference_mode():
        for resolution in (224, OTHER_RESOLUTION):
            out = model(torch.randn(1, 3, resolution, resolution))
            assert out.shape == (1, 10) and torch.isfinite(out).all(), (name, arch, resolution)
    count = count_macs(model, 224)
    assert count.unsupported_ops == {}, f"{name} seed {seed}: uncounted ops {count.unsupported_ops}"
    assert count.total > 0

"""Property-style check over every shipped space: random archs build, run, are fully counted and
run on ONNX Runtime as in PyTorch."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from ci import require_module

from archlab.measurement.backends import prepare
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


def _smallest_resolution(cfg: Any) -> int:
    """The smallest input (a multiple of 32 from 64) the config runs at: exporting is slow."""
    for resolution in range(64, 257, 32):
        try:
            cfg.check_resolution(resolution)
        except ValueError:
            continue
        return resolution
    raise AssertionError(f"{cfg} runs at no resolution up to 256")


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list_spaces())
def test_random_arch_runs_on_onnxruntime_as_in_pytorch(name: str, seed: int) -> None:
    require_module("onnxruntime")
    space = load_space(name)
    cfg = space.to_cfg(space.sample(seed))
    torch.manual_seed(seed)
    model = space.family.build(cfg, num_classes=10).eval()
    resolution = _smallest_resolution(cfg)
    x = torch.randn(1, 3, resolution, resolution)
    with torch.inference_mode():
        expected = model(x)
        got = torch.as_tensor(prepare(model, x, "onnxruntime")()[0])
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0, msg=f"{name} seed {seed}")

"""Tests of the SBCFormer family: blocks, the aliased published MACs, off-design ops, configs.

What every family must satisfy (presets against the paper, two resolutions, config round trip,
the space) is in test_family_contract.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import pytest
import torch
from torch import nn

from archlab.layers import InvertedResidual, MAttnLayer, OffsetBias
from archlab.measurement.flops import MacCount, count_macs
from archlab.models import cfg_from_dict, cfg_to_dict
from archlab.models.sbcformer import (
    PRESETS,
    SBCFormer,
    SBCFormerCfg,
    SBCStageCfg,
    _SBCFormerBlock,
)

_STAGE = SBCStageCfg(dim=16, num_heads=2, depth_invres=1, depth_mattn=2, key_dim=4)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def preset_macs() -> dict[str, MacCount]:
    """fvcore counts of every preset at its published resolution, computed once."""
    return {name: count_macs(SBCFormer(p.cfg), p.resolution) for name, p in PRESETS.items()}


def _small(cfg: SBCFormerCfg) -> SBCFormerCfg:
    """The same architecture designed for 64 × 64 inputs: maps 8/4/2, P = 2, pool ratios 4/2/1."""
    return dataclasses.replace(cfg, pooled_size=2, design_resolution=64)


def _assert_all_params_get_gradients(module: nn.Module, out: torch.Tensor) -> None:
    (out * torch.randn_like(out)).sum().backward()
    dead = [n for n, p in module.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"parameters without gradient: {dead}"


# (block factory, input shape, output shape); blocks run in eval mode so BN does not cancel biases.
_BLOCKS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], tuple[int, ...]]] = {
    "invres": (lambda: InvertedResidual(16, 2.0), (2, 16, 8, 8), (2, 16, 8, 8)),
    "mattn_layer": (
        lambda: MAttnLayer(16, num_heads=2, key_dim=4, value_dim=8, grid=4),
        (2, 16, 16),
        (2, 16, 16),
    ),
    "block_pooled": (
        lambda: _SBCFormerBlock(_STAGE, 2, 4, [0.0, 0.0]),
        (2, 16, 8, 8),
        (2, 16, 8, 8),
    ),
    "block_unpooled": (
        lambda: _SBCFormerBlock(_STAGE, 2, 1, [0.0, 0.0]),
        (2, 16, 2, 2),
        (2, 16, 2, 2),
    ),
    # off the design size: adaptive pooling to 2×2, transposed conv to 4×4, bilinear resize to 5×5
    "block_resized": (
        lambda: _SBCFormerBlock(_STAGE, 2, 2, [0.0, 0.0]),
        (2, 16, 5, 5),
        (2, 16, 5, 5),
    ),
}


@pytest.mark.parametrize("name", list(_BLOCKS))
def test_block_forward_shape_finite_and_gradients(name: str) -> None:
    factory, in_shape, out_shape = _BLOCKS[name]
    torch.manual_seed(0)
    block = factory().eval()
    out = block(torch.randn(in_shape))
    assert out.shape == out_shape
    assert torch.isfinite(out).all()
    _assert_all_params_get_gradients(block, out)


def test_offset_bias_has_one_entry_per_absolute_offset() -> None:
    bias = OffsetBias(grid=3, num_heads=2)
    assert bias.table.shape == (2, 9)
    assert bias().shape == (2, 9, 9)
    assert torch.equal(bias.index, bias.index.T)  # |Δ| offsets are symmetric
    assert bias.index[0].tolist() == list(range(9))  # from the corner: every offset once


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_forward_at_small_resolution(name: str) -> None:
    model = SBCFormer(_small(PRESETS[name].cfg), num_classes=10).eval()
    with torch.inference_mode():
        out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_model_gradient_flow() -> None:
    torch.manual_seed(0)
    model = SBCFormer(_small(PRESETS["sbcformer_xs"].cfg), num_classes=10).eval()
    _assert_all_params_get_gradients(model, model(torch.randn(2, 3, 64, 64)))


@pytest.mark.parametrize("name", [n for n, p in PRESETS.items() if not p.macs_reproducible])
def test_published_macs_count_the_stem_and_last_block_twice(
    name: str, preset_macs: dict[str, MacCount]
) -> None:
    """Published FLOPs count the stem and the last stage block twice (docs/families.md, 2 and 6)."""
    preset, macs = PRESETS[name], preset_macs[name]
    aliased = macs.total + macs.by_module["stem"] + macs.by_module["stages.2.1"]
    assert round(aliased / 1e9, 1) == preset.macs_g
    assert macs.total / 1e9 < 0.8 * preset.macs_g  # so it is not reproducible as is


def test_design_resolution_uses_the_official_ops(preset_macs: dict[str, MacCount]) -> None:
    at_design = preset_macs["sbcformer_xs"].by_operator
    assert "adaptive_avg_pool2d" not in at_design and "upsample_bilinear2d" not in at_design
    off_design = count_macs(SBCFormer(PRESETS["sbcformer_xs"].cfg), 256)
    assert off_design.unsupported_ops == {}
    assert {"adaptive_avg_pool2d", "upsample_bilinear2d"} <= set(off_design.by_operator)


def test_check_resolution_accepts_multiples_of_32_above_the_hourglass() -> None:
    cfg = PRESETS["sbcformer_s"].cfg
    for resolution in (224, 256, 288, 448):
        cfg.check_resolution(resolution)
    with pytest.raises(ValueError, match="divisible by 32"):
        cfg.check_resolution(240)
    with pytest.raises(ValueError, match=r"stage 2 has a 6×6 map, smaller than its 7×7 hourglass"):
        cfg.check_resolution(192)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pooled_size": 5}, r"pooled_size=5 must divide .* allowed values: \[1, 7, 14, 28\]"),
        ({"stages.1.num_heads": 0}, "num_heads must be ≥ 1"),
        ({"stages.0.attn_ratio": 1.3}, "attn_ratio × key_dim must be a whole number"),
        ({"design_resolution": 200}, "design_resolution must be a positive multiple of 32"),
    ],
)
def test_cfg_from_dict_rejects_bad_config(change: dict[str, object], message: str) -> None:
    data = cfg_to_dict(PRESETS["sbcformer_xs"].cfg, "sbcformer")
    for key, value in change.items():
        if key.startswith("stages."):
            _, index, field = key.split(".")
            data["stages"][int(index)][field] = value
        else:
            data[key] = value
    with pytest.raises(ValueError, match=message):
        cfg_from_dict(SBCFormerCfg, data)


def test_cfg_rejects_wrong_number_of_stages() -> None:
    with pytest.raises(ValueError, match="3 stages"):
        SBCFormerCfg(stages=(_STAGE, _STAGE))

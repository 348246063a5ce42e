"""Mobile-Former: every block forward and backward, the switches, MAC formulas, configs.

What every family must satisfy (presets against the paper, two resolutions, config round trip,
the space) is in test_family_contract.py.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from archlab.measurement.flops import count_macs, count_params
from archlab.models import cfg_from_dict, cfg_to_dict
from archlab.models.mobileformer import (
    PRESETS,
    MobileFormer,
    MobileFormerCfg,
    MobileFormerStageCfg,
)
from archlab.space import load_space

SMALL = 64  # input size for forward/backward tests: maps 32 → 2


def _tiny(**overrides: object) -> MobileFormerCfg:
    """Every block type at small width: conv-only with skip, MF-down, MF with and without skip."""
    stages = (
        MobileFormerStageCfg(out_chs=16, depth=2, stride=2, expand=(4, 3)),
        MobileFormerStageCfg(out_chs=24, depth=2, stride=1, expand=(3, 3)),
        MobileFormerStageCfg(out_chs=32, depth=1, stride=2, expand=(4,), expand2=3),
    )
    base = MobileFormerCfg(stages=stages, stem_chs=8, first_chs=8, num_tokens=3, token_dim=32,
                           head_hidden=64)  # fmt: skip
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


VARIANTS = {
    "code": _tiny(),
    "paper_reading": _tiny(former_kv_proj=True, dynamic_gate=False),
    "relu6": _tiny(dyrelu=False),
    "grouped": _tiny(pw_groups=4, first_stride=2, drop_path_rate=0.1),
    **{name: preset.cfg for name, preset in PRESETS.items()},
}


def test_every_preset_publishes_params_and_reproducible_macs() -> None:
    # test_family_contract.py compares them with the counts (2% and 5%) where a preset has them
    for name, preset in PRESETS.items():
        assert preset.params_m is not None, name
        assert preset.macs_reproducible and preset.macs_g is not None, name


def _attention_macs(cfg: MobileFormerCfg, resolution: int) -> int:
    """Hand formula for the attention matmuls (q·kᵀ and attn·v) of every bridge and Former."""
    m, d = cfg.num_tokens, cfg.token_dim
    size = resolution // 2 // cfg.first_stride
    chs, total = cfg.first_chs, 0
    for stage in cfg.stages:
        for j in range(stage.depth):
            total += 2 * m * size * size * chs  # Mobile→Former over the input map
            total += 2 * m * m * d  # Former
            size = -(-size // stage.stride) if j == 0 else size
            chs = stage.out_chs
            total += 2 * m * size * size * chs  # Former→Mobile over the output map
    return total + 2 * m * size * size * chs  # the last Mobile→Former


@pytest.mark.parametrize("name", ["mobileformer_26m", "mobileformer_508m"])
def test_attention_matmuls_counted_as_hand_formula(name: str) -> None:
    cfg = PRESETS[name].cfg
    macs = count_macs(MobileFormer(cfg), 224)
    assert macs.by_operator["scaled_dot_product_attention"] == _attention_macs(cfg, 224)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_forward_shape_and_finite(name: str) -> None:
    model = MobileFormer(VARIANTS[name], num_classes=10).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, SMALL, SMALL))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_parameter_receives_a_gradient(name: str) -> None:
    torch.manual_seed(0)
    model = MobileFormer(VARIANTS[name], num_classes=10).train()
    model(torch.randn(2, 3, SMALL, SMALL)).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []


def test_26m_uses_grouped_pointwise_convs_with_channel_shuffle() -> None:
    model = MobileFormer(PRESETS["mobileformer_26m"].cfg)
    pointwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert pointwise and all(m.groups == 4 for m in pointwise)
    assert any(type(m).__name__ == "_ChannelShuffle" for m in model.modules())


def test_switches_change_parameters_by_their_layers() -> None:
    cfg = _tiny()
    n_blocks = sum(s.depth for s in cfg.stages)
    d = cfg.token_dim
    base = count_params(MobileFormer(cfg))
    kv = count_params(MobileFormer(dataclasses.replace(cfg, former_kv_proj=True)))
    assert kv - base == n_blocks * (2 * d * d + 2 * d)
    in_widths = [cfg.first_chs] + [s.out_chs for s in cfg.stages for _ in range(s.depth)]
    no_gate = count_params(MobileFormer(dataclasses.replace(cfg, dynamic_gate=False)))
    assert base - no_gate == sum(d * c + c for c in in_widths)  # one gate per M→F bridge
    no_dyrelu = MobileFormer(dataclasses.replace(cfg, dyrelu=False))
    assert not any("hyper" in n for n, _ in no_dyrelu.named_parameters())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"token_dim": 130}, "token_dim=130 is not divisible by former_heads=4"),
        ({"first_chs": 9}, "first_chs=9 is not divisible by bridge_heads=2"),
        ({"pw_groups": 3}, "not divisible by pw_groups=3"),
        ({"stages": [{"out_chs": 16, "depth": 3, "expand": [6, 4]}]}, "depth=3"),
        ({"stages": [{"out_chs": 16, "depth": 1, "stride": 3}]}, "stages.0.stride"),
    ],
)
def test_cfg_from_dict_rejects_bad_config(change: dict[str, object], message: str) -> None:
    data = {**cfg_to_dict(PRESETS["mobileformer_96m"].cfg, "mobileformer"), **change}
    with pytest.raises(ValueError, match=message):
        cfg_from_dict(MobileFormerCfg, data)


def test_check_resolution_rejects_input_below_total_stride() -> None:
    cfg = PRESETS["mobileformer_96m"].cfg
    cfg.check_resolution(224)
    with pytest.raises(ValueError, match="total stride 32"):
        cfg.check_resolution(16)


def test_space_defaults_to_151m() -> None:
    space = load_space("mobileformer")
    default = MobileFormer(space.to_cfg(space.default()))
    assert count_params(default) == count_params(MobileFormer(PRESETS["mobileformer_151m"].cfg))

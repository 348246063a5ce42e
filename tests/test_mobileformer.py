"""Mobile-Former: presets vs the published figures, every block forward and backward, the space."""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch
from torch import nn

from archlab.measurement.flops import MacCount, count_macs, count_params
from archlab.models import build_model, cfg_from_dict, cfg_to_dict
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


@pytest.fixture(scope="module")
def preset_counts() -> dict[str, tuple[int, MacCount]]:
    """Params and MACs of every preset at its published resolution, counted once per module."""
    out = {}
    for name, preset in PRESETS.items():
        model = MobileFormer(preset.cfg)
        out[name] = (count_params(model), count_macs(model, preset.resolution))
    return out


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_params_within_2_percent_of_published(
    name: str, preset_counts: dict[str, tuple[int, MacCount]]
) -> None:
    params, _ = preset_counts[name]
    published = PRESETS[name].params_m
    assert published is not None
    assert params / 1e6 == pytest.approx(published, rel=0.02)


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_macs_within_5_percent_of_published(
    name: str, preset_counts: dict[str, tuple[int, MacCount]]
) -> None:
    preset = PRESETS[name]
    assert preset.macs_reproducible and preset.macs_g is not None
    _, macs = preset_counts[name]
    assert macs.total / 1e9 == pytest.approx(preset.macs_g, rel=0.05)


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_has_no_unsupported_op(
    name: str, preset_counts: dict[str, tuple[int, MacCount]]
) -> None:
    assert preset_counts[name][1].unsupported_ops == {}


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
def test_attention_matmuls_counted_as_hand_formula(
    name: str, preset_counts: dict[str, tuple[int, MacCount]]
) -> None:
    macs = preset_counts[name][1]
    cfg = PRESETS[name].cfg
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


@pytest.mark.parametrize(("resolution", "batch"), [(224, 1), (256, 2)])
def test_runs_at_224_and_256_with_batch_1_and_2(resolution: int, batch: int) -> None:
    model = build_model({"preset": "mobileformer_52m"}).eval()
    with torch.no_grad():
        out = model(torch.randn(batch, 3, resolution, resolution))
    assert out.shape == (batch, 1000)


def test_26m_uses_grouped_pointwise_convs_with_channel_shuffle() -> None:
    model = MobileFormer(PRESETS["mobileformer_26m"].cfg)
    pointwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert pointwise and all(m.groups == 4 for m in pointwise)
    assert any(isinstance(m, nn.ChannelShuffle) for m in model.modules())


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


@pytest.mark.parametrize("name", list(PRESETS))
def test_config_round_trips_through_a_plain_dict(name: str) -> None:
    cfg = PRESETS[name].cfg
    assert cfg_from_dict(MobileFormerCfg, cfg_to_dict(cfg, "mobileformer")) == cfg


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


def test_space_loads_fast_and_defaults_to_151m() -> None:
    start = time.perf_counter()
    space = load_space("mobileformer")
    assert time.perf_counter() - start < 2.0  # about 0.35 s on one core; loose for shared CPUs
    default = MobileFormer(space.to_cfg(space.default()))
    assert count_params(default) == count_params(MobileFormer(PRESETS["mobileformer_151m"].cfg))


@pytest.mark.parametrize("seed", range(5))
def test_space_samples_build_and_run(seed: int) -> None:
    space = load_space("mobileformer")
    cfg = space.to_cfg(space.sample(seed))
    model = MobileFormer(cfg).eval()
    with torch.no_grad():
        for resolution, batch in ((224, 1), (256, 2)):
            cfg.check_resolution(resolution)
            out = model(torch.randn(batch, 3, resolution, resolution))
            assert out.shape == (batch, 1000) and torch.isfinite(out).all()

from __future__ import annotations

import pytest
import torch
from grad_check import check_grads

from archlab.measurement.flops import count_macs, count_params
from archlab.models import build_model, cfg_from_dict, config_of
from archlab.models.plgvit import (
    PRESETS,
    LwPlgVit,
    PlgStageCfg,
    PlgVitCfg,
    _CcfFfn,
    _Downsample,
    _PlgAttention,
    _PlgLayer,
    _Tokenizer,
)

STAGE = PlgStageCfg(
    dim=32,
    depth=1,
    global_ratio=0.5,
    local_heads=2,
    global_heads=1,
    window=4,
    global_window=3,
    mlp_ratio=2.0,
)


@pytest.mark.parametrize("sampling", ["max", "max_avg"])
@pytest.mark.parametrize("branch_proj", [True, False])
@pytest.mark.parametrize("size", [(8, 8), (10, 6)])  # 10×6 exercises window padding
def test_plg_attention_shape_and_grads(
    sampling: str, branch_proj: bool, size: tuple[int, int]
) -> None:
    attn = _PlgAttention(STAGE, sampling, rel_pos_bias=True, branch_proj=branch_proj)
    y = check_grads(attn, torch.randn(2, 32, *size))
    assert y.shape == (2, 32, *size)


def test_plg_attention_split_follows_global_ratio() -> None:
    stage = PlgStageCfg(dim=64, depth=1, global_ratio=0.75, local_heads=1, global_heads=3)
    attn = _PlgAttention(stage, "max", True, True)
    assert attn.qkv_local.in_features == 16 and attn.qkv_global.in_features == 48
    assert attn.bias_local.table.shape[1] == 1 and attn.bias_global.table.shape[1] == 3


def test_global_branch_cost_does_not_grow_with_resolution() -> None:
    stage = PlgStageCfg(dim=32, depth=1, global_ratio=0.5, local_heads=1, global_heads=1)
    attn = _PlgAttention(stage, "max", True, False)
    small = count_macs(torch.nn.Sequential(attn), (14, 14), in_chans=32).by_module
    big = count_macs(torch.nn.Sequential(attn), (28, 28), in_chans=32).by_module
    assert small["0.qkv_global"] == big["0.qkv_global"]  # one G×G window whatever the input
    assert big["0.qkv_local"] == 4 * small["0.qkv_local"]


@pytest.mark.parametrize("plus", [True, False])
def test_ccf_ffn_variants(plus: bool) -> None:
    ffn = _CcfFfn(16, 3.0, plus=plus)
    assert ffn.fc2.in_channels == (96 if plus else 48)
    assert check_grads(ffn, torch.randn(2, 16, 5, 5)).shape == (2, 16, 5, 5)


@pytest.mark.parametrize("variant", ["lw", "original"])
def test_downsample_halves_resolution(variant: str) -> None:
    down = _Downsample(16, 24, variant)
    assert check_grads(down, torch.randn(2, 16, 8, 8)).shape == (2, 24, 4, 4)
    se = down.mbconv[1]
    assert se.fc1.out_channels == (2 if variant == "lw" else 4)  # SE 1/8 vs 1/4


def test_lw_downsampler_has_far_fewer_params_than_original() -> None:
    lw, orig = _Downsample(128, 256, "lw"), _Downsample(128, 256, "original")
    assert count_params(lw) < 0.35 * count_params(orig)


@pytest.mark.parametrize("variant", ["conv7", "conv3_down"])
def test_tokenizer_output_stride_4(variant: str) -> None:
    tok = _Tokenizer(3, 16, variant, "lw")
    assert check_grads(tok, torch.randn(1, 3, 32, 32)).shape == (1, 16, 8, 8)


def test_plg_layer_residual_shapes_and_grads() -> None:
    layer = _PlgLayer(STAGE, PlgVitCfg(stages=(STAGE,) * 4), drop_path=0.0)
    assert check_grads(layer, torch.randn(2, 32, 8, 8)).shape == (2, 32, 8, 8)


def test_whole_small_model_backpropagates_to_every_parameter() -> None:
    cfg = PlgVitCfg(stages=(STAGE,) * 4, expand_dim=48)
    model = LwPlgVit(cfg, num_classes=5)
    check_grads(model, torch.randn(2, 3, 64, 64))


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_are_published_variants_and_only_lw_is_reconstructed(name: str) -> None:
    # the parameter counts against the paper (within 5%) are checked in test_family_contract.py
    preset = PRESETS[name]
    assert preset.published is not None
    assert preset.reconstructed == name.startswith("lw_")


def test_lw_r_has_fewer_macs_than_lw_a() -> None:
    macs = {
        n: count_macs(build_model({"preset": n}), 224).total for n in ("lw_plgvit_a", "lw_plgvit_r")
    }
    assert macs["lw_plgvit_r"] < 0.8 * macs["lw_plgvit_a"]


def test_runs_at_320() -> None:
    # 224 and 256 are in test_family_contract.py; at 320 the last map is 10×10: padded to 2×2
    # windows of 7, and pooled 10 → 7 for the global branch
    model = build_model({"preset": "lw_plgvit_r"}).eval()
    PRESETS["lw_plgvit_r"].cfg.check_resolution(320)
    with torch.inference_mode():
        y = model(torch.randn(1, 3, 320, 320))
    assert y.shape == (1, 1000) and torch.isfinite(y).all()


def test_check_resolution_names_the_problem() -> None:
    cfg = PRESETS["lw_plgvit_a"].cfg
    with pytest.raises(ValueError, match="divisible by 32"):
        cfg.check_resolution(200)
    with pytest.raises(
        ValueError, match=r"stages.2.global_window=7 exceeds the stage.s 4×4 map at input 64"
    ):
        cfg.check_resolution(64)


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        (
            {"dim": 64, "depth": 1, "global_ratio": 0.5, "local_heads": 3, "global_heads": 1},
            "not divisible by local_heads=3",
        ),
        (
            {"dim": 64, "depth": 1, "global_ratio": 1.0, "local_heads": 1, "global_heads": 1},
            r"global_ratio must lie in \(0, 1\)",
        ),
        (
            {"dim": 64, "depth": 0, "global_ratio": 0.5, "local_heads": 1, "global_heads": 1},
            "depth ≥ 1",
        ),
    ],
)
def test_invalid_stage_configs_are_rejected(stage: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cfg_from_dict(PlgVitCfg, {"stages": [stage] * 4})


def test_unknown_field_and_bad_literal_are_rejected() -> None:
    base = config_of(PRESETS["lw_plgvit_r"].cfg, "plgvit")
    with pytest.raises(ValueError, match="unknown key"):
        build_model({**base, "ffn_type": "ccf"})
    with pytest.raises(ValueError, match="ffn"):
        build_model({**base, "ffn": "mlp"})

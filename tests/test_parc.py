from __future__ import annotations

import math

import pytest
import torch
from grad_check import check_grads
from torch import nn

from archlab.layers import ParCConv, ParCMixer, ParCPosEmbed, parc_uses_fft, resize_meta
from archlab.layers.parc import FFT_MAX_SMALL_LENGTH, FFT_MIN_LENGTH, FFT_MIN_LENGTH_DENSE
from archlab.measurement.flops import count_macs
from archlab.models import build_model, cfg_from_dict, config_of
from archlab.models.parc import (
    PRESETS,
    ParCNet,
    ParCNetCfg,
    ParCStageCfg,
    _Bottleneck,
    _ChannelAttention,
    _ConvNeXtBlock,
    _InvertedResidual,
    _ParCBlock,
    _ParCOuter,
)

STAGE = ParCStageCfg(32, depth=1, parc_depth=2, parc_dim=24, ffn_ratio=2.0, meta_size=8)
CFG = ParCNetCfg(stages=(STAGE,), impl="direct")


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def _pair(impl_a: str, impl_b: str, **kwargs: object) -> tuple[ParCConv, ParCConv]:
    a = ParCConv(impl=impl_a, **kwargs)  # type: ignore[arg-type]
    b = ParCConv(impl=impl_b, **kwargs)  # type: ignore[arg-type]
    b.load_state_dict(a.state_dict())
    return a, b


# ---------------------------------------------------------------- the ParC operator


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("axis", ["h", "w"])
@pytest.mark.parametrize(
    ("size", "meta"), [((7, 7), 7), ((14, 9), 16), ((12, 20), 8), ((28, 28), 32)]
)
def test_fft_matches_direct_outputs_and_gradients(
    dense: bool, axis: str, size: tuple[int, int], meta: int
) -> None:
    torch.manual_seed(0)
    direct, fft = _pair("direct", "fft", dim=6, axis=axis, meta_size=meta, bias=True, dense=dense)
    x = torch.randn(2, 6, *size)
    grad_out = torch.randn(2, 6, *size)
    results = []
    for op in (direct, fft):
        xi = x.clone().requires_grad_(True)
        y = op(xi)
        (y * grad_out).sum().backward()
        results.append((y, xi.grad, op.weight.grad, op.bias.grad))
    for got, want in zip(results[1], results[0]):
        assert _rel_err(got, want) < 1e-4  # fp32; float64 agrees to ~1e-15


@pytest.mark.parametrize("axis", ["h", "w"])
def test_direct_is_circular_cross_correlation(axis: str) -> None:
    op = ParCConv(3, axis, meta_size=5, bias=True, impl="direct").double()
    x = torch.randn(1, 3, 5, 4, dtype=torch.double)
    length = x.shape[2 if axis == "h" else 3]
    idx = (torch.arange(length)[:, None] + torch.arange(length)[None, :]) % length  # (i, t)
    k = resize_meta(op.weight, length, "bilinear")  # W = 4 taps from the meta kernel of 5
    if axis == "h":
        want = torch.einsum("bcitw,ct->bciw", x[:, :, idx, :], k)
    else:
        want = torch.einsum("bchit,ct->bchi", x[:, :, :, idx], k)
    torch.testing.assert_close(op(x), want + op.bias.view(1, -1, 1, 1))


def test_parc_is_shift_equivariant_and_pe_breaks_it() -> None:
    conv = ParCConv(4, "h", meta_size=8, impl="fft")
    x = torch.randn(1, 4, 8, 3)
    torch.testing.assert_close(conv(x.roll(2, dims=2)), conv(x).roll(2, dims=2))
    with_pe = nn.Sequential(ParCPosEmbed(4, "h", 8), conv)
    assert not torch.allclose(with_pe(x.roll(2, dims=2)), with_pe(x).roll(2, dims=2))


@pytest.mark.parametrize(
    ("length", "dense", "uses_fft"),
    [
        (FFT_MAX_SMALL_LENGTH, False, True),
        (FFT_MAX_SMALL_LENGTH + 1, False, False),
        (FFT_MIN_LENGTH - 1, False, False),
        (FFT_MIN_LENGTH, False, True),
        (FFT_MAX_SMALL_LENGTH, True, False),
        (FFT_MIN_LENGTH_DENSE, True, True),
    ],
)
def test_auto_picks_by_length(length: int, dense: bool, uses_fft: bool) -> None:
    assert parc_uses_fft("auto", length, dense) is uses_fft
    assert parc_uses_fft("fft", length, dense) and not parc_uses_fft("direct", length, dense)


def test_bad_impl_and_resize_are_rejected() -> None:
    with pytest.raises(ValueError, match="impl must be 'direct', 'fft' or 'auto', got 'cuda'"):
        ParCConv(4, "h", 8, impl="cuda")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match="resize='crop' cannot grow a meta kernel of 8 to length 9"
    ):
        resize_meta(torch.randn(4, 8), 9, "crop")
    with pytest.raises(ValueError, match="axis must be 'h' or 'w'"):
        ParCPosEmbed(4, "x", 8)  # type: ignore[arg-type]


def test_resize_meta_bilinear_keeps_ends_and_crop_keeps_first_taps() -> None:
    k = torch.randn(3, 16)
    up = resize_meta(k, 20, "bilinear")
    torch.testing.assert_close(up[:, [0, -1]], k[:, [0, -1]])  # align_corners=True
    torch.testing.assert_close(resize_meta(k, 9, "crop"), k[:, :9])
    assert resize_meta(k, 16, "bilinear") is k


def test_mixer_two_passes_see_the_whole_map_one_pass_a_cross() -> None:
    x = torch.randn(1, 8, 6, 5, requires_grad=True)
    for passes, global_field in ((2, True), (1, False)):
        mixer = ParCMixer(8, meta_size=6, passes=passes, norm=False, impl="direct")
        (grad,) = torch.autograd.grad(mixer(x)[0, :, 0, 0].sum(), x)
        seen = grad[0].abs().sum(0) > 0  # (H, W): input positions output (0, 0) depends on
        assert bool(seen.all()) is global_field
        assert bool(seen[:, 0].all() and seen[0, :].all())


def test_mixer_rejects_odd_width() -> None:
    with pytest.raises(ValueError, match="even number of channels, got dim=7"):
        ParCMixer(7, meta_size=8)


@pytest.mark.parametrize("impl", ["direct", "fft"])
@pytest.mark.parametrize("dense", [False, True])
def test_mixer_shape_and_grads(impl: str, dense: bool) -> None:
    mixer = ParCMixer(8, meta_size=6, bias=True, dense=dense, impl=impl)  # type: ignore[arg-type]
    assert check_grads(mixer, torch.randn(2, 8, 6, 9)).shape == (2, 8, 6, 9)


# ---------------------------------------------------------------- MAC counting


def _fft_macs(transforms: int, n: int) -> int:
    return round(1.25 * transforms * n * math.log2(n))


def test_direct_parc_macs_are_c_h_w_l() -> None:
    count = count_macs(nn.Sequential(ParCConv(8, "h", 14, impl="direct")), (14, 10), in_chans=8)
    assert count.total == 8 * 14 * 10 * 14 and count.unsupported_ops == {}


def test_fft_parc_macs_follow_the_stated_formula() -> None:
    c, h, w = 8, 14, 10
    op = nn.Sequential(ParCConv(c, "h", h, impl="fft"))
    count = count_macs(op, (h, w), in_chans=c)
    bins = h // 2 + 1
    data = 2 * _fft_macs(c * w, h)  # rfft of x, irfft of the product
    assert count.by_operator["fft_rfft"] == _fft_macs(c * w, h) + _fft_macs(c, h)  # + kernel
    assert count.by_operator["mul"] == 4 * c * bins * w  # complex product, 4 MACs per bin
    assert count.total == data + _fft_macs(c, h) + 4 * c * bins * w
    assert count.unsupported_ops == {}


def test_dense_fft_channel_mix_counts_four_real_macs_per_complex_mac() -> None:
    c, h, w = 6, 8, 5
    count = count_macs(
        nn.Sequential(ParCConv(c, "w", w, dense=True, impl="fft")), (h, w), in_chans=c
    )
    assert count.by_operator["matmul"] == 4 * c * c * (w // 2 + 1) * h
    assert count.unsupported_ops == {}


class _RealProduct(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


def test_real_products_stay_zero_and_listed() -> None:
    count = count_macs(_RealProduct(), 4, in_chans=2)
    assert count.total == 0 and count.convention_zero_ops["aten::mul"] == 1


# ---------------------------------------------------------------- blocks


@pytest.mark.parametrize("expand", [1.0, 4.0])
@pytest.mark.parametrize("parc", [False, True])
def test_inverted_residual(expand: float, parc: bool) -> None:
    mixer = ParCMixer(16, 6, passes=1, norm=False, impl="fft") if parc else None
    block = _InvertedResidual(16, 16, 1, expand if not parc else 1.0, "relu6", mixer)
    assert block.residual
    assert check_grads(block, torch.randn(2, 16, 6, 6)).shape == (2, 16, 6, 6)
    strided = _InvertedResidual(16, 24, 2, expand, "silu")
    assert strided(torch.randn(2, 16, 6, 6)).shape == (2, 24, 3, 3)


def test_channel_attention_gates_channels() -> None:
    attn = _ChannelAttention(32)
    assert attn.gate[1][0].out_channels == 2  # reduction 16
    check_grads(attn, torch.randn(2, 32, 4, 4))


@pytest.mark.parametrize("channel_attn", [True, False])
def test_parc_block(channel_attn: bool) -> None:
    cfg = ParCNetCfg(stages=(STAGE,), channel_attn=channel_attn)
    block = _ParCBlock(24, STAGE, cfg, pe=True, drop_path=0.0)
    assert check_grads(block, torch.randn(2, 24, 8, 6)).shape == (2, 24, 8, 6)


@pytest.mark.parametrize("fusion", ["add", "concat"])
def test_parc_outer_block(fusion: str) -> None:
    cfg = ParCNetCfg(stages=(STAGE,), fusion=fusion)  # type: ignore[arg-type]
    outer = _ParCOuter(STAGE, cfg, [0.0, 0.0])
    assert outer.fuse[0].in_channels == (64 if fusion == "concat" else 32)
    assert outer.local[0][0].groups == 8  # gcd(32, 24)
    assert check_grads(outer, torch.randn(2, 32, 8, 8)).shape == (2, 32, 8, 8)
    pe_blocks = [b.mixer.passes[0].pe1.__class__.__name__ for b in outer.blocks]
    assert pe_blocks == ["ParCPosEmbed", "Identity"]  # pe="first"


@pytest.mark.parametrize("parc", [False, True])
def test_convnext_block(parc: bool) -> None:
    mixer = ParCMixer(16, 7, passes=1, norm=False, bias=True) if parc else None
    block = _ConvNeXtBlock(16, 4.0, mixer, drop_path=0.0)
    assert check_grads(block, torch.randn(2, 16, 7, 7)).shape == (2, 16, 7, 7)


@pytest.mark.parametrize("parc", [False, True])
def test_bottleneck(parc: bool) -> None:
    mixer = ParCMixer(8, 7, passes=1, norm=False, bias=True, dense=True) if parc else None
    block = _Bottleneck(32, 8, 32, 1, mixer)
    assert check_grads(block, torch.randn(2, 32, 7, 7)).shape == (2, 32, 7, 7)
    assert _Bottleneck(16, 8, 32, 2, None)(torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)


def test_resnet_parc_is_dense_and_others_depthwise() -> None:
    resnet = build_model({"preset": "parc_resnet50"})
    mv2 = build_model({"preset": "parc_mobilenetv2"})
    dense = [m for m in resnet.modules() if isinstance(m, ParCConv)]
    depthwise = [m for m in mv2.modules() if isinstance(m, ParCConv)]
    assert len(dense) == 2 * 4 and all(m.weight.ndim == 3 for m in dense)
    assert len(depthwise) == 2 * 4 and all(m.weight.ndim == 2 for m in depthwise)


# ---------------------------------------------------------------- presets


def test_every_preset_is_a_published_variant() -> None:
    # test_family_contract.py compares params (2%) and reproducible MACs (5%) with the paper
    assert all(preset.published is not None for preset in PRESETS.values())


def test_fft_presets_count_fewer_macs_and_no_unsupported_op() -> None:
    direct = count_macs(build_model({"preset": "parc_net_xs"}), 256)
    fft = count_macs(build_model({"preset": "parc_net_xs", "impl": "fft"}), 256)
    assert fft.unsupported_ops == {} and fft.by_operator["fft_rfft"] > 0
    assert fft.total < direct.total


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_runs_at_64_for_every_impl(name: str) -> None:
    base = build_model({"preset": name}).eval()
    x = torch.randn(2, 3, 64, 64)
    outs = {}
    for impl in ("direct", "fft", "auto"):
        model = base
        if impl != base.cfg.impl:
            model = build_model({"preset": name, "impl": impl}).eval()
            model.load_state_dict(base.state_dict())
        with torch.inference_mode():
            outs[impl] = model(x)
    assert outs["direct"].shape == (2, 1000) and torch.isfinite(outs["direct"]).all()
    for impl in ("fft", "auto"):
        assert _rel_err(outs[impl], outs["direct"]) < 1e-4


@pytest.mark.parametrize(
    ("name", "resolution", "batch"),
    [("parc_net_s", 224, 1), ("parc_convnext_xt", 288, 2), ("parc_mobilenetv2", 288, 2)],
)
def test_meta_kernels_resize_to_the_input(name: str, resolution: int, batch: int) -> None:
    # test_family_contract.py runs every preset at its own resolution and 32 px above it; here
    # further from it: the meta kernels are resized down (256 → 224) and up past their size (288)
    model = build_model({"preset": name}).eval()
    PRESETS[name].cfg.check_resolution(resolution)
    with torch.inference_mode():
        y = model(torch.randn(batch, 3, resolution, resolution))
    assert y.shape == (batch, 1000) and torch.isfinite(y).all()


def test_whole_small_model_backpropagates_to_every_parameter() -> None:
    stages = (ParCStageCfg(16, depth=1, stride=1, expand=2.0), STAGE)
    model = ParCNet(ParCNetCfg(stages=stages, head_dim=48, impl="fft"), num_classes=5)
    check_grads(model, torch.randn(2, 3, 32, 32))


# ---------------------------------------------------------------- configs


def _with_stage(name: str, index: int, **change: object) -> dict:
    config = config_of(PRESETS[name].cfg, "parc")
    config["stages"][index].update(change)
    return config


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (_with_stage("parc_net_s", 2, parc_dim=191), "stages.2.parc_dim must be even"),
        (_with_stage("parc_net_s", 3, meta_size=0), "needs meta_size ≥ 1"),
        (_with_stage("parc_net_s", 0, depth=0), r"stages.0.depth must be ≥ 1"),
        (_with_stage("parc_resnet50", 2, parc_depth=7), "stages.2.parc_depth=7 exceeds depth=6"),
        (_with_stage("parc_resnet50", 2, parc_depth=6), "strided first block cannot be a ParC"),
        (_with_stage("parc_net_s", 1, stride=3), "stride must be 1 or 2"),
        ({**config_of(PRESETS["parc_net_s"].cfg, "parc"), "impl": "cuda"}, "impl"),
        ({**config_of(PRESETS["parc_net_s"].cfg, "parc"), "backbone": "vgg"}, "backbone"),
    ],
)
def test_invalid_configs_are_rejected(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cfg_from_dict(ParCNetCfg, config)


def test_check_resolution_names_the_problem() -> None:
    cfg = PRESETS["parc_net_s"].cfg
    with pytest.raises(ValueError, match="divisible by 32, got 200"):
        cfg.check_resolution(200)
    crop = cfg_from_dict(ParCNetCfg, {**config_of(cfg, "parc"), "resize": "crop"})
    crop.check_resolution(256)
    with pytest.raises(
        ValueError, match="stages.2 map 36×36 at input 288 exceeds its meta_size=32"
    ):
        crop.check_resolution(288)

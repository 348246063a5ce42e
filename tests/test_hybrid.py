"""Tests of the hybrid family: every mixer runs, trains and is counted; knobs matter; checks.

What every family must satisfy (presets counted with no unsupported op, two resolutions, config
round trip, the space) is in test_family_contract.py.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from archlab.estimate.reduced import reduce_cfg
from archlab.measurement.flops import MacCount, count_macs, count_params
from archlab.models import cfg_from_dict
from archlab.models.hybrid import (
    MIXERS,
    PRESETS,
    HybridCfg,
    HybridNet,
    HybridStageCfg,
    head_width,
    plg_heads,
)
from archlab.space import load_space

SMALL = 64  # input size of the small models: stage maps 16, 8, 4, 2


def _tiny(mixer: str, head_dim: int = 16, **knobs: object) -> HybridCfg:
    """Every stage with ``mixer``, small widths, designed for 64 × 64 inputs.

    Stage 1 has two blocks (tokens and position embeddings pass from the first to the second);
    stage 0 is narrower than two heads of ``head_dim`` (PLG then uses heads of dim / 2).
    """
    small = {"mlp_ratio": 2.0, "plg_window": 4, "plg_global_window": 2, "hourglass_size": 2,
             "former_tokens": 3, "former_dim": 32}  # fmt: skip
    small.update(knobs)
    stages = tuple(
        HybridStageCfg(dim=c, depth=d, mixer=mixer, **small)  # type: ignore[arg-type]
        for c, d in zip((16, 32, 32, 64), (1, 2, 1, 1))
    )
    return HybridCfg(stages=stages, head_dim=head_dim, design_resolution=SMALL)


VARIANTS = {
    **{mixer: _tiny(mixer) for mixer in MIXERS},
    "plg_ratio_quarter": _tiny("plg", plg_global_ratio=0.25),
    "hourglass_unpooled": _tiny("hourglass", hourglass_size=16),
    "parc_direct": _tiny("parc", parc_impl="direct"),
    "parc_fft": _tiny("parc", parc_impl="fft"),
    "invres_local": _tiny("plg", local="invres"),
    "batch_norm": dataclasses.replace(_tiny("former"), norm="batch", drop_path_rate=0.1),
}


def _assert_all_params_get_gradients(module: nn.Module, out: torch.Tensor) -> None:
    (out * torch.randn_like(out)).sum().backward()
    dead = [n for n, p in module.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"parameters without gradient: {dead}"


@pytest.fixture(scope="module")
def small_counts() -> dict[str, MacCount]:
    """fvcore counts of every small variant at 64 × 64, computed once."""
    return {
        name: count_macs(HybridNet(cfg, num_classes=10), SMALL) for name, cfg in VARIANTS.items()
    }


@pytest.fixture(scope="module")
def preset_counts() -> dict[str, tuple[int, MacCount]]:
    """Params and MACs of every preset at 224, counted once."""
    models = {name: HybridNet(p.cfg) for name, p in PRESETS.items()}
    return {
        name: (count_params(model), count_macs(model, PRESETS[name].resolution))
        for name, model in models.items()
    }


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_mixer_forward_shape_finite_and_gradients(name: str) -> None:
    torch.manual_seed(0)
    model = HybridNet(VARIANTS[name], num_classes=10).eval()  # eval: BN keeps the biases' grads
    out = model(torch.randn(2, 3, SMALL, SMALL))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()
    _assert_all_params_get_gradients(model, out)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_mixer_is_counted_by_fvcore(name: str, small_counts: dict[str, MacCount]) -> None:
    count = small_counts[name]
    assert count.unsupported_ops == {}, f"{name}: no handler for {count.unsupported_ops}"
    mixer = VARIANTS[name].stages[1].mixer
    mixer_macs = count.by_module.get("stages.1.0.mixer", 0)
    assert (mixer_macs > 0) == (mixer != "none")  # the mixer's own work is in the total


def test_each_mixer_gives_a_different_model(small_counts: dict[str, MacCount]) -> None:
    params = {m: count_params(HybridNet(VARIANTS[m], num_classes=10)) for m in MIXERS}
    macs = {m: small_counts[m].total for m in MIXERS}
    assert len(set(params.values())) == len(MIXERS), params
    assert len(set(macs.values())) == len(MIXERS), macs
    assert params["none"] == min(params.values()) and macs["none"] == min(macs.values())


# (mixer, knob, two values): the knob must change the parameters and/or the MACs.
_KNOBS = [
    ("plg", "plg_global_ratio", 0.25, 0.5),
    ("hourglass", "hourglass_size", 2, 4),
    ("former", "former_tokens", 3, 6),
    ("former", "former_dim", 32, 64),
]


@pytest.mark.parametrize(("mixer", "knob", "a", "b"), _KNOBS, ids=[k[1] for k in _KNOBS])
def test_mixer_knob_changes_params_and_macs(mixer: str, knob: str, a: object, b: object) -> None:
    models = [HybridNet(_tiny(mixer, **{knob: v}), num_classes=10) for v in (a, b)]
    params = [count_params(m) for m in models]
    macs = [count_macs(m, SMALL).total for m in models]
    assert params[0] != params[1] and macs[0] != macs[1], (params, macs)


def test_knob_of_another_mixer_is_ignored() -> None:
    base = HybridNet(_tiny("parc"), num_classes=10)
    other = HybridNet(_tiny("parc", former_tokens=12, hourglass_size=5, plg_global_ratio=2.0),
                      num_classes=10)  # fmt: skip
    assert count_params(base) == count_params(other)


def test_head_dim_sets_the_heads() -> None:
    plg = [HybridNet(_tiny("plg", head_dim=hd)).stages[2][0].mixer for hd in (8, 16)]
    assert (plg[0].local_heads, plg[0].global_heads) == (2, 2)  # 32 channels, heads of 8
    assert (plg[1].local_heads, plg[1].global_heads) == (1, 1)
    hourglass = HybridNet(_tiny("hourglass", head_dim=8)).stages[3][0].mixer
    assert hourglass.mattn[0].attn.num_heads == 8  # 64 channels / 8


@pytest.mark.parametrize(
    ("dim", "head_dim", "ratio", "width", "heads"),
    [(32, 32, 0.5, 16, (1, 1)), (192, 32, 0.75, 32, (1, 5)), (192, 32, 0.25, 32, (4, 2)),
     (64, 16, 0.9, 16, (1, 3)), (64, 16, 0.1, 16, (3, 1))],
)  # fmt: skip
def test_plg_split_is_whole_heads_with_one_per_branch(
    dim: int, head_dim: int, ratio: float, width: int, heads: tuple[int, int]
) -> None:
    stage = HybridStageCfg(dim=dim, depth=1, mixer="plg", plg_global_ratio=ratio)
    assert head_width(stage, head_dim) == width
    assert plg_heads(stage, head_dim) == heads


def test_parc_implementations_agree_but_count_differently(
    small_counts: dict[str, MacCount],
) -> None:
    torch.manual_seed(0)
    direct = HybridNet(VARIANTS["parc_direct"], num_classes=10).eval()
    fft = HybridNet(VARIANTS["parc_fft"], num_classes=10).eval()
    fft.load_state_dict(direct.state_dict())
    x = torch.randn(1, 3, SMALL, SMALL)
    with torch.no_grad():
        torch.testing.assert_close(direct(x), fft(x), rtol=1e-4, atol=1e-4)
    assert small_counts["parc_direct"].total != small_counts["parc_fft"].total


def test_former_tokens_belong_to_the_first_block_of_the_stage() -> None:
    model = HybridNet(_tiny("former"), num_classes=10)
    first, second = model.stages[1]
    assert first.mixer.tokens.weight.shape == (3, 32)
    assert second.mixer.tokens is None


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_are_ours_and_about_1_gmac_5m_params(
    name: str, preset_counts: dict[str, tuple[int, MacCount]]
) -> None:
    preset = PRESETS[name]
    assert preset.published is None and preset.params_m is None and preset.macs_g is None
    assert preset.note.startswith("Ours")
    params, macs = preset_counts[name]
    assert 4.5e6 < params < 6.5e6 and 0.85e9 < macs.total < 1.15e9, (params, macs.total)


def test_preset_all_four_uses_every_mixer() -> None:
    mixers = [s.mixer for s in PRESETS["hybrid_all_four"].cfg.stages]
    assert sorted(mixers) == sorted(set(MIXERS) - {"none"})


def _stage(**fields: object) -> dict[str, object]:
    return {"dim": 64, "depth": 1, "mixer": "plg", **fields}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"stages": [_stage()] * 3}, "the hybrid has 4 stages, got 3"),
        ({"stages": [_stage(mixer="swin")] * 4}, "mixer"),
        ({"stages": [_stage(depth=0)] * 4}, "depth ≥ 1"),
        ({"stages": [_stage(mixer="former", dim=48)] * 4},
         r"stages.0.dim=48 is not a multiple of the former mixer's head width 32"),
        ({"stages": [_stage(mixer="former", former_dim=80)] * 4},
         "stages.0.former_dim=80 is not a multiple of head_dim=32"),
        ({"stages": [_stage(mixer="hourglass", hourglass_size=5)] * 4},
         r"stages.0.hourglass_size=5 must divide the stage's 56×56 map"),
        ({"stages": [_stage(mixer="parc", dim=63)] * 4}, "dim=63 is odd"),
        ({"stages": [_stage(plg_global_ratio=1.0)] * 4}, r"plg_global_ratio must lie in \(0, 1\)"),
        ({"stages": [_stage()] * 4, "head_dim": 15}, "head_dim must be even"),
        ({"stages": [_stage()] * 4, "norm": "group"}, "norm"),
        ({"stages": [_stage()] * 4, "design_resolution": 200}, "multiple of 32"),
    ],
)  # fmt: skip
def test_invalid_configs_are_rejected(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cfg_from_dict(HybridCfg, config)


def test_direct_construction_checks_choices() -> None:
    with pytest.raises(ValueError, match=r"mixer must be one of \['plg', 'hourglass'"):
        HybridStageCfg(dim=64, depth=1, mixer="swin")  # type: ignore[arg-type]


def test_check_resolution_names_the_problem() -> None:
    cfg = PRESETS["hybrid_all_four"].cfg
    with pytest.raises(ValueError, match="divisible by 32"):
        cfg.check_resolution(200)
    with pytest.raises(ValueError, match=r"stages.2.plg_global_window=7 exceeds the stage.s 4×4"):
        cfg.check_resolution(64)
    with pytest.raises(ValueError, match=r"stages.1: the 7² hourglass grid .* 4×4 map at input 32"):
        dataclasses.replace(cfg, stages=(cfg.stages[0], cfg.stages[1], *[cfg.stages[0]] * 2)
                            ).check_resolution(32)  # fmt: skip


def test_space_defaults_to_all_four_and_has_every_mixer_knob() -> None:
    space = load_space("hybrid")
    assert space.to_cfg(space.default()) == PRESETS["hybrid_all_four"].cfg
    assert {k.split(".")[-1] for k in space.knobs} >= {
        "mixer", "plg_global_ratio", "hourglass_size", "former_tokens", "former_dim", "parc_impl"
    }  # fmt: skip


def test_space_samples_reduce_to_64_px_for_accuracy_estimates() -> None:
    space = load_space("hybrid")
    for seed in range(50):  # every reduced config is valid at 64 px and runs
        cfg = reduce_cfg("hybrid", space.to_cfg(space.sample(seed)), SMALL, space.resolution)
        model = HybridNet(cfg, num_classes=10).eval()
        with torch.inference_mode():
            assert model(torch.randn(2, 3, SMALL, SMALL)).shape == (2, 10), f"sample {seed}"
    reduced = reduce_cfg("hybrid", PRESETS["hybrid_all_four"].cfg, SMALL, 224)
    assert [s.plg_global_window for s in reduced.stages] == [2] * 4  # 7 → 2, as plgvit
    assert reduced.hourglass_grid(1) == (2, 4)  # 28/7 → 8/2: the same pooling ratio

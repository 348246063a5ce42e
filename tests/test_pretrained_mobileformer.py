"""Mobile-Former's official checkpoint names (archlab.models.official.mobileformer).

The round trip of every preset is in test_pretrained.py (it covers each mapped family); these are
the checks particular to Mobile-Former's naming."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from archlab.models import find_preset
from archlab.models.mobileformer import MobileFormer, MobileFormerCfg
from archlab.models.pretrained import load_pretrained, to_official

# Names and shapes read off the official models (AAboys/MobileFormer, mobile_former.py and
# dna_blocks.py, built with mobile_former_26m() / mobile_former_508m()): their state dicts hold
# 460 and 616 tensors, all of them weights or BatchNorm buffers, so none is left out here.
OFFICIAL = {
    "mobileformer_26m": (460, {
        "tokens.weight": (3, 128),
        "features.0.conv.4.weight": (12, 6, 1, 1),
        "features.0.conv.5.running_var": (12,),
        "features.1.conv3.0.weight": (12, 9, 1, 1),
        "features.1.hyper2.hyper.2.weight": (72, 32),
        "features.2.conv2.0.weight": (24, 18, 1, 1),
        "features.2.hyper3.hyper.2.weight": (192, 32),
        "features.2.conv4.0.weight": (24, 24, 1, 1),
        "features.3.local_global.alpha.0.weight": (24, 128),
        "features.4.global_block.channel_mlp.weight": (128, 128),
        "features.5.global_block.ffn.0.weight": (256, 128),
        "features.6.global_block.ffn_norm.bias": (128,),
        "features.7.hyper1.hyper.0.weight": (32, 128),
        "features.8.global_local.k.bias": (96,),
        "features.8.global_local.proj.weight": (96, 128),
        "local_global.q.weight": (96, 128),
        "classifier.conv.1.weight": (576, 24, 1, 1),
        "classifier.fc.0.weight": (1024, 704),
        "classifier.fc.1.running_mean": (1024,),
        "classifier.classifier.1.weight": (1000, 1024),
    }),
    "mobileformer_508m": (616, {
        "features.1.hyper3.hyper.2.bias": (320,),
        "features.7.conv1.0.weight": (768, 128, 1, 1),
        "features.9.conv1.0.weight": (1056, 1, 3, 3),
        "features.9.conv3.0.weight": (960, 1, 3, 3),
        "features.11.conv2.1.bias": (1440,),
        "classifier.fc.0.weight": (1920, 1632),
    }),
}  # fmt: skip


def _preset_cfg(name: str) -> MobileFormerCfg:
    cfg = find_preset(name)[2].cfg
    assert isinstance(cfg, MobileFormerCfg)
    return cfg


def _model(cfg: MobileFormerCfg, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return MobileFormer(cfg).eval()


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_names_and_shapes_are_the_official_ones(name: str) -> None:
    count, shapes = OFFICIAL[name]
    official = to_official(_model(_preset_cfg(name), 0))
    assert len(official) == count
    for key, shape in shapes.items():
        assert tuple(official[key].shape) == shape, key


def test_a_52m_checkpoint_is_refused_by_the_grouped_26m_naming_the_wrong_shapes() -> None:
    state = to_official(_model(_preset_cfg("mobileformer_52m"), 0))
    with pytest.raises(ValueError) as err:
        load_pretrained(_model(_preset_cfg("mobileformer_26m"), 1), state)
    message = str(err.value)
    assert "missing" not in message and "unexpected" not in message  # same names, 4 groups fewer
    assert "features.0.conv.4.weight (12, 24, 1, 1) ≠ (12, 6, 1, 1)" in message


def test_a_96m_checkpoint_is_refused_by_the_52m_naming_the_block_of_another_kind() -> None:
    state = to_official(_model(_preset_cfg("mobileformer_96m"), 0))
    with pytest.raises(ValueError) as err:
        load_pretrained(_model(_preset_cfg("mobileformer_52m"), 1), state)
    message = str(err.value)
    # block 1 is a stride-1 block in 52M (conv1-3, hyper1/2) but a stride-2 one in 96M (conv1-4,
    # hyper1/3)
    assert "4 missing: features.1.hyper2.hyper.0.weight" in message
    assert "10 unexpected: features.1.conv4.0.weight" in message
    assert "tokens.weight (4, 128) ≠ (3, 128)" in message


def test_settings_the_official_code_has_as_arguments_map_without_their_weights() -> None:
    """No DyReLU, no bridge gate, 4 bridge heads: the official ``MobileFormer`` class takes them
    (``se_flag=[0, 0, 0, 0]``, ``gbr_dynamic=[False] * 3``, ``attn_num_heads=4``); built so on the
    26M block table its state dict holds 378 tensors."""
    cfg = dataclasses.replace(
        _preset_cfg("mobileformer_26m"), dyrelu=False, dynamic_gate=False, bridge_heads=4
    )
    source, target = _model(cfg, 0), _model(cfg, 1)
    official = to_official(source)
    assert len(official) == 378
    assert not any(".hyper" in key or ".alpha." in key for key in official)
    load_pretrained(target, official)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(target(x), source(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"former_kv_proj": True}, "former_kv_proj"),
        ({"former_heads": 2}, "former_heads"),
        ({"former_mlp_ratio": 4.0}, "former_mlp_ratio"),
        ({"bridge_heads": 4}, None),  # a control: the official code has it as an argument
    ],
)
def test_settings_without_an_official_counterpart_are_refused(
    change: dict[str, object], named: str | None
) -> None:
    cfg = dataclasses.replace(_preset_cfg("mobileformer_26m"), **change)
    model = _model(cfg, 0)
    if named is None:  # converted, and loaded into another copy, the weights arrive whole
        other = _model(cfg, 1)
        load_pretrained(other, to_official(model))
        mine, theirs = model.state_dict(), other.state_dict()
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in mine)
        return
    with pytest.raises(ValueError, match=f"{named}=.* no counterpart in github.com/AAboys"):
        to_official(model)


def test_a_block_of_expansion_one_is_refused() -> None:
    cfg = _preset_cfg("mobileformer_151m")
    stages = list(cfg.stages)
    stages[1] = dataclasses.replace(stages[1], expand=(6, 1))
    model = _model(dataclasses.replace(cfg, stages=tuple(stages)), 0)
    with pytest.raises(ValueError, match=r"stages\.1\.expand=\(6, 1\).*conv-only block"):
        to_official(model)

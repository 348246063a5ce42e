"""Official checkpoints → presets (archlab.models.pretrained), checked without the official code:
a state dict under the official names is built from our weights through the inverse mapping."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import archlab
from archlab.models import FAMILIES, find_preset
from archlab.models.pretrained import OFFICIAL_CODE, load_pretrained, to_official

MAPPED = [name for family in OFFICIAL_CODE for name in FAMILIES[family].presets]

# Names and shapes read off the official SBCFormer-XS (xyongLu/SBCFormer, models/sbcformer.py):
# its state dict has 546 tensors, 9 of them the attention-bias index buffers ours rebuild.
SBCFORMER_XS_OFFICIAL = {
    "patch_embed.stem.4.bn.running_var": (96,),
    "merging_blocks.0.stem.0.conv.weight": (24, 3, 3, 3),
    "merging_blocks.2.conv.weight": (288, 160, 3, 3),
    "sbcformer_blocks.0.invres_blocks.InvRes_1.dwconv_bn.conv.weight": (192, 1, 3, 3),
    "sbcformer_blocks.1.mixer.Mixer_0.pwconv1_bn.bn.weight": (320,),
    "sbcformer_blocks.1.trans_blocks.MAttn_2.attn.pwconv.weight": (320, 160, 1, 1),
    "sbcformer_blocks.0.trans_blocks.MAttn_0.attn.attention_biases": (3, 49),
    "sbcformer_blocks.0.trans_blocks.MAttn_0.attn.dwconv.bn.bias": (96,),
    "sbcformer_blocks.2.trans_blocks.MAttn_1.mlp.fc2.weight": (288, 1152),
    "sbcformer_blk.proj_fuse.conv.weight": (288, 576, 1, 1),
    "sbcformer_blocks.0.convTrans.weight": (96, 1, 4, 4),
    "sbcformer_blocks.1.norm.running_mean": (160,),
    "sbcformer_blocks.2.proj.conv.weight": (288, 288, 1, 1),
    "head.weight": (1000, 288),
}


def _preset(name: str, seed: int) -> nn.Module:
    family, _, preset = find_preset(name)
    torch.manual_seed(seed)
    model = family.build(preset.cfg).eval()
    for module in model.modules():  # BN statistics that are not the defaults
        if isinstance(module, nn.BatchNorm2d):
            assert module.running_mean is not None and module.running_var is not None
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize("name", MAPPED)
def test_official_state_dict_round_trips_with_identical_logits(name: str) -> None:
    source, target = _preset(name, 0), _preset(name, 1)
    archlab.load_pretrained(target, to_official(source))
    for key, value in source.state_dict().items():
        assert torch.equal(value, target.state_dict()[key]), key
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        torch.testing.assert_close(target(x), source(x), atol=1e-4, rtol=0)


def test_sbcformer_names_and_shapes_are_the_official_ones() -> None:
    official = to_official(_preset("sbcformer_xs", 0))
    assert len(official) == 546 - 9
    for key, shape in SBCFORMER_XS_OFFICIAL.items():
        assert tuple(official[key].shape) == shape, key


def test_a_checkpoint_file_with_wrapper_and_prefix_loads(tmp_path: Path) -> None:
    source = _preset("sbcformer_xs", 0)
    state = {f"module.{k}": v for k, v in to_official(source).items()}
    torch.save({"model": state, "epoch": 300}, tmp_path / "checkpoint.pth")
    target = load_pretrained(_preset("sbcformer_xs", 1), tmp_path / "checkpoint.pth")
    assert torch.equal(target.state_dict()["head.weight"], source.state_dict()["head.weight"])


def test_a_checkpoint_that_does_not_fit_is_refused_with_the_offending_keys() -> None:
    state = to_official(_preset("sbcformer_xs", 0))
    del state["head.bias"]
    state["extra.weight"] = torch.zeros(1)
    state["merging_blocks.2.conv.weight"] = torch.zeros(288, 160, 1, 1)
    with pytest.raises(ValueError) as err:
        load_pretrained(_preset("sbcformer_xs", 1), state)
    message = str(err.value)
    assert "1 missing: head.bias" in message
    assert "1 unexpected: extra.weight" in message
    assert "merging_blocks.2.conv.weight (288, 160, 1, 1) ≠ (288, 160, 3, 3)" in message


def test_another_variants_checkpoint_is_refused() -> None:
    with pytest.raises(ValueError, match="of another shape"):
        load_pretrained(_preset("sbcformer_s", 0), to_official(_preset("sbcformer_xs", 0)))


def test_families_without_released_code_are_refused() -> None:
    with pytest.raises(ValueError, match="LW PLG-ViT has no released code"):
        load_pretrained(_preset("lw_plgvit_r", 0), {})

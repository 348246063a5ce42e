"""Official ParC checkpoints → parc presets: the names and shapes of the authors' models.

The round trip with identical logits runs for every parc preset in ``tests/test_pretrained.py``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import archlab
from archlab.models import find_preset
from archlab.models.pretrained import load_pretrained, to_official

# Read off the state dicts of the official model classes of hkzhang91/ParC-Net, built from its
# ``edgeformer_{xs,s,h}.yaml`` configs (cvnets ``edgeformer``) and from ``ParC_ConvNets/``
# (``parc_convnext_xt``, ``parc_mv2``, ``parc_res50``): preset → (official tensor count, names →
# shapes). None of them saves a buffer ours lack; ParC-Net saves the MV2 block opening layer 5 a
# second time as ``residual.*`` (18 tensors). Shapes as the official code stores them: ours hold
# ParC kernels and position embeddings without the singleton dims, which the loader squeezes.
OFFICIAL = {
    "parc_net_xs": (487, {
        "layer_3.1.dim_adaptive.0.block.conv.weight": (96, 1, 3, 3),
        "layer_3.1.spatial_global_rep.0.meta_kernel_1_H": (48, 1, 32, 1),
        "layer_3.1.spatial_global_rep.0.ca.fc.0.weight": (6, 96, 1, 1),
        "layer_5.1.local_global_fusion.block.conv.weight": (160, 160, 3, 3),
    }),
    "parc_net_s": (557, {
        "conv_1.block.conv.weight": (16, 3, 3, 3),
        "residual.block.red_1x1.block.conv.weight": (160, 512, 1, 1),
        "layer_3.1.spatial_global_rep.1.ffn.4.weight": (192, 384, 1, 1),
        "layer_3.1.spatial_global_rep.1.ca.fc.3.weight": (192, 12, 1, 1),
        "layer_4.1.spatial_global_rep.0.meta_kernel_2_W": (128, 1, 1, 16),
        "layer_4.1.spatial_global_rep.0.meta_pe_1_H": (1, 128, 16, 1),
        "layer_4.1.spatial_global_rep.1.pre_Norm_2.running_var": (128,),
        "layer_4.1.channel_adaptive.block.conv.weight": (128, 2, 1, 1),
        "layer_5.1.spatial_global_rep.3.weight": (320,),
        "layer_5.1.local_global_fusion.block.conv.weight": (160, 320, 3, 3),
        "classifier.fc.weight": (1000, 640),
    }),
    "parc_net_h": (767, {
        "conv_1.block.conv.weight": (48, 3, 5, 5),
        "layer_4.1.spatial_global_rep.8.meta_kernel_1_W": (216, 1, 1, 16),
        "layer_4.1.spatial_global_rep.9.running_mean": (432,),
        "conv_1x1_exp.block.conv.weight": (960, 432, 1, 1),
    }),
    "parc_mobilenetv2": (332, {
        "features.1.conv.1.weight": (16, 32, 1, 1),
        "features.10.gcc_W.gcc_conv.bias": (192,),
        "features.13.gcc_W.pe": (1, 288, 1, 14),
        "features.14.conv.1.0.weight": (576, 1, 3, 3),
        "features.16.gcc_H.gcc_conv.weight": (480, 1, 7, 1),
        "features.16.bn.running_var": (960,),
        "features.17.conv.2.weight": (320, 960, 1, 1),
        "features.18.0.weight": (1280, 320, 1, 1),
        "classifier.1.weight": (1000, 1280),
    }),
    "parc_convnext_xt": (198, {
        "downsample_layers.0.0.weight": (48, 3, 4, 4),
        "downsample_layers.2.1.weight": (192, 96, 2, 2),
        "stages.2.5.dwconv.weight": (192, 1, 7, 7),
        "stages.2.8.gcc_W.pe": (1, 96, 1, 14),
        "stages.3.2.gcc_H.gcc_conv.weight": (192, 1, 7, 1),
        "stages.3.2.gamma": (384,),
        "norm.weight": (384,),
    }),
    "parc_resnet50": (340, {
        "conv1.weight": (64, 3, 7, 7),
        "layer3.0.downsample.0.weight": (1024, 512, 1, 1),
        "layer3.2.conv2.weight": (256, 256, 3, 3),
        "layer3.3.parc_H.pe": (1, 128, 14, 1),
        "layer3.3.parc_W.gcc_conv.weight": (128, 128, 1, 14),
        "layer4.2.bn2.running_mean": (512,),
        "fc.weight": (1000, 2048),
    }),
}  # fmt: skip


def _preset(name: str, seed: int) -> nn.Module:
    family, _, preset = find_preset(name)
    torch.manual_seed(seed)
    return family.build(preset.cfg).eval()


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(n for n in shape if n != 1)


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_parc_names_and_shapes_are_the_official_ones(name: str) -> None:
    count, shapes = OFFICIAL[name]
    official = to_official(_preset(name, 0))
    assert len(official) == count
    for key, shape in shapes.items():
        assert _squeezed(tuple(official[key].shape)) == _squeezed(shape), key


def test_parc_net_saves_its_last_strided_mv2_block_under_both_names() -> None:
    official = to_official(_preset("parc_net_s", 0))
    aliases = [key for key in official if key.startswith("residual.")]
    assert len(aliases) == 18
    for alias in aliases:
        assert official[alias] is official["layer_5.0." + alias.removeprefix("residual.")]


def test_a_checkpoint_with_official_singleton_dims_loads() -> None:
    source = _preset("parc_mobilenetv2", 0)
    state = to_official(source)
    state["features.9.gcc_H.gcc_conv.weight"] = state["features.9.gcc_H.gcc_conv.weight"].reshape(
        192, 1, 14, 1
    )
    state["features.9.gcc_W.pe"] = state["features.9.gcc_W.pe"].reshape(1, 192, 1, 14)
    target = load_pretrained(_preset("parc_mobilenetv2", 1), state)
    for key, value in source.state_dict().items():
        assert torch.equal(value, target.state_dict()[key]), key


def test_another_parc_variants_checkpoint_is_refused() -> None:
    with pytest.raises(ValueError) as err:
        archlab.load_pretrained(_preset("parc_net_xs", 0), to_official(_preset("parc_net_s", 0)))
    assert "unexpected: layer_4.1.spatial_global_rep.3." in str(err.value)
    assert "of another shape" in str(err.value)

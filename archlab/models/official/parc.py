"""ParC family: our state-dict keys → the names of ``hkzhang91/ParC-Net``.

Written from reading the public code. The repository holds two code bases, so the renaming
dispatches on ``cfg.backbone``:

* ``parcnet``: ParC-Net, built by the cvnets-style ``edgeformer`` model
  (``cvnets/models/classification/edgeformer.py``, blocks in ``cvnets/modules/edgeformer_block.py``,
  variants in the ``config/classification/edgeformer/edgeformer_{xs,s,h}.yaml`` files). Every conv
  + norm (+ act) is a ``ConvLayer`` (``….block.conv``, ``….block.norm``), the MobileNetV2 blocks
  name their convs ``exp_1x1``/``conv_3x3``/``red_1x1``, and the outer block of layers 3-5 is
  ``dim_adaptive`` → ``spatial_global_rep`` (the ParC blocks, then a BatchNorm) →
  ``channel_adaptive`` → ``local_global_fusion``. A ParC block keeps its kernels and position
  embeddings as bare parameters ``meta_kernel_{1,2}_{H,W}``, ``meta_pe_{1,2}_{H,W}``: the first
  pass runs H on the first half and W on the second, the second pass the other way round. The model
  also keeps the MobileNetV2 block that opens its last strided layer as ``residual`` (an attribute
  reassigned for each layer), so its tensors are saved twice (``layer_5.0.*`` and ``residual.*``).
* ``mobilenetv2``, ``convnext``, ``resnet``: ``ParC_ConvNets/ParC_{mobilenetv2,convnext,
  resnet50}.py``, the torchvision / ConvNeXt layouts (``features.N``, ``downsample_layers`` +
  ``stages``, ``layerN``) with a ParC pair (``gcc_H``/``gcc_W``, ResNet ``parc_H``/``parc_W``,
  each a ``gcc_conv`` plus a ``pe``) in place of the spatial conv of the ParC blocks.

Shapes differ from ours only by singleton dimensions, which the loader squeezes: the official
kernels are conv weights, ``(C, 1, L, 1)`` for H and ``(C, 1, 1, L)`` for W (ResNet50 dense:
``(C, C, L, 1)``), the position embeddings ``(1, C, L, 1)`` / ``(1, C, 1, L)``; ours store
``(C, L)`` (dense ``(C, C, L)``). The ConvNets' kernels have the exact map length at 224×224, which
is what our meta kernels store, so they load as they are. Every preset of the family is mapped.
"""

from __future__ import annotations

import re

from archlab.models.official.rename import Rename, substitute
from archlab.models.parc import ParCNetCfg

__all__ = ["CODE", "EXTRAS", "rename_for"]

CODE = "github.com/hkzhang91/ParC-Net"
#: Official buffers with no counterpart among our weights: none (a pattern that never matches).
EXTRAS = re.compile(r"(?!)")

# ParC-Net: ``ConvNormAct`` index → ``ConvLayer`` member.
_CONV_LAYER = [(r"\.0\.weight$", ".block.conv.weight"), (r"\.1\.(\w+)$", r".block.norm.\1")]
_MV2_PARTS = {"expand": "exp_1x1", "mix": "conv_3x3", "project": "red_1x1"}
# ParC-Net ParC block: (pass, half) of our mixer → the official kernel/PE suffix.
_PASS_HALF = {("0", "1"): "1_H", ("0", "2"): "1_W", ("1", "1"): "2_W", ("1", "2"): "2_H"}
_PARCNET_BLOCK = [
    (r"^ffn\.3\.", "ffn.4."),  # the official FFN has a Dropout between its two convs
    (r"^attn\.gate\.1\.0\.", "ca.fc.0."),
    (r"^attn\.gate\.1\.1\.", "ca.fc.1."),
    (r"^attn\.gate\.2\.0\.", "ca.fc.3."),
    (r"^attn\.gate\.2\.1\.", "ca.fc.4."),
]
_PARCNET_OUTER = [
    (r"^local\.0\.0\.weight$", "dim_adaptive.0.block.conv.weight"),
    (r"^local\.0\.1\.", "dim_adaptive.0.block.norm."),
    (r"^local\.1\.weight$", "dim_adaptive.1.block.conv.weight"),
    (r"^project\.0\.weight$", "channel_adaptive.block.conv.weight"),
    (r"^project\.1\.", "channel_adaptive.block.norm."),
    (r"^fuse\.0\.weight$", "local_global_fusion.block.conv.weight"),
    (r"^fuse\.1\.", "local_global_fusion.block.norm."),
]


def _parcnet_block(tail: str) -> str:
    """A key inside one ParC-Net ParC block (``gcc_ca_mf_block``)."""
    m = re.match(r"mixer\.passes\.([01])\.(pe|norm|conv)([12])\.(\w+)$", tail)
    if m is None:
        return substitute(tail, _PARCNET_BLOCK)
    parc_pass, part, half, attr = m.groups()
    tag = _PASS_HALF[parc_pass, half]
    if part == "pe":
        return f"meta_pe_{tag}"
    if part == "norm":
        return f"pre_Norm_{half}.{attr}"
    return f"meta_kernel_{tag}" if attr == "weight" else f"meta_{tag}_bias"


def _parcnet(cfg: ParCNetCfg) -> Rename:
    strided = [i for i, s in enumerate(cfg.stages) if s.parc_depth and s.stride == 2]
    aliased = strided[-1] if strided else -1  # the layer whose MV2 block is also ``residual``

    def rename(key: str) -> list[str]:
        if m := re.match(r"(stem|head_conv)(\..*)", key):
            name = "conv_1" if m[1] == "stem" else "conv_1x1_exp"
            return [name + substitute(m[2], _CONV_LAYER)]
        if key.startswith("head."):
            return ["classifier.fc." + key.removeprefix("head.")]
        m = re.match(r"stages\.(\d+)\.(\d+)\.(\w+)(\..*)", key)
        if m is None:
            return [key]
        stage, index, part, rest = int(m[1]), int(m[2]), m[3], m[4]
        layer = f"layer_{stage + 1}.{index}"
        if index < cfg.stages[stage].depth:  # an MV2 block; the outer block comes last
            tail = f"block.{_MV2_PARTS[part]}{substitute(rest, _CONV_LAYER)}"
            return [f"{layer}.{tail}"] + (
                [f"residual.{tail}"] if stage == aliased and index == 0 else []
            )
        if part == "blocks":
            block, tail = rest[1:].split(".", 1)
            return [f"{layer}.spatial_global_rep.{block}.{_parcnet_block(tail)}"]
        if part == "norm":
            return [f"{layer}.spatial_global_rep.{cfg.stages[stage].parc_depth}{rest}"]
        return [f"{layer}.{substitute(part + rest, _PARCNET_OUTER)}"]

    return rename


def _parc_pair(tail: str, h: str, w: str) -> str:
    """A key of a ConvNet ParC pair (our one-pass mixer) → ``{h,w}.pe`` / ``{h,w}.gcc_conv.*``."""
    rules = [
        (r"^passes\.0\.pe1\.pe$", f"{h}.pe"),
        (r"^passes\.0\.pe2\.pe$", f"{w}.pe"),
        (r"^passes\.0\.conv1\.", f"{h}.gcc_conv."),
        (r"^passes\.0\.conv2\.", f"{w}.gcc_conv."),
    ]
    return substitute(tail, rules)


def _mv2_block(tail: str, parc: bool, expand: bool) -> str:
    """A key inside one block of ParC-MobileNetV2 (``InvertedResidual[_parc]``)."""
    if parc:
        if tail.startswith("mix.0."):
            return _parc_pair(tail.removeprefix("mix.0."), "gcc_H", "gcc_W")
        rules = [(r"^expand\.", "pw_expand."), (r"^mix\.1\.", "bn."), (r"^project\.", "pw_linear.")]
        return substitute(tail, rules)
    first = 1 if expand else 0  # ``conv`` index of the depthwise ConvBNReLU
    rules = [
        (r"^expand\.(\d)\.", r"conv.0.\1."),
        (r"^mix\.(\d)\.", rf"conv.{first}.\1."),
        (r"^project\.0\.", f"conv.{first + 1}."),
        (r"^project\.1\.", f"conv.{first + 2}."),
    ]
    return substitute(tail, rules)


def _mobilenetv2(cfg: ParCNetCfg) -> Rename:
    starts, count = [], 1  # ``features.0`` is the stem
    for stage in cfg.stages:
        starts.append(count)
        count += stage.depth

    def rename(key: str) -> list[str]:
        if key.startswith("stem."):
            return ["features.0." + key.removeprefix("stem.")]
        if key.startswith("head_conv."):
            return [f"features.{count}." + key.removeprefix("head_conv.")]
        if key.startswith("head."):
            return ["classifier.1." + key.removeprefix("head.")]
        m = re.match(r"stages\.(\d+)\.(\d+)\.(.*)", key)
        if m is None:
            return [key]
        stage, index = cfg.stages[int(m[1])], int(m[2])
        parc = index >= stage.depth - stage.parc_depth
        return [f"features.{starts[int(m[1])] + index}.{_mv2_block(m[3], parc, stage.expand != 1)}"]

    return rename


_CONVNEXT_BLOCK = [
    (r"^mix\.(weight|bias)$", r"dwconv.\1"),
    (r"^fc1\.", "pwconv1."),
    (r"^fc2\.", "pwconv2."),
]


def _convnext(cfg: ParCNetCfg) -> Rename:
    downsampled, in_chs = [], cfg.stem_dim  # stages that open with LN + strided conv
    for stage in cfg.stages:
        downsampled.append(stage.stride > 1 or in_chs != stage.dim)
        in_chs = stage.dim

    def rename(key: str) -> list[str]:
        if key.startswith("stem."):
            return ["downsample_layers.0." + key.removeprefix("stem.")]
        m = re.match(r"stages\.(\d+)\.(\d+)\.(.*)", key)
        if m is None:
            return [key]  # norm.*, head.*
        stage, index, tail = int(m[1]), int(m[2]), m[3]
        if downsampled[stage] and index == 0:
            return [f"downsample_layers.{stage}.{tail}"]
        if tail.startswith("mix.passes."):
            tail = _parc_pair(tail.removeprefix("mix."), "gcc_H", "gcc_W")
        block = index - int(downsampled[stage])
        return [f"stages.{stage}.{block}.{substitute(tail, _CONVNEXT_BLOCK)}"]

    return rename


_RESNET_BLOCK = [
    (r"^reduce\.0\.", "conv1."),
    (r"^reduce\.1\.", "bn1."),
    (r"^mix\.0\.weight$", "conv2.weight"),
    (r"^mix\.1\.", "bn2."),
    (r"^expand\.0\.", "conv3."),
    (r"^expand\.1\.", "bn3."),
    (r"^shortcut\.", "downsample."),
]


def _resnet(cfg: ParCNetCfg) -> Rename:
    def rename(key: str) -> list[str]:
        if key.startswith("stem.0."):
            return [
                substitute(key.removeprefix("stem.0."), [(r"^0\.", "conv1."), (r"^1\.", "bn1.")])
            ]
        if key.startswith("head."):
            return ["fc." + key.removeprefix("head.")]
        m = re.match(r"stages\.(\d+)\.(\d+)\.(.*)", key)
        if m is None:
            return [key]
        tail = m[3]
        if tail.startswith("mix.0.passes."):
            tail = _parc_pair(tail.removeprefix("mix.0."), "parc_H", "parc_W")
        return [f"layer{int(m[1]) + 1}.{m[2]}.{substitute(tail, _RESNET_BLOCK)}"]

    return rename


_BY_BACKBONE = {
    "parcnet": _parcnet,
    "mobilenetv2": _mobilenetv2,
    "convnext": _convnext,
    "resnet": _resnet,
}


def rename_for(cfg: ParCNetCfg) -> Rename:
    return _BY_BACKBONE[cfg.backbone](cfg)

"""Blocks shared by more than one model family; one concept per module, re-exported flat."""

from archlab.layers.act import ACTIVATIONS, get_act
from archlab.layers.attention import RelativePositionBias, attend
from archlab.layers.conv import ConvNormAct, SqueezeExcite, make_divisible
from archlab.layers.convnet_blocks import (
    ConvNeXtBlock,
    MobileNetV2Block,
    ResNetBottleneck,
    mv2_hidden,
)
from archlab.layers.drop import DropPath, drop_path_rates
from archlab.layers.former import Former, FormerToMobile, MobileToFormer
from archlab.layers.hourglass import HourglassAttention, MAttention, MAttnLayer, OffsetBias
from archlab.layers.init import init_linear_trunc_normal
from archlab.layers.inverted_residual import InvertedResidual
from archlab.layers.norm import GRN, LayerNorm2d
from archlab.layers.parc import ParCConv, ParCMixer, ParCPosEmbed, parc_uses_fft, resize_meta
from archlab.layers.plg_attention import PlgAttention
from archlab.layers.pool import adaptive_pool2d

__all__ = [
    "ACTIVATIONS",
    "ConvNeXtBlock",
    "ConvNormAct",
    "DropPath",
    "Former",
    "FormerToMobile",
    "GRN",
    "HourglassAttention",
    "InvertedResidual",
    "LayerNorm2d",
    "MAttention",
    "MAttnLayer",
    "MobileNetV2Block",
    "MobileToFormer",
    "OffsetBias",
    "ParCConv",
    "ParCMixer",
    "ParCPosEmbed",
    "PlgAttention",
    "RelativePositionBias",
    "ResNetBottleneck",
    "SqueezeExcite",
    "adaptive_pool2d",
    "attend",
    "drop_path_rates",
    "get_act",
    "init_linear_trunc_normal",
    "make_divisible",
    "mv2_hidden",
    "parc_uses_fft",
    "resize_meta",
]

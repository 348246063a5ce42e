"""Blocks shared by more than one model family; one concept per module, re-exported flat."""

from archlab.layers.act import ACTIVATIONS, get_act
from archlab.layers.attention import RelativePositionBias, attend
from archlab.layers.conv import ConvNormAct, SqueezeExcite, make_divisible
from archlab.layers.drop import DropPath, drop_path_rates
from archlab.layers.norm import GRN, LayerNorm2d
from archlab.layers.parc import ParCConv, ParCMixer, ParCPosEmbed, parc_uses_fft, resize_meta

__all__ = [
    "ACTIVATIONS",
    "ConvNormAct",
    "DropPath",
    "GRN",
    "LayerNorm2d",
    "ParCConv",
    "ParCMixer",
    "ParCPosEmbed",
    "RelativePositionBias",
    "SqueezeExcite",
    "attend",
    "drop_path_rates",
    "get_act",
    "make_divisible",
    "parc_uses_fft",
    "resize_meta",
]

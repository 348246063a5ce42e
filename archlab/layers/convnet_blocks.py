"""The residual blocks of three classic ConvNets, each with a replaceable spatial op (NCHW).

MobileNetV2 (Sandler et al. 2018), ConvNeXt (Liu et al. 2022) and ResNet-50 v1.5 (He et al. 2016).
``mixer=None`` gives the original block; any other module that keeps the shape takes the place of
its spatial conv (the ``parc`` family puts a ParC pair there).
"""

from __future__ import annotations

import torch
from torch import nn

from archlab.layers.act import get_act
from archlab.layers.conv import ConvNormAct, make_divisible
from archlab.layers.drop import DropPath

__all__ = ["ConvNeXtBlock", "MobileNetV2Block", "ResNetBottleneck", "mv2_hidden"]

_LAYER_SCALE_INIT = 1e-6  # ConvNeXt


def mv2_hidden(in_chs: int, expand: float) -> int:
    """Hidden width of a MobileNetV2 block: ``in_chs`` when ``expand == 1``, else rounded to 8."""
    return in_chs if expand == 1 else make_divisible(in_chs * expand, 8)


class MobileNetV2Block(nn.Module):
    """MobileNetV2 block, NCHW: PW expand → BN → act → DW 3×3 /s (or ``mixer``) → BN → act →
    PW project → BN, plus the input when the shape is kept. No expansion PW when ``expand == 1``."""

    def __init__(
        self, in_chs: int, out_chs: int, stride: int, expand: float, act: str,
        mixer: nn.Module | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        hidden = mv2_hidden(in_chs, expand)
        self.expand = ConvNormAct(in_chs, hidden, 1, act=act) if expand != 1 else nn.Identity()
        if mixer is None:
            self.mix: nn.Module = ConvNormAct(hidden, hidden, 3, stride, groups=hidden, act=act)
        else:
            self.mix = nn.Sequential(mixer, nn.BatchNorm2d(hidden), get_act(act, inplace=True))
        self.project = ConvNormAct(hidden, out_chs, 1, act=None)
        self.residual = stride == 1 and in_chs == out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.mix(self.expand(x)))
        return x + y if self.residual else y


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block, NCHW: DW 7×7 (or ``mixer``) → LN → Linear 4× → GELU → Linear → γ, + x."""

    def __init__(
        self, dim: int, mlp_ratio: float, mixer: nn.Module | None, drop_path: float
    ) -> None:
        super().__init__()
        hidden = round(dim * mlp_ratio)
        self.mix = mixer if mixer is not None else nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), _LAYER_SCALE_INIT))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mix(x).permute(0, 2, 3, 1)  # (B, H, W, C)
        y = self.gamma * self.fc2(self.act(self.fc1(self.norm(y))))
        return x + self.drop_path(y.permute(0, 3, 1, 2))


class ResNetBottleneck(nn.Module):
    """ResNet-50 bottleneck (stride on the 3×3, v1.5), NCHW: PW → 3×3 (or ``mixer`` + BN +
    ReLU) → PW, added to the (projected) input, ReLU."""

    def __init__(
        self, in_chs: int, width: int, out_chs: int, stride: int, mixer: nn.Module | None
    ) -> None:
        super().__init__()
        self.reduce = ConvNormAct(in_chs, width, 1, act="relu")
        if mixer is None:
            self.mix: nn.Module = ConvNormAct(width, width, 3, stride, act="relu")
        else:
            self.mix = nn.Sequential(mixer, nn.BatchNorm2d(width), get_act("relu", inplace=True))
        self.expand = ConvNormAct(width, out_chs, 1, act=None)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_chs != out_chs:
            self.shortcut = ConvNormAct(in_chs, out_chs, 1, stride, act=None)
        self.act = get_act("relu", inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Add and ReLU in place on the fresh BN output, as the authors' code does: out of place
        # they made ParC-ResNet50 3 % slower than theirs (bench/vs_official.py).
        y = self.expand(self.mix(self.reduce(x)))
        y += self.shortcut(x)
        return self.act(y)

"""The inverted residual block of SBCFormer (GELU, BatchNorm, three convs, identity shortcut).

Used by the ``sbcformer`` family (local stream and hourglass Mixer) and the ``hybrid`` family
(local mixing). As in SBCFormer's official code (Lu et al., WACV 2024, arXiv 2311.03747), which has
one more conv than the paper's text; see ``docs/families.md`` section 2.
"""

from __future__ import annotations

import torch
from torch import nn

from archlab.layers.conv import ConvNormAct

__all__ = ["InvertedResidual"]


class InvertedResidual(nn.Module):
    """x + PW(ρC→C)+BN(GELU(DW 3×3+BN(GELU(PW(C→ρC)+BN(x))))). NCHW, shape kept.

    Args:
        dim: channels C (in and out).
        exp_ratio: expansion ρ; the hidden width is ``round(dim * exp_ratio)``.
    """

    def __init__(self, dim: int, exp_ratio: float) -> None:
        super().__init__()
        hidden = round(dim * exp_ratio)
        self.pw1 = ConvNormAct(dim, hidden, 1, act="gelu")
        self.dw = ConvNormAct(hidden, hidden, 3, groups=hidden, act="gelu")
        self.pw2 = ConvNormAct(hidden, dim, 1, act=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pw2(self.dw(self.pw1(x)))

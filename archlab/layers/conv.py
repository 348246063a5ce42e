"""Convolutional building blocks shared by the families (NCHW tensors)."""

from __future__ import annotations

import torch
from torch import nn

from archlab.layers.act import get_act

__all__ = ["ConvNormAct", "SqueezeExcite", "make_divisible"]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never dropping more than 10%."""
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


class ConvNormAct(nn.Sequential):
    """Conv2d → BatchNorm2d (optional) → activation (optional); 'same' padding for odd kernels."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
        norm: bool = True,
        act: str | None = "relu",
        bias: bool | None = None,
    ) -> None:
        conv = nn.Conv2d(
            in_chs,
            out_chs,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=(not norm) if bias is None else bias,
        )
        layers: list[nn.Module] = [conv]
        if norm:
            layers.append(nn.BatchNorm2d(out_chs))
        if act is not None:
            layers.append(get_act(act, inplace=True))  # on the fresh conv/BN output
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Channel gating from globally pooled features (Hu et al. 2018).

    ``s = gate(W2 act(W1 mean_HW(x)))``; ``y = x * s``. The reduced width is
    ``round(dim * rd_ratio)``.
    """

    def __init__(
        self, dim: int, rd_ratio: float = 0.25, act: str = "gelu", gate: str = "sigmoid"
    ) -> None:
        super().__init__()
        rd = max(1, round(dim * rd_ratio))
        self.fc1 = nn.Conv2d(dim, rd, 1)
        self.act = get_act(act)
        self.fc2 = nn.Conv2d(rd, dim, 1)
        self.gate = get_act(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        s = self.gate(self.fc2(self.act(self.fc1(s))))
        return x * s

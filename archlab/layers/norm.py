"""Normalisation layers shared by the families (NCHW tensors)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LayerNorm2d", "GRN"]


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel dimension of an NCHW map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        x = super().forward(x)
        return x.permute(0, 3, 1, 2)  # (B, C, H, W)


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt-V2, Woo et al. 2023) on NCHW maps.

    ``g_c = ||x_c||_2`` over H, W; ``n_c = g_c / mean_c(g)``; ``y = gamma * (x * n) + beta + x``.
    gamma and beta start at zero, so the layer starts as the identity.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, dim, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, dim, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.linalg.vector_norm(x, ord=2, dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        n = g / (g.mean(dim=1, keepdim=True) + self.eps)
        return self.gamma * (x * n) + self.beta + x

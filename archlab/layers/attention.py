"""Attention helpers shared by the families."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["attend", "RelativePositionBias"]


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """Softmax attention ``softmax(q kᵀ / sqrt(d) + bias) v`` on (B, heads, N, d) tensors.

    Without a bias it runs on ``F.scaled_dot_product_attention`` (archlab's MAC counter has a
    handler for the two matmuls it hides). With one it is written out: on CPU, PyTorch's fused
    kernel with an additive mask made every biased preset (PLG-ViT, SBCFormer, the hybrids) 1-6 %
    slower end to end, and the authors' SBCFormer, written out, faster than ours
    (``bench/attention_kernel.py``). Both count the same MACs.
    """
    if bias is None:
        return F.scaled_dot_product_attention(q, k, v)
    scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5) + bias
    return scores.softmax(dim=-1) @ v


class RelativePositionBias(nn.Module):
    """Swin-style learned relative position bias for a ``size × size`` window.

    One scalar per head per relative offset, a ``(2·size−1)² × heads`` table; ``forward()`` returns
    the ``(heads, N, N)`` bias with ``N = size²``.
    """

    index: torch.Tensor  # buffer (N, N): each pair's row in the table

    def __init__(self, size: int, num_heads: int) -> None:
        super().__init__()
        self.size = size
        self.table = nn.Parameter(torch.zeros((2 * size - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.table, std=0.02)
        coords = torch.tensor(list(itertools.product(range(size), range(size))))  # (N, 2)
        rel = coords[:, None, :] - coords[None, :, :] + (size - 1)  # (N, N, 2)
        self.register_buffer("index", rel[..., 0] * (2 * size - 1) + rel[..., 1], persistent=False)

    def forward(self) -> torch.Tensor:
        n = self.size * self.size
        bias = self.table[self.index.reshape(-1)].reshape(n, n, -1)  # (N, N, heads)
        return bias.permute(2, 0, 1).contiguous()  # (heads, N, N)

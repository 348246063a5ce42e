"""Hourglass attention (SBCFormer): attention on a small pooled grid that gates the full map.

Paper: Lu, Suganuma and Okatani, SBCFormer, WACV 2024 (arXiv 2311.03747); layers as in the official
code (``xyongLu/SBCFormer``), see ``docs/families.md`` section 2. Used by the ``sbcformer`` family
(one block per stage) and the ``hybrid`` family (the "hourglass" mixer).

The input is average-pooled to a ``grid × grid`` map, mixed by InvRes blocks, run through MAttn
layers (modified attention with a LeViT-style offset bias and a depthwise value branch) and brought
back to the input size by a depthwise transposed conv (kernel = stride = ``ratio``) + BN. The result
gates the input through a hard sigmoid, and a point-wise conv + BN fuses both. Off the size the
block was built for (``grid · ratio``) the pooling is adaptive and the upsampled map is bilinearly
resized to the input (SBCFormer's code only runs at its design size; that resize is archlab's).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from archlab.layers.attention import attend
from archlab.layers.conv import ConvNormAct
from archlab.layers.drop import DropPath
from archlab.layers.inverted_residual import InvertedResidual
from archlab.layers.pool import adaptive_pool2d

__all__ = ["HourglassAttention", "MAttention", "MAttnLayer", "OffsetBias"]


class OffsetBias(nn.Module):
    """LeViT-style attention bias: one scalar per head per absolute offset (|Δrow|, |Δcol|).

    A ``grid × grid`` map has ``grid²`` distinct offsets; ``forward()`` returns (heads, N, N),
    N = grid². Table entries are ordered row-major by offset, initialised to zero.
    """

    index: torch.Tensor  # buffer (N, N): each pair's offset, a column of the table

    def __init__(self, grid: int, num_heads: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.zeros(num_heads, grid * grid))
        points = list(itertools.product(range(grid), range(grid)))
        index = [abs(r1 - r2) * grid + abs(c1 - c2) for r1, c1 in points for r2, c2 in points]
        n = len(points)
        self.register_buffer("index", torch.tensor(index).view(n, n), persistent=False)

    def forward(self) -> torch.Tensor:
        return self.table[:, self.index]  # (heads, N, N)


class MAttention(nn.Module):
    """Modified attention on a grid × grid map of tokens (B, N, C) → (B, N, C).

    One PW conv (with bias) gives q | k | v; the values get a local DW 3×3 → BN → GELU branch added
    back; ``softmax(q kᵀ / sqrt(key_dim) + bias) v`` per head; a linear projection (h·d_v → C).

    Args:
        dim: token width C.
        num_heads: heads h.
        key_dim: query/key size per head.
        value_dim: value size per head (SBCFormer: 2 × key_dim); h·value_dim need not equal C.
        grid: side of the token grid (N = grid²).
    """

    def __init__(self, dim: int, num_heads: int, key_dim: int, value_dim: int, grid: int) -> None:
        super().__init__()
        self.grid, self.num_heads = grid, num_heads
        self.qk_dim = num_heads * key_dim
        self.v_dim = num_heads * value_dim
        self.qkv = nn.Conv2d(dim, 2 * self.qk_dim + self.v_dim, 1)
        self.v_local = ConvNormAct(self.v_dim, self.v_dim, 3, groups=self.v_dim, act="gelu")
        self.bias = OffsetBias(grid, num_heads)
        self.proj = nn.Linear(self.v_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        x = x.transpose(1, 2).reshape(b, c, self.grid, self.grid)
        q, k, v = self.qkv(x).split([self.qk_dim, self.qk_dim, self.v_dim], dim=1)
        v = v + self.v_local(v)
        q, k, v = (t.reshape(b, self.num_heads, -1, n).transpose(2, 3) for t in (q, k, v))
        o = attend(q, k, v, self.bias())  # (B, heads, N, d_v)
        return self.proj(o.transpose(1, 2).reshape(b, n, self.v_dim))


class MAttnLayer(nn.Module):
    """Pre-norm transformer layer on tokens (B, N, C): MAttention, then MLP (Lin → GELU → Lin).

    Args:
        dim, num_heads, key_dim, value_dim, grid: as :class:`MAttention`.
        mlp_ratio: MLP expansion.
        drop_path: stochastic-depth rate of both residual branches.
    """

    def __init__(
        self, dim: int, num_heads: int, key_dim: int, value_dim: int, grid: int,
        mlp_ratio: float = 4.0, drop_path: float = 0.0,
    ) -> None:  # fmt: skip
        super().__init__()
        hidden = round(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MAttention(dim, num_heads, key_dim, value_dim, grid)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class HourglassAttention(nn.Module):
    """SBCFormer's two-stream block: a local stream and a pooled global stream that gates it. NCHW.

    ``x = depth_invres × InvRes(x)`` (the local stream; none by default);
    ``g = up(MAttn^L(Mixer(pool(x))))``; ``out = BN(PW(concat[g, x ⊙ HSig(BN(PW(g)))]))``.
    No residual around the block (the caller adds one if it wants).

    Args:
        dim: channels C.
        num_heads: heads of the MAttn layers.
        key_dim: query/key size per head.
        value_dim: value size per head.
        grid: side P of the pooled map the MAttn layers see.
        ratio: map side / P at the size the block is built for: kernel and stride of the
            transposed conv (1: no pooling, no upsampling).
        drop_paths: stochastic-depth rate of each MAttn layer; its length is the number L of layers.
        mlp_ratio: MLP expansion of the MAttn layers.
        depth_mixer: InvRes blocks ("Mixer") on the pooled map before the MAttn layers.
        mixer_ratio: expansion of the Mixer's InvRes blocks.
        depth_invres: InvRes blocks on the full map before the two streams (SBCFormer: m_i).
        invres_ratio: expansion of those InvRes blocks.
    """

    def __init__(
        self, dim: int, num_heads: int, key_dim: int, value_dim: int, grid: int, ratio: int,
        drop_paths: list[float], mlp_ratio: float = 4.0, depth_mixer: int = 2,
        mixer_ratio: float = 2.0, depth_invres: int = 0, invres_ratio: float = 2.0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.grid = grid
        self.invres = nn.Sequential(
            *[InvertedResidual(dim, invres_ratio) for _ in range(depth_invres)]
        )
        self.mixer = nn.Sequential(
            *[InvertedResidual(dim, mixer_ratio) for _ in range(depth_mixer)]
        )
        self.mattn = nn.Sequential(*[
            MAttnLayer(dim, num_heads, key_dim, value_dim, grid, mlp_ratio, p) for p in drop_paths
        ])  # fmt: skip
        self.up: nn.Module = nn.Identity()
        if ratio > 1:
            self.up = nn.Sequential(
                nn.ConvTranspose2d(dim, dim, ratio, stride=ratio, groups=dim), nn.BatchNorm2d(dim)
            )
        self.gate = ConvNormAct(dim, dim, 1, act="hardsigmoid")  # HSig(BN(PW(g)))
        self.fuse = ConvNormAct(2 * dim, dim, 1, act=None)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        """Average-pool to grid × grid: AvgPool k = s = ratio when exact, else adaptive."""
        if x.shape[-2:] == (self.grid, self.grid):
            return x
        return adaptive_pool2d(x, self.grid, "avg")

    def _global(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = self.mixer(self._pool(x))  # (B, C, P, P)
        g = self.mattn(g.flatten(2).transpose(1, 2))  # (B, P², C)
        g = self.up(g.transpose(1, 2).reshape(b, c, self.grid, self.grid))  # (B, C, s, s)
        if g.shape[-2:] != (h, w):  # off the design size only: archlab's deviation
            g = F.interpolate(g, size=(h, w), mode="bilinear", align_corners=False)
        return g  # (B, C, H, W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.invres(x)  # local stream
        g = self._global(x)
        return self.fuse(torch.cat([g, x * self.gate(g)], dim=1))

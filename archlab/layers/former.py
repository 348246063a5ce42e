"""Former tokens and their bridges to the feature map (Mobile-Former).

Paper: Chen et al., Mobile-Former, CVPR 2022 (arXiv 2108.05895); layers as in the authors' code
(``AAboys/MobileFormer``), where it differs from the paper see ``docs/families.md`` section 3. Used
by the ``mobileformer`` family and the ``hybrid`` family (the "former" mixer).

A few global tokens ``z`` (B, M, d) read the map through :class:`MobileToFormer`, attend among
themselves in :class:`Former`, and the map reads them back through :class:`FormerToMobile`. Neither
bridge projects the map side, so the cost stays about ``2·M·H·W·C`` per bridge. Attention runs on
(B, heads, N, head_dim) through ``archlab.layers.attend`` so that its matmuls are counted.
"""

from __future__ import annotations

import torch
from torch import nn

from archlab.layers.attention import attend
from archlab.layers.drop import DropPath

__all__ = ["Former", "FormerToMobile", "MobileToFormer"]


class MobileToFormer(nn.Module):
    """Tokens read the map: ``z = LN(z + Lin(gate ⊙ Attn(q=Lin(z), k=v=x)))``.

    No key/value projection on the map side; ``num_heads`` heads split the map's channels. Map NCHW,
    tokens (B, M, d).

    Args:
        in_chs: channels C of the map; must divide by ``num_heads``.
        token_dim: token width d.
        num_heads: heads of the cross attention.
        dynamic_gate: the code's per-token, per-channel gate ``2·HSig(Lin(z))`` (paper: none).
        drop_path: stochastic-depth rate of the token update.
    """

    def __init__(
        self, in_chs: int, token_dim: int, num_heads: int, dynamic_gate: bool, drop_path: float
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(token_dim, in_chs)
        self.gate = (
            nn.Sequential(nn.Linear(token_dim, in_chs), nn.Hardsigmoid()) if dynamic_gate else None
        )
        self.proj = nn.Linear(in_chs, token_dim)
        self.drop_path = DropPath(drop_path)
        self.norm = nn.LayerNorm(token_dim)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        m, heads = z.shape[1], self.num_heads
        q = self.q(z).reshape(b, m, heads, c // heads).transpose(1, 2)  # (B, heads, M, C/heads)
        kv = x.reshape(b, heads, c // heads, h * w).transpose(2, 3)  # (B, heads, HW, C/heads)
        t = attend(q, kv, kv).transpose(1, 2).reshape(b, m, c)  # (B, M, C)
        if self.gate is not None:
            t = t * (2 * self.gate(z))
        return self.norm(z + self.drop_path(self.proj(t)))


class Former(nn.Module):
    """Post-norm transformer layer on the tokens (B, M, d): query-only attention (code), FFN.

    ``z = LN(z + Lin(Attn(q=Lin(z), k=v=z)))``; ``z = LN(z + FFN(z))``. With ``kv_proj`` the keys
    and values get their own projections (the paper's standard attention).

    Args:
        dim: token width d; must divide by ``num_heads``.
        num_heads: heads of the token self-attention.
        mlp_ratio: FFN expansion.
        kv_proj: key and value projections (paper) instead of the raw tokens (code).
        drop_path: stochastic-depth rate of the attention update (the code has none on the FFN).
    """

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float, kv_proj: bool, drop_path: float
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim) if kv_proj else None
        self.proj = nn.Linear(dim, dim)
        self.drop_path = DropPath(drop_path)
        self.norm1 = nn.LayerNorm(dim)
        hidden = max(1, round(dim * mlp_ratio))
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.norm2 = nn.LayerNorm(dim)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, m, d = t.shape
        t = t.reshape(b, m, self.num_heads, d // self.num_heads)
        return t.transpose(1, 2)  # (B, heads, M, d/heads)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b, m, d = z.shape
        k, v = self.kv(z).chunk(2, dim=-1) if self.kv is not None else (z, z)
        o = attend(self._split(self.q(z)), self._split(k), self._split(v))  # (B, h, M, d/h)
        z = self.norm1(z + self.drop_path(self.proj(o.transpose(1, 2).reshape(b, m, d))))
        return self.norm2(z + self.mlp(z))  # the code applies no drop-path to the FFN


class FormerToMobile(nn.Module):
    """The map reads the tokens: ``Attn(q=x, k=Lin(z), v=Lin(z))``, returned without the residual.

    No projection on the map side and no norm; ``num_heads`` heads split the map's channels. The
    caller adds the result to the map (Mobile-Former: ``x + drop_path(that)``). Map NCHW.

    Args:
        out_chs: channels C of the map; must divide by ``num_heads``.
        token_dim: token width d.
        num_heads: heads of the cross attention.
    """

    def __init__(self, out_chs: int, token_dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.k = nn.Linear(token_dim, out_chs)
        self.v = nn.Linear(token_dim, out_chs)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        m, heads = z.shape[1], self.num_heads
        q = x.reshape(b, heads, c // heads, h * w).transpose(2, 3)  # (B, heads, HW, C/heads)
        k = self.k(z).reshape(b, m, heads, c // heads).transpose(1, 2)  # (B, heads, M, C/heads)
        v = self.v(z).reshape(b, m, heads, c // heads).transpose(1, 2)
        return attend(q, k, v).transpose(2, 3).reshape(b, c, h, w)  # (B, C, H, W)

"""PLG-SA: parallel local (window) and global (pooled window) self-attention (PLG-ViT).

Papers: Ebert et al., PLG-ViT (Sensors 23(7) 3447, 2023) and Light-Weight PLG-ViT (arXiv
2307.09120, 2023); no official code is public. Block structure and the [R] readings:
``docs/families.md`` section 1. Used by the ``plgvit`` and ``hybrid`` families.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from archlab.layers.attention import RelativePositionBias, attend
from archlab.layers.pool import adaptive_pool2d

__all__ = ["PlgAttention"]


class PlgAttention(nn.Module):
    """Parallel local (window) and global (pooled window) self-attention on an NCHW map.

    Channels are split into ``C_l = dim - global_dim`` local and ``C_g = global_dim`` global
    channels. The local branch runs window attention on non-overlapping ``window × window`` windows
    (no shift; the map is padded up to whole windows); the global branch pools its channels to one
    ``global_window × global_window`` window, whatever the input size, attends over it and resizes
    back bilinearly. Each branch has its own qkv projection and head count; one shared output
    projection merges them after the concat [R].

    Args:
        dim: channels C (in and out).
        global_dim: channels C_g of the global branch, ``0 < C_g < C``.
        local_heads: heads of the local branch; must divide ``C_l``.
        global_heads: heads of the global branch; must divide ``C_g``.
        window: local window size w.
        global_window: global window size G (G² tokens).
        sampling: "max" (LW PLG-ViT) or "max_avg" (PLG-ViT: max + average pooling).
        rel_pos_bias: Swin relative position bias in both branches [R].
        branch_proj: a linear projection at the end of each branch, before the merge [R].
    """

    def __init__(
        self,
        dim: int,
        global_dim: int,
        local_heads: int,
        global_heads: int,
        window: int = 7,
        global_window: int = 7,
        sampling: Literal["max", "max_avg"] = "max",
        rel_pos_bias: bool = True,
        branch_proj: bool = True,
    ) -> None:
        super().__init__()
        self.local_dim, self.global_dim = dim - global_dim, global_dim
        self.local_heads, self.global_heads = local_heads, global_heads
        self.window, self.global_window = window, global_window
        self.sampling = sampling
        self.qkv_local = nn.Linear(self.local_dim, 3 * self.local_dim)
        self.qkv_global = nn.Linear(self.global_dim, 3 * self.global_dim)
        self.bias_local = RelativePositionBias(window, local_heads) if rel_pos_bias else None
        self.bias_global = (
            RelativePositionBias(global_window, global_heads) if rel_pos_bias else None
        )
        self.proj_local: nn.Module = nn.Identity()
        self.proj_global: nn.Module = nn.Identity()
        if branch_proj:
            self.proj_local = nn.Linear(self.local_dim, self.local_dim)
            self.proj_global = nn.Linear(self.global_dim, self.global_dim)
        self.proj = nn.Linear(dim, dim)

    def _heads(self, qkv: torch.Tensor, heads: int) -> tuple[torch.Tensor, ...]:
        b, n, c3 = qkv.shape
        qkv = qkv.reshape(b, n, 3, heads, c3 // (3 * heads)).permute(2, 0, 3, 1, 4)
        return tuple(qkv.unbind(0))  # 3 × (B, heads, N, head_dim)

    def _local(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        ws = self.window
        pad_h, pad_w = (-h) % ws, (-w) % ws
        x = F.pad(x, (0, pad_w, 0, pad_h))
        hp, wp = h + pad_h, w + pad_w
        x = x.reshape(b, c, hp // ws, ws, wp // ws, ws).permute(0, 2, 4, 3, 5, 1)
        x = x.reshape(-1, ws * ws, c)  # (B·nW, w², C_l)
        q, k, v = self._heads(self.qkv_local(x), self.local_heads)
        bias = self.bias_local() if self.bias_local is not None else None
        o = attend(q, k, v, bias)  # (B·nW, heads, w², hd)
        o = o.transpose(1, 2).reshape(b, hp // ws, wp // ws, ws, ws, c)
        o = o.permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
        return self.proj_local(o[:, :h, :w, :])  # (B, H, W, C_l)

    def _global(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = self.global_window
        s = adaptive_pool2d(x, g, "max")
        if self.sampling == "max_avg":
            s = s + adaptive_pool2d(x, g, "avg")
        tokens = s.flatten(2).transpose(1, 2)  # (B, G², C_g)
        q, k, v = self._heads(self.qkv_global(tokens), self.global_heads)
        bias = self.bias_global() if self.bias_global is not None else None
        o = attend(q, k, v, bias).transpose(1, 2).reshape(b, g, g, c)
        o = F.interpolate(o.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=False)
        return self.proj_global(o.permute(0, 2, 3, 1))  # (B, H, W, C_g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_local, x_global = x.split([self.local_dim, self.global_dim], dim=1)
        out = torch.cat([self._local(x_local), self._global(x_global)], dim=-1)  # (B, H, W, C)
        return self.proj(out).permute(0, 3, 1, 2)  # (B, C, H, W)

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archlab.measurement.flops import count_macs, count_thop_macs
from archlab.measurement.flops_compare import compare_counters


class _Norm(nn.LayerNorm):  # a subclass: thop has no rule for it
    pass


class _Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.norm = _Norm(8)
        self.proj = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x)).flatten(2).transpose(1, 2)  # (B, N, 8)
        q = self.proj(self.norm(x))
        x = F.scaled_dot_product_attention(q[:, None], q[:, None], q[:, None])[:, 0]
        return x @ x.transpose(1, 2)


def test_rows_explain_where_the_counters_differ() -> None:
    model = _Toy().eval()
    rows = compare_counters(model, 8).set_index("item")
    sdpa = rows.loc["scaled_dot_product_attention (functional)"]
    assert sdpa["fvcore_macs"] == 2 * 64 * 64 * 8 and sdpa["thop_macs"] == 0
    assert "only hooks registered modules" in sdpa["why"] and "_Toy" in sdpa["why"]
    assert rows.loc["matmul (functional)", "fvcore_macs"] == 64 * 64 * 8
    assert "no rule for _Norm" in rows.loc["_Norm modules", "why"]
    bn = rows.loc["BatchNorm2d modules"]
    assert bn["thop_macs"] > bn["fvcore_macs"] and "per input element" in bn["why"]
    assert rows.loc["Conv2d modules", "why"] == "same count"


def test_total_row_matches_both_counters() -> None:
    model = _Toy().eval()
    rows = compare_counters(model, 8)
    total = rows.iloc[-1]
    assert total["item"] == "total"
    assert total["fvcore_macs"] == count_macs(model, 8).total
    assert total["thop_macs"] == count_thop_macs(model, 8)
    assert total["diff_macs"] == rows.iloc[:-1]["diff_macs"].sum()

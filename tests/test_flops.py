from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archlab.layers import GRN
from archlab.measurement.flops import count_macs, count_params, count_thop_macs
from archlab.models import FAMILIES, build_model


class _HandCounted(nn.Module):
    """conv 3→8 (3×3, 16×16) → attention over 256 tokens, 2 heads → GRN → linear 8→4."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.qkv = nn.Linear(8, 24, bias=False)
        self.grn = GRN(8)
        self.fc = nn.Linear(8, 4, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.conv(x))  # (1, 8, 16, 16)
        t = x.flatten(2).transpose(1, 2)  # (1, 256, 8)
        q, k, v = self.qkv(t).reshape(1, 256, 3, 2, 4).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k, v)  # (1, 2, 256, 4)
        x = self.grn(o.transpose(1, 2).reshape(1, 256, 8).transpose(1, 2).reshape(1, 8, 16, 16))
        return self.fc(x.mean(dim=(2, 3)))


def _hand_macs() -> int:
    conv = 16 * 16 * 8 * 3 * 3 * 3
    qkv = 256 * 8 * 24
    attention = 2 * (256 * 256 * 4) * 2  # q·kᵀ and attn·v, 2 heads of width 4
    grn = 8 * 16 * 16 + 8  # the L2 norm (one multiply-add per element) + mean over 8 channels
    mean = 8 * 16 * 16  # the pooling mean: one add per element (fvcore's avg-pool convention)
    fc = 8 * 4
    return conv + qkv + attention + grn + mean + fc


def test_count_equals_hand_formula() -> None:
    count = count_macs(_HandCounted(), 16)
    assert count.total == _hand_macs()
    assert count.unsupported_ops == {}
    assert count.convention_zero_ops.get("aten::gelu") == 1
    assert count.by_operator["scaled_dot_product_attention"] == 2 * 256 * 256 * 4 * 2


def test_thop_misses_functional_attention() -> None:
    model = _HandCounted()
    thop = count_thop_macs(model, 16)
    assert thop < count_macs(model, 16).total - 2 * 256 * 256 * 4 * 2 + 1
    assert count_params(model) == 8 * 27 + 8 * 24 + 16 + 32  # the model itself is left unchanged
    assert not hasattr(model.conv, "total_ops")


def test_flops_are_twice_macs() -> None:
    count = count_macs(_HandCounted(), 16)
    assert count.flops == 2 * count.total


@pytest.mark.parametrize(
    "preset", [(fam, p) for fam in FAMILIES.values() for p in fam.presets], ids=lambda x: x[1]
)
def test_no_op_is_skipped_in_any_preset(preset: tuple) -> None:
    family, name = preset
    model = family.build(family.presets[name].cfg, num_classes=10)
    count = count_macs(model, 64 if family.name != "plgvit" else 224)
    assert count.unsupported_ops == {}, f"{name}: fvcore has no handler for {count.unsupported_ops}"
    assert count.total > 0


def test_count_keeps_training_mode() -> None:
    model = build_model({"preset": "lw_plgvit_r"}).train()
    count_macs(model, 224)
    assert model.training

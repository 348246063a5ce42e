from __future__ import annotations

import pytest
import torch
from torch import nn

from archlab.layers import (
    GRN,
    ConvNormAct,
    DropPath,
    LayerNorm2d,
    RelativePositionBias,
    SqueezeExcite,
    drop_path_rates,
    get_act,
    make_divisible,
)


def test_layernorm2d_matches_layernorm_over_channels() -> None:
    x = torch.randn(2, 8, 5, 3)
    ln2d, ln = LayerNorm2d(8), nn.LayerNorm(8)
    expected = ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    torch.testing.assert_close(ln2d(x), expected)


def test_grn_is_identity_at_init_and_follows_formula() -> None:
    x = torch.randn(2, 6, 4, 4)
    grn = GRN(6)
    torch.testing.assert_close(grn(x), x)
    with torch.no_grad():
        grn.gamma.fill_(0.5)
        grn.beta.fill_(0.1)
    g = x.pow(2).sum(dim=(2, 3), keepdim=True).sqrt()
    n = g / (g.mean(dim=1, keepdim=True) + 1e-6)
    torch.testing.assert_close(grn(x), 0.5 * x * n + 0.1 + x)


def test_relative_position_bias_shape_and_symmetry_of_index() -> None:
    bias = RelativePositionBias(3, num_heads=2)()
    assert bias.shape == (2, 9, 9)
    # a token's offset to itself always reads the same table entry
    assert torch.allclose(bias.diagonal(dim1=1, dim2=2), bias[:, :1, :1].expand(2, 1, 9)[:, 0])


def test_squeeze_excite_keeps_shape_and_gates() -> None:
    se = SqueezeExcite(16, rd_ratio=0.125, act="silu")
    assert se.fc1.out_channels == 2
    x = torch.randn(2, 16, 5, 5)
    y = se(x)
    assert y.shape == x.shape
    # every channel is x times one gate in (0, 1), the same at every position
    gate = y / x
    assert torch.allclose(gate, gate[:, :, :1, :1].expand_as(gate), atol=1e-5)
    assert ((gate > 0) & (gate < 1)).all()


def test_conv_norm_act_and_activation_lookup() -> None:
    block = ConvNormAct(3, 8, 3, stride=2, act="silu")
    assert block(torch.randn(1, 3, 8, 8)).shape == (1, 8, 4, 4)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        get_act("swish")


def test_drop_path_identity_in_eval_and_schedule() -> None:
    dp = DropPath(0.5).eval()
    x = torch.randn(4, 3)
    assert torch.equal(dp(x), x)
    rates = drop_path_rates([2, 3], 0.4)
    assert [len(r) for r in rates] == [2, 3]
    assert rates[0][0] == 0.0 and rates[1][-1] == pytest.approx(0.4)


def test_make_divisible_rounds_to_multiple() -> None:
    assert make_divisible(37, 8) == 40
    assert make_divisible(3, 8) == 8

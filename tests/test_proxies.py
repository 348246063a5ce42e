from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from archlab.estimate.estimates import reduced_model
from archlab.estimate.proxies import (
    PROXIES,
    _agreements,
    compute_proxies,
    grad_norm,
    probe_batch,
    probe_labelled_batch,
    synflow,
)
from archlab.space import load_space


def _tiny_model(tiny_space_path: Path, seed: int = 0) -> nn.Module:
    space = load_space(tiny_space_path)
    return reduced_model(space, space.default(), 32, num_classes=10, seed=seed)


def _conv_bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(8, 10),
    )  # fmt: skip


@pytest.mark.parametrize("name", list(PROXIES))
def test_proxies_are_finite_and_deterministic_on_a_tiny_vit(
    name: str, tiny_space_path: Path
) -> None:
    first = compute_proxies(_tiny_model(tiny_space_path), [name], 32, batch=4, seed=0)[name]
    again = compute_proxies(_tiny_model(tiny_space_path), [name], 32, batch=4, seed=0)[name]
    assert math.isfinite(first)
    assert first == again


def test_proxies_depend_on_the_initialisation(tiny_space_path: Path) -> None:
    a = compute_proxies(_tiny_model(tiny_space_path, seed=0), list(PROXIES), 32, batch=4)
    b = compute_proxies(_tiny_model(tiny_space_path, seed=1), list(PROXIES), 32, batch=4)
    assert all(a[name] != b[name] for name in PROXIES)


def test_synflow_of_a_linear_chain_by_hand() -> None:
    # For R = 1ᵀ|W2||W1|1, every layer's Σ w·∂R/∂w equals R (R is linear in each layer), so the
    # score of a two-layer chain is log(2R).
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 4, bias=False), nn.Linear(4, 3, bias=False))
    w1, w2 = net[1].weight.detach().abs().double(), net[2].weight.detach().abs().double()
    r = float((w2 @ w1 @ torch.ones(12, dtype=torch.float64)).sum())
    assert synflow(net, resolution=2) == pytest.approx(math.log(2 * r), rel=1e-12)


def test_synflow_and_grad_norm_leave_the_model_untouched() -> None:
    net = _conv_bn_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    synflow(net, resolution=8)
    grad_norm(net, *probe_labelled_batch(4, 8))
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key  # weights and BN running statistics
    assert all(p.grad is None for p in net.parameters())


def test_grad_norm_is_deterministic_with_dropout() -> None:
    x, y = probe_labelled_batch(6, 8, seed=3)
    values = {grad_norm(_conv_bn_net(), x, y, seed=0) for _ in range(2)}
    assert len(values) == 1 and next(iter(values)) > 0


def test_probe_batch_is_the_labelled_batch_without_labels() -> None:
    x, y = probe_labelled_batch(5, 16, seed=2)
    assert torch.equal(probe_batch(5, 16, seed=2), x)
    assert x.shape == (5, 3, 16, 16) and y.shape == (5,) and set(y.tolist()) <= set(range(10))
    assert x.min() >= -1.0 and x.max() <= 1.0


def test_unknown_proxy_is_rejected() -> None:
    with pytest.raises(KeyError, match="known proxies"):
        compute_proxies(nn.Linear(1, 1), ["jacov"], 8)


def test_synflow_bypasses_layernorm_and_reports_overflow_as_inf() -> None:
    torch.manual_seed(0)
    normed = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.LayerNorm(4), nn.Linear(4, 3))
    plain = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.Identity(), nn.Linear(4, 3))
    plain.load_state_dict(normed.state_dict(), strict=False)
    assert synflow(normed, resolution=2) == synflow(plain, resolution=2)
    deep = nn.Sequential(nn.Flatten(), *[nn.Linear(12, 12) for _ in range(300)])
    with torch.no_grad():
        for layer in deep[1:]:
            layer.weight.fill_(1.0)
    assert synflow(deep, resolution=2) == float("inf")  # R ≥ 12^300 ≈ e^745 overflows float64


def test_naswot_agreements_count_equal_units_exactly() -> None:
    codes = torch.rand(6, 1000, generator=torch.Generator().manual_seed(0)) > 0.5
    c = codes.double()
    by_definition = c @ c.T + (1 - c) @ (1 - c).T
    assert torch.equal(_agreements(codes), by_definition)
    hamming = (codes[:, None, :] != codes[None, :, :]).sum(-1).double()
    assert torch.equal(_agreements(codes), 1000 - hamming)

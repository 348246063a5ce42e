from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archlab.estimate import data as data_module
from archlab.estimate.data import ImageData
from archlab.estimate.estimates import reduced_model
from archlab.estimate.proxies import (
    PROXIES,
    SWAP_MIN_SAMPLES,
    _agreements,
    compute_proxies,
    grad_norm,
    meco,
    probe_batch,
    probe_labelled_batch,
    swap,
    synflow,
    zico,
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


# --- probe batches from a data set ---


def _fake_data() -> ImageData:
    """Train images all of value 10·k (k = 0..19, label k % 10), val images all 255: told apart."""
    train = torch.stack([torch.full((3, 8, 8), 10 * k, dtype=torch.uint8) for k in range(20)])
    val = torch.full((5, 3, 8, 8), 255, dtype=torch.uint8)
    classes = tuple(str(c) for c in range(10))
    labels = torch.arange(20) % 10
    return ImageData("fake", classes, train, labels, val, torch.zeros(5, dtype=torch.int64))


def test_probe_batches_from_a_named_data_set_use_seeded_training_images(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _fake_data()
    asked: list[tuple[object, int]] = []

    def load(data: object, resolution: int) -> ImageData:
        asked.append((data, resolution))
        return fake

    monkeypatch.setattr(data_module, "load_data", load)
    x, y = probe_labelled_batch(6, 8, seed=1, data="a-named-set")
    assert asked == [("a-named-set", 8)]
    assert x.shape == (6, 3, 8, 8) and x.dtype == torch.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    k = ((x[:, 0, 0, 0] + 1) * 127.5).round().long() // 10  # which training image
    assert len(set(k.tolist())) == 6 and int(k.max()) < 20  # distinct, never a val image (255)
    assert torch.equal(y, k % 10)  # labels travel with their images
    again, _ = probe_labelled_batch(6, 8, seed=1, data="a-named-set")
    other, _ = probe_labelled_batch(6, 8, seed=2, data="a-named-set")
    assert torch.equal(x, again) and not torch.equal(x, other)
    assert torch.equal(probe_batch(6, 8, seed=1, data="a-named-set"), x)


def test_digits_by_name_is_the_default_probe_data() -> None:
    assert torch.equal(probe_batch(4, 16, seed=3, data="digits"), probe_batch(4, 16, seed=3))


def test_compute_proxies_threads_the_data_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_module, "load_data", lambda data, resolution: _fake_data())
    net = _conv_bn_net()
    on_digits = compute_proxies(net, ["naswot", "grad_norm"], 8, batch=4)
    on_fake = compute_proxies(net, ["naswot", "grad_norm"], 8, batch=4, data="fake")
    assert on_digits != on_fake


# --- ZiCo ---


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 4))


def _labelled(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 2, 2, generator=gen), torch.randint(0, 4, (n,), generator=gen)


def test_zico_by_hand_on_a_two_layer_mlp() -> None:
    net = _mlp()
    batches = [_labelled(5, 1), _labelled(5, 2), _labelled(5, 3)]
    per_batch = []
    for x, y in batches:
        net.zero_grad()
        F.cross_entropy(net(x), y).backward()
        per_batch.append([net[1].weight.grad.clone().double(), net[3].weight.grad.clone().double()])
    expected = 0.0
    for layer in range(2):
        g = torch.stack([grads[layer] for grads in per_batch])  # (batches, out, in)
        mean_abs = g.abs().mean(0)
        std = ((g - g.mean(0)) ** 2).mean(0).sqrt()  # population standard deviation
        keep = std > 0
        expected += math.log(float((mean_abs[keep] / std[keep]).sum()))
    net.zero_grad(set_to_none=True)
    assert zico(net, batches) == pytest.approx(expected, rel=1e-9)


def test_zico_is_deterministic_for_a_seed_with_dropout() -> None:
    batches = [probe_labelled_batch(4, 8, seed=s) for s in (0, 1)]
    first = zico(_conv_bn_net(), batches, seed=0)
    assert math.isfinite(first)
    assert zico(_conv_bn_net(), batches, seed=0) == first
    assert zico(_conv_bn_net(), batches, seed=1) != first  # other dropout masks


def test_zico_leaves_the_model_untouched() -> None:
    net = _conv_bn_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    zico(net, [probe_labelled_batch(4, 8, seed=s) for s in (0, 1)])
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None for p in net.parameters())


def test_zico_degenerate_cases() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        zico(_mlp(), [_labelled(4, 0)])
    same = _labelled(4, 0)
    # identical batches: no weight's gradient varies, no layer has a score
    assert zico(_mlp(), [same, same]) == float("-inf")


def test_zico_in_compute_proxies_uses_two_disjoint_mini_batches() -> None:
    net = _conv_bn_net()
    x, y = probe_labelled_batch(2 * 3, 8, seed=5)
    by_hand = zico(net, [(x[:3], y[:3]), (x[3:], y[3:])], seed=5)
    assert compute_proxies(net, ["zico"], 8, batch=3, seed=5)["zico"] == by_hand


# --- SWAP ---


def _identity_relu(units: int) -> nn.Module:
    layer = nn.Linear(units, units, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(units))
    return nn.Sequential(layer, nn.ReLU())


def test_swap_counts_distinct_sample_wise_patterns_by_hand() -> None:
    # 3 samples × 5 neurons; the neurons' patterns (columns) are 101, 101, 010, 111, 000: 4 distinct
    inputs = torch.tensor(
        [[1.0, 2.0, -1.0, 3.0, -1.0], [-1.0, -2.0, 1.0, 3.0, -1.0], [1.0, 5.0, -2.0, 3.0, -4.0]]
    )
    assert swap(_identity_relu(5), inputs) == 4.0


def test_swap_is_minimal_when_every_neuron_agrees() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 32), nn.GELU(), nn.Linear(32, 32), nn.GELU())
    with torch.no_grad():
        for m in (net[0], net[2]):
            m.weight.abs_()
            m.bias.abs_()
    positive = torch.rand(16, 6) + 0.1
    assert swap(net, positive) == 1.0  # every neuron active on every sample: one pattern
    same = torch.randn(1, 6).expand(16, -1)
    assert swap(_mlp_gelu(), same) <= 2.0  # identical samples: only all-on and all-off
    assert swap(_mlp_gelu(), torch.randn(16, 6)) > 2.0


def _mlp_gelu() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 64), nn.GELU(), nn.Linear(64, 64), nn.GELU())


def test_swap_packs_long_patterns_exactly() -> None:
    # more samples than one 64-bit word: compare with torch.unique on the boolean patterns
    net = _mlp_gelu()
    inputs = torch.randn(70, 6, generator=torch.Generator().manual_seed(0))
    codes = []
    hooks = [
        m.register_forward_hook(lambda _, a, __: codes.append((a[0] > 0).T))
        for m in net.modules()
        if isinstance(m, nn.GELU)
    ]
    with torch.no_grad():
        net(inputs)
    for h in hooks:
        h.remove()
    expected = torch.unique(torch.cat(codes).to(torch.uint8), dim=0).shape[0]
    assert swap(net, inputs) == float(expected)


def test_swap_without_activations_is_zero() -> None:
    assert swap(nn.Linear(4, 3), torch.randn(5, 4)) == 0.0


def test_swap_takes_at_least_sixteen_samples() -> None:
    net = _conv_bn_net()
    assert compute_proxies(net, ["swap"], 8, batch=4, seed=2)["swap"] == swap(
        net, probe_batch(SWAP_MIN_SAMPLES, 8, seed=2)
    )


def _smallest_eigenvalue_by_numpy(feature_map: torch.Tensor) -> float:
    import numpy as np

    rows = feature_map.reshape(feature_map.shape[0], -1).double().numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(np.corrcoef(rows), nan=0.0)
    return float(np.linalg.eigvalsh(corr).min())


def test_meco_by_hand_sums_the_smallest_correlation_eigenvalue_of_every_map() -> None:
    torch.manual_seed(0)
    conv, relu = nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()
    net = nn.Sequential(conv, relu, nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    image = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        out = conv(image)[0]
    # the conv's map and the ReLU's; flattened vectors and logits have no rows to correlate
    expected = _smallest_eigenvalue_by_numpy(out) + _smallest_eigenvalue_by_numpy(out.relu())
    assert meco(net, image) == pytest.approx(expected, rel=1e-9)
    assert 0 < expected < 2  # each term lies in [0, 1]: a correlation matrix is PSD with trace 4


def test_meco_scores_dependent_channels_zero_and_independent_ones_near_one() -> None:
    class Copies(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :1].expand(-1, 4, -1, -1).contiguous()  # four copies of one channel

    class Noise(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(0))

    image = torch.randn(1, 3, 8, 8)
    assert meco(Copies(), image) == pytest.approx(0.0, abs=1e-9)
    assert meco(Noise(), image) == pytest.approx(1.0, abs=0.05)  # near-identity correlation


def test_meco_takes_one_image_and_leaves_the_model_untouched() -> None:
    net = _conv_bn_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    image = probe_batch(1, 8, seed=0)
    assert meco(net, image) == meco(net, image)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with pytest.raises(ValueError, match="one image"):
        meco(net, probe_batch(2, 8, seed=0))
    by_name = compute_proxies(net, ["meco"], 8, batch=4, seed=0)["meco"]
    assert by_name == meco(net, probe_batch(4, 8, seed=0)[:1])

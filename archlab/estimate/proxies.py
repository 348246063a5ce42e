"""Training-free accuracy proxies computed at initialisation.

Every proxy is deterministic given the model's weights, the probe batch and a seed.

``naswot``: Mellor et al., "Neural Architecture Search without Training", ICML 2021. Each sample of
a small batch gets a binary code: which units of every activation layer are active (pre-activation
> 0; for GELU/SiLU networks this is the sign pattern the smooth activation approximates). The score
is ``log|det K|`` with ``K[i, j]`` the number of units on which samples i and j agree: architectures
whose units separate inputs well at initialisation tend to train to higher accuracy. It costs one
forward pass of the batch.

``synflow``: the synaptic-flow saliency of Tanaka et al., "Pruning neural networks without any data
by iteratively conserving synaptic flow", NeurIPS 2020, summed over the network as a NAS proxy by
Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021: every parameter is replaced
by its absolute value, an all-ones image is passed forward, ``R = sum(output)`` is back-propagated
and the score is ``Σ |θ·∂R/∂θ|`` over the weights of every convolution and linear layer. It needs no
data. Synflow assumes a positively homogeneous network, which normalisation breaks: Abdelfattah et
al. remove BatchNorm, and we go one step further and bypass every normalisation layer (BatchNorm,
LayerNorm, GroupNorm, GRN) with the identity. Kept, LayerNorm re-centres the all-positive signal,
the activations zero much of it, and the score of some of our ViTs was exactly 0. It runs on a
copy of the model in eval mode and float64 (products of absolute weights over tens of layers
overflow float32); softmax and GELU remain, so for transformers the score is a heuristic rather
than Tanaka et al.'s conserved quantity. We return ``log`` of the sum; the ranking is unchanged.
Deep attention networks can still exceed float64's range (about e^709), mostly in the backward
pass through saturated softmaxes; such a score is returned as ``+inf``, ranked above every finite
one, and an exactly vanishing one as ``-inf``.

``grad_norm``: Abdelfattah et al. (above): ``Σ ‖∂L/∂W‖₂`` over the weights of every convolution
and linear layer, for the cross-entropy loss of one labelled batch in training mode (BatchNorm with
batch statistics). Run on a copy, so the model's buffers (BN running statistics) are not touched.

``params`` and ``macs``, the plain baselines, are counted by :mod:`archlab.measurement.flops`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archlab.layers import ACTIVATIONS, GRN

__all__ = [
    "PROXIES",
    "compute_proxies",
    "grad_norm",
    "naswot",
    "probe_batch",
    "probe_labelled_batch",
    "synflow",
]

_ACT_TYPES = tuple(
    t for name, t in ACTIVATIONS.items() if name not in ("identity", "sigmoid", "hardsigmoid")
)
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm, GRN)


@cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # ships with scikit-learn: no download

    bunch = load_digits()
    return bunch.images.astype(np.float32) / 16.0, bunch.target.astype(np.int64)  # (1797, 8, 8)


def probe_labelled_batch(
    batch: int, resolution: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A small batch of real images (scikit-learn digits, upsampled, 3 channels) and its labels."""
    images, labels = _digits()
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(images), batch, replace=False)
    x = F.interpolate(
        torch.from_numpy(images[idx])[:, None], size=(resolution, resolution), mode="bilinear"
    )
    x = (x - 0.5) / 0.5
    return x.expand(-1, 3, -1, -1).contiguous(), torch.from_numpy(labels[idx])


def probe_batch(batch: int, resolution: int, seed: int = 0) -> torch.Tensor:
    """A small batch of real images (scikit-learn digits, upsampled, 3 channels), seeded."""
    return probe_labelled_batch(batch, resolution, seed)[0]


def naswot(model: nn.Module, inputs: torch.Tensor) -> float:
    """NASWOT score of ``model`` on ``inputs`` (higher is better)."""
    n = inputs.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64)

    def hook(_: nn.Module, args: tuple[torch.Tensor, ...], __: torch.Tensor) -> None:
        kernel.add_(_agreements(args[0].detach().reshape(n, -1) > 0))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _ACT_TYPES)]
    try:
        model.eval()
        with torch.inference_mode():
            model(inputs)
    finally:
        for h in handles:
            h.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else float("-inf")


# float32 holds every integer up to 2**24 exactly: below that many units, products are exact
_EXACT_FLOAT32 = 2**24


def _agreements(codes: torch.Tensor) -> torch.Tensor:
    """``A[i, j]``: units on which the binary rows ``i`` and ``j`` of ``codes`` agree, in float64.

    Agreeing on ones plus agreeing on zeros, ``c·cᵀ + (1−c)·(1−c)ᵀ``, is ``2·c·cᵀ − s_i − s_j + D``
    with ``s`` the row sums and ``D`` the units: one product instead of two, no ``1 − c`` copy.
    """
    units = codes.shape[1]
    dtype = torch.float32 if units < _EXACT_FLOAT32 else torch.float64
    c = codes.to(dtype)
    ones = (c @ c.T).double()
    sums = c.sum(1, dtype=torch.float64)
    return 2 * ones - sums[:, None] - sums[None, :] + units


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, _WEIGHTED)]


def _bypass(_: nn.Module, args: tuple[torch.Tensor, ...], __: torch.Tensor) -> torch.Tensor:
    return args[0]  # the layer's output is replaced by its input


def synflow(model: nn.Module, resolution: int, in_chans: int = 3) -> float:
    """log of the synflow score of ``model`` for a ``resolution``² input (higher is better)."""
    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    for m in net.modules():
        if isinstance(m, _NORMS):
            m.register_forward_hook(_bypass)
    net.zero_grad(set_to_none=True)
    ones = torch.ones(1, in_chans, resolution, resolution, dtype=torch.float64)
    net(ones).sum().backward()
    with torch.no_grad():
        total = sum(float((w * w.grad).abs().sum()) for w in _weights(net) if w.grad is not None)
    if not math.isfinite(total):  # overflow (inf, or inf × 0 = nan): beyond float64's range
        return float("inf")
    return math.log(total) if total > 0 else float("-inf")


def grad_norm(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, seed: int = 0
) -> float:
    """Sum of the gradient norms of every conv/linear weight for one batch (higher is better)."""
    net = copy.deepcopy(model).train()
    net.zero_grad(set_to_none=True)
    with torch.random.fork_rng():  # dropout / drop-path draw from a fixed stream
        torch.manual_seed(seed)
        F.cross_entropy(net(inputs), targets).backward()
    with torch.no_grad():
        return sum(float(w.grad.norm()) for w in _weights(net) if w.grad is not None)


#: name → proxy(model, resolution, batch, seed); each is deterministic in its arguments and weights.
PROXIES: dict[str, Callable[[nn.Module, int, int, int], float]] = {
    "naswot": lambda m, res, batch, seed: naswot(m, probe_batch(batch, res, seed)),
    "synflow": lambda m, res, batch, seed: synflow(m, res),
    "grad_norm": lambda m, res, batch, seed: grad_norm(
        m, *probe_labelled_batch(batch, res, seed), seed=seed
    ),
}


def compute_proxies(
    model: nn.Module,
    names: list[str] | tuple[str, ...],
    resolution: int,
    batch: int = 8,
    seed: int = 0,
) -> dict[str, float]:
    """The named proxies of ``model`` at ``resolution`` on a seeded probe batch of ``batch`` digits.

    Raises:
        KeyError: an unknown proxy name; the message lists the known ones.
    """
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise KeyError(f"unknown proxy {unknown}; known proxies: {list(PROXIES)}")
    return {name: PROXIES[name](model, resolution, batch, seed) for name in names}

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

``zico``: Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients", ICLR
2023. Over ``B ≥ 2`` labelled mini-batches (cross-entropy, training mode, on a copy of the model),
every weight ``θ`` of every convolution and linear layer ``l`` gets one gradient per mini-batch,
``g_b(θ)``; the score is ``Σ_l log( Σ_{θ ∈ l} mean_b|g_b(θ)| / std_b(g_b(θ)) )``: layers whose
weights receive gradients that are large and consistent from batch to batch (a high inverse
coefficient of variation) are taken to train fast and generalise well. As in the authors' code,
``std`` is the population standard deviation (``1/B``) of the signed gradient, the mean is that of
its absolute value, ``B = 2`` mini-batches by default, and weights whose gradient does not vary
(std 0: e.g. cut off by the loss) are left out of their layer's sum. Unlike the authors' code,
which never clears gradients between its batches (its second "batch" gradient is the sum of the
first two), each mini-batch's gradient is its own, which is what the paper's expectation over
samples asks for. Deviations for our ViTs: only conv/linear weights count (attention's linear
projections included; relative-position tables, ParC kernels, LayerNorm/BatchNorm/GRN affine
parameters are not), BatchNorm uses batch statistics, dropout / drop-path draw from a seeded
stream. Degenerate cases: a layer the loss does not reach (no gradient) or whose sum is 0 or not
finite is skipped (the authors skip zero sums); a network with no usable layer scores ``-inf``.
Cost: ``B`` forward and backward passes.

``swap``: the SWAP-Score of Peng et al., "SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast
NAS", ICLR 2024. For a batch of ``S`` images, every neuron (every element of every activation
layer's input, i.e. one channel at one position or token) has a sample-wise activation pattern:
the binary vector of length ``S`` telling on which samples it is active (pre-activation > 0). The
score is the number of distinct patterns among all neurons of all activation layers (duplicates
across layers count once, as in the authors' code), at most ``min(#neurons, 2^S)``: a network
whose neurons split the batch in many different ways is taken to be more expressive. It costs one
forward pass. The authors hook ReLUs on 4-D (convolutional) feature maps only; our ViTs use GELU
(also SiLU, Hardswish, ReLU6), whose output is positive exactly where its input is, so we take the
sign of the input of every such activation module, including the GELUs of token MLPs (3-D).
Normalisation layers and softmax attention are left as they are. ``S`` is the probe batch but at
least :data:`SWAP_MIN_SAMPLES` (16, the authors' default): with 8 images the 2^8 = 256 possible
patterns would be reached by every one of our models. The score is the basic SWAP, without the
paper's size regularisation (SWAP-reg multiplies it by ``exp(-(P − μ)² / σ)``, ``P`` the parameter
count, with ``μ`` and ``σ`` tuned to the model size wanted): our searches control size with their
own cost objectives, and ``params`` is scored as an estimate of its own. A network without an
activation layer scores 0.

``meco``: Jiang, Wang and Bie, "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via
Minimum Eigenvalue of Correlation", NeurIPS 2023. One image is passed forward (the first of the
probe batch; eval mode); for the output of every module, the rows of its feature map (the first
dimension after the batch: channels of a ``C×H×W`` map, tokens of an ``N×C`` sequence, as in the
authors' code, which hooks every module alike) are correlated with each other (Pearson, over the
row's values), and the score is the sum over modules of that correlation matrix's smallest
eigenvalue: feature maps whose rows are far from linearly dependent are taken to train well.
Undefined correlations (a constant row) count as 0, as the authors set them; outputs of fewer than
two non-batch dimensions (logits, pooled vectors), or with a single row or a single value per row,
are skipped, where the authors' code gets 0 for them anyway. A map with more rows than values per
row (at 32 px: late stages with hundreds of channels over 16 positions) has a singular correlation
matrix and adds about 0, so the score leans on the early, large maps. Eigenvalues are computed in
float64 with ``eigvalsh`` (the matrix is symmetric); the authors take the real part of ``eig``.
Cost: one forward pass of one image and an eigenvalue problem per module.

``params`` and ``macs``, the plain baselines, are counted by :mod:`archlab.measurement.flops`.

Probe data: every proxy but synflow takes its images from a named data set (``data``):
``"digits"`` (the default; scikit-learn's bundled digits, all 1797 images, upsampled bilinearly)
or any name or folder :func:`archlab.estimate.data.load_data` accepts, e.g. ``"fashion-mnist"``;
images are then a seeded choice from the data set's training split (never its validation or test
images), scaled to [-1, 1] like the training inputs.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archlab.estimate.data import sample_training_images, to_input
from archlab.layers import ACTIVATIONS, GRN

__all__ = [
    "DIGITS",
    "PROXIES",
    "SWAP_MIN_SAMPLES",
    "ZICO_BATCHES",
    "compute_proxies",
    "grad_norm",
    "meco",
    "naswot",
    "probe_batch",
    "probe_labelled_batch",
    "swap",
    "synflow",
    "zico",
]

DIGITS = "digits"  # the default probe data set: bundled with scikit-learn, no download
ZICO_BATCHES = 2  # mini-batches of ZiCo's gradient statistics (the authors' setting)
SWAP_MIN_SAMPLES = 16  # fewest images of SWAP's batch (the authors' default input_samples)

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
    batch: int, resolution: int, seed: int = 0, data: str | Path | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded batch of real images (3 channels, in [-1, 1]) and its labels.

    ``data``: ``None`` or ``"digits"``: scikit-learn's digits, upsampled; else a data set by name
    or folder (:func:`archlab.estimate.data.load_data`, e.g. ``"fashion-mnist"``), drawn from its
    training split only.
    """
    rng = np.random.default_rng(seed)
    if data is None or str(data) == DIGITS:
        images, labels = _digits()
        idx = rng.choice(len(images), batch, replace=False)
        x = F.interpolate(
            torch.from_numpy(images[idx])[:, None], size=(resolution, resolution), mode="bilinear"
        )
        x = (x - 0.5) / 0.5
        return x.expand(-1, 3, -1, -1).contiguous(), torch.from_numpy(labels[idx])
    drawn, drawn_labels = sample_training_images(data, resolution, batch, rng)
    return to_input(drawn), drawn_labels


def probe_batch(
    batch: int, resolution: int, seed: int = 0, data: str | Path | None = None
) -> torch.Tensor:
    """The images of :func:`probe_labelled_batch` (same arguments, same images)."""
    return probe_labelled_batch(batch, resolution, seed, data)[0]


def _each_activation_pattern(
    model: nn.Module, inputs: torch.Tensor, use: Callable[[torch.Tensor], object]
) -> None:
    """One eval-mode forward pass of ``inputs``; ``use`` gets, for every activation layer, which
    of its input units are on (pre-activation > 0) for each sample: a bool (samples, units)."""
    n = len(inputs)

    def hook(_: nn.Module, args: tuple[torch.Tensor, ...], __: torch.Tensor) -> None:
        use(args[0].detach().reshape(n, -1) > 0)

    _hooked_eval_pass(
        model, inputs, hook, [m for m in model.modules() if isinstance(m, _ACT_TYPES)]
    )


def _hooked_eval_pass(
    model: nn.Module, inputs: torch.Tensor, hook: Callable[..., None], modules: list[nn.Module]
) -> None:
    """One eval-mode, inference-mode forward pass of ``inputs`` with ``hook`` on ``modules``."""
    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        model.eval()
        with torch.inference_mode():
            model(inputs)
    finally:
        for h in handles:
            h.remove()


def naswot(model: nn.Module, inputs: torch.Tensor) -> float:
    """NASWOT score of ``model`` on ``inputs`` (higher is better)."""
    n = inputs.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64)
    _each_activation_pattern(model, inputs, lambda on: kernel.add_(_agreements(on)))
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


def zico(
    model: nn.Module, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], seed: int = 0
) -> float:
    """ZiCo score of ``model`` over labelled mini-batches ``[(x, y), ...]`` (higher is better).

    Raises:
        ValueError: fewer than two mini-batches (a standard deviation needs two).
    """
    if len(batches) < 2:
        raise ValueError(f"ZiCo needs at least 2 mini-batches, got {len(batches)}")
    net = copy.deepcopy(model).train()
    weights = _weights(net)
    grads: list[list[torch.Tensor]] = [[] for _ in weights]
    with torch.random.fork_rng():  # dropout / drop-path draw from a fixed stream
        torch.manual_seed(seed)
        for x, y in batches:
            net.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), y).backward()
            for store, w in zip(grads, weights):
                if w.grad is not None:
                    store.append(w.grad.detach().flatten().double())
    total, layers = 0.0, 0
    with torch.no_grad():
        for store in grads:
            if len(store) < len(batches):  # the loss does not reach this layer
                continue
            g = torch.stack(store)  # (batches, weights of the layer)
            std = g.std(0, correction=0)
            mean_abs = g.abs().mean(0)
            keep = std > 0
            layer_sum = float((mean_abs[keep] / std[keep]).sum())
            if layer_sum > 0 and math.isfinite(layer_sum):
                total += math.log(layer_sum)
                layers += 1
    return total if layers else float("-inf")


def meco(model: nn.Module, image: torch.Tensor) -> float:
    """MeCo score of ``model`` for one image (a batch of 1; higher is better)."""
    if image.shape[0] != 1:
        raise ValueError(f"MeCo takes one image; got a batch of {image.shape[0]}")
    eigenvalues: list[float] = []

    def hook(_: nn.Module, __: tuple[torch.Tensor, ...], out: object) -> None:
        if isinstance(out, torch.Tensor) and out.dim() >= 3:
            rows = out[0].reshape(out.shape[1], -1)
            if min(rows.shape) >= 2:  # else no correlation is defined (the authors' code: 0)
                eigenvalues.append(_smallest_correlation_eigenvalue(rows))

    _hooked_eval_pass(model, image, hook, list(model.modules()))
    finite = [v for v in eigenvalues if math.isfinite(v)]
    return float(sum(finite))


def _smallest_correlation_eigenvalue(rows: torch.Tensor) -> float:
    """Smallest eigenvalue of the Pearson correlation matrix of ``rows``; undefined entries 0."""
    corr = torch.corrcoef(rows.double())
    corr = torch.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0)
    return float(torch.linalg.eigvalsh(corr)[0])


def _pattern_words(active: torch.Tensor) -> np.ndarray:
    """(samples, neurons) bool → (neurons, words) uint64: each neuron's pattern as packed bits."""
    bits = np.packbits(active.T.numpy(), axis=1)  # (neurons, ⌈samples/8⌉) uint8
    pad = -bits.shape[1] % 8
    if pad:
        bits = np.pad(bits, ((0, 0), (0, pad)))
    return np.ascontiguousarray(bits).view(np.uint64)


def swap(model: nn.Module, inputs: torch.Tensor) -> float:
    """SWAP score of ``model`` on ``inputs``: distinct sample-wise activation patterns."""
    words: list[np.ndarray] = []
    _each_activation_pattern(model, inputs, lambda on: words.append(_pattern_words(on)))
    if not words:
        return 0.0
    patterns = np.concatenate(words)
    if patterns.shape[1] == 1:
        return float(len(np.unique(patterns[:, 0])))
    return float(len(np.unique(patterns, axis=0)))


def _zico_batches(
    batch: int, resolution: int, seed: int, data: str | Path | None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    x, y = probe_labelled_batch(batch * ZICO_BATCHES, resolution, seed, data)
    return list(zip(x.split(batch), y.split(batch)))


#: A proxy: (model, resolution, batch, seed, data) → score; deterministic in its arguments and the
#: model's weights.
Proxy = Callable[[nn.Module, int, int, int, str | Path | None], float]

#: name → proxy.
PROXIES: dict[str, Proxy] = {
    "naswot": lambda m, res, batch, seed, data: naswot(m, probe_batch(batch, res, seed, data)),
    "synflow": lambda m, res, batch, seed, data: synflow(m, res),
    "grad_norm": lambda m, res, batch, seed, data: grad_norm(
        m, *probe_labelled_batch(batch, res, seed, data), seed=seed
    ),
    "zico": lambda m, res, batch, seed, data: zico(
        m, _zico_batches(batch, res, seed, data), seed=seed
    ),
    "swap": lambda m, res, batch, seed, data: swap(
        m, probe_batch(max(batch, SWAP_MIN_SAMPLES), res, seed, data)
    ),
    "meco": lambda m, res, batch, seed, data: meco(m, probe_batch(batch, res, seed, data)[:1]),
}


def compute_proxies(
    model: nn.Module,
    names: list[str] | tuple[str, ...],
    resolution: int,
    batch: int = 8,
    seed: int = 0,
    data: str | Path | None = None,
) -> dict[str, float]:
    """The named proxies of ``model`` at ``resolution`` on seeded probe batches.

    Args:
        model: the model (not modified; naswot and swap put it in eval mode).
        names: names from :data:`PROXIES`.
        resolution: input side of the probe images.
        batch: probe images (naswot, grad_norm; each of ZiCo's two mini-batches; SWAP takes at
            least :data:`SWAP_MIN_SAMPLES`).
        seed: probe-image choice, dropout stream.
        data: the probe images' data set: ``None``/``"digits"`` (default) or a
            :func:`archlab.estimate.data.load_data` name or folder, e.g. ``"fashion-mnist"``.

    Raises:
        KeyError: an unknown proxy name; the message lists the known ones.
    """
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise KeyError(f"unknown proxy {unknown}; known proxies: {list(PROXIES)}")
    return {name: PROXIES[name](model, resolution, batch, seed, data) for name in names}

"""Training-free accuracy proxies computed at initialisation.

``naswot``: Mellor et al., "Neural Architecture Search without Training", ICML 2021. Each sample of a
small batch gets a binary code: which units of every activation layer are active (pre-activation
> 0; for GELU/SiLU networks this is the sign pattern the smooth activation approximates). The score
is ``log|det K|`` with ``K[i, j]`` the number of units on which samples i and j agree: architectures
whose units separate inputs well at initialisation tend to train to higher accuracy. It costs one
forward pass of the batch.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archlab.layers import ACTIVATIONS

__all__ = ["naswot", "probe_batch"]

_ACT_TYPES = tuple(t for name, t in ACTIVATIONS.items() if name not in ("identity", "sigmoid",
                                                                          "hardsigmoid"))


@cache
def _digits() -> np.ndarray:
    from sklearn.datasets import load_digits  # ships with scikit-learn: no download

    return load_digits().images.astype(np.float32) / 16.0  # (1797, 8, 8)


def probe_batch(batch: int, resolution: int, seed: int = 0) -> torch.Tensor:
    """A small batch of real images (scikit-learn digits, upsampled, 3 channels), seeded."""
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(_digits()[rng.choice(len(_digits()), batch, replace=False)])
    x = F.interpolate(images[:, None], size=(resolution, resolution), mode="bilinear")
    x = (x - 0.5) / 0.5
    return x.expand(-1, 3, -1, -1).contiguous()


def naswot(model: nn.Module, inputs: torch.Tensor) -> float:
    """NASWOT score of ``model`` on ``inputs`` (higher is better)."""
    n = inputs.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64)

    def hook(_: nn.Module, args: tuple[torch.Tensor, ...], __: torch.Tensor) -> None:
        codes = (args[0].detach().reshape(n, -1) > 0).double()
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

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

"""A test helper shared by the block tests: a module's forward and backward pass are sound."""

from __future__ import annotations

import torch
from torch import nn


def check_grads(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run ``module`` on ``x`` and back-propagate; every parameter and the input get a finite
    gradient. Returns the output."""
    x = x.clone().requires_grad_(True)
    y = module(x)
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{name} received no gradient"
    return y

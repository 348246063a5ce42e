"""Weight initialisation shared by model families (applied with ``nn.Module.apply``)."""

from __future__ import annotations

from torch import nn

__all__ = ["init_linear_trunc_normal"]


def init_linear_trunc_normal(module: nn.Module) -> None:
    """A linear layer: trunc-normal (std 0.02) weights, zero biases; other modules are untouched."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)

"""Activation lookup by name, so configs stay plain strings."""

from __future__ import annotations

from torch import nn

__all__ = ["ACTIVATIONS", "get_act"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hardswish": nn.Hardswish,
    "hardsigmoid": nn.Hardsigmoid,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


def get_act(name: str) -> nn.Module:
    """Instantiate an activation by its config name.

    Raises:
        ValueError: the name is unknown; the message lists the known ones.
    """
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}"
        ) from None

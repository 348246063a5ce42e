"""One call that measures a model: parameters, MACs (fvcore + handlers, thop beside), latency."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archlab.measurement.flops import count_macs, count_params, count_thop_macs
from archlab.measurement.latency import Latency, measure_latency
from archlab.models import build_model

__all__ = ["Measurement", "measure"]


@dataclass
class Measurement:
    """What archlab knows about one model at one input size."""

    params: int
    macs: int
    resolution: int
    thop_macs: int | None = None
    latency: Latency | None = None
    convention_zero_ops: dict[str, int] = field(default_factory=dict)
    unsupported_ops: dict[str, int] = field(default_factory=dict)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def latency_ms(self) -> float | None:
        return self.latency.median_ms if self.latency else None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(
    model: nn.Module | dict[str, Any] | str | Path,
    resolution: int = 224,
    *,
    latency: bool = True,
    thop: bool = True,
    threads: int = 1,
    **latency_kwargs: Any,
) -> Measurement:
    """Count parameters and MACs and (optionally) time a model or config.

    Example:
        >>> from archlab import measure
        >>> m = measure({"preset": "lw_plgvit_r"}, 224, latency=False, thop=False)
        >>> round(m.params / 1e6, 1)
        4.9
    """
    if not isinstance(model, nn.Module):
        torch.manual_seed(0)
        model = build_model(model)
    model.eval()
    macs = count_macs(model, resolution)
    return Measurement(
        params=count_params(model),
        macs=macs.total,
        resolution=resolution,
        thop_macs=count_thop_macs(model, resolution) if thop else None,
        latency=measure_latency(model, resolution, threads=threads, **latency_kwargs)
        if latency
        else None,
        convention_zero_ops=macs.convention_zero_ops,
        unsupported_ops=macs.unsupported_ops,
    )

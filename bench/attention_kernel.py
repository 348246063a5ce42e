"""Biased attention on CPU: PyTorch's fused kernel or the product written out? Side by side.

``archlab.layers.attention.attend`` runs attention with an additive bias (PLG-ViT's relative
positions, SBCFormer's offsets) as ``softmax(q kᵀ / sqrt(d) + bias) v`` written out, and attention
without one on ``F.scaled_dot_product_attention``. This times every preset with a biased attention
both ways, same weights, interleaved in one process (rotated rounds, one thread, rounds disturbed
by other processes run again): the written-out variant is the models as they are, the fused one
the same models with the layers' attention swapped for the fused kernel while they run. It prints
each model's latency ratio written-out ÷ fused (below 1: writing it out is faster) with its
interquartile range over rounds, and the largest difference between the two variants' logits.

Run: ``.venv/bin/python bench/attention_kernel.py [--slices 24]`` (a few minutes); for timings
without the allocator's page faults start it with the ``no-trim`` setting of
``archlab.measurement.allocator`` (docs/measurement.md).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import archlab.layers.hourglass as hourglass
import archlab.layers.plg_attention as plg_attention
from archlab.layers.attention import attend
from archlab.measurement.backends import prepare
from archlab.measurement.contention import ContentionGuard
from archlab.measurement.interleave import interleaved_times, paired_ratio
from archlab.measurement.latency import torch_threads
from archlab.models import FAMILIES

_USERS = (hourglass, plg_attention)  # the modules whose attention takes a bias


def _fused(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: Any = None) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)


@contextmanager
def _fused_attention() -> Iterator[None]:
    for module in _USERS:
        module.attend = _fused  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module in _USERS:
            module.attend = attend  # type: ignore[attr-defined]


class _Fused(nn.Module):
    """``model`` with its biased attention on the fused kernel."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with _fused_attention():
            return self.model(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=24, help="interleaved rounds")
    args = parser.parse_args()
    models: dict[str, nn.Module] = {}
    for family in ("plgvit", "sbcformer", "hybrid"):
        for name, preset in FAMILIES[family].presets.items():
            torch.manual_seed(0)
            models[name] = FAMILIES[family].build(preset.cfg).eval()
    x = torch.randn(1, 3, 224, 224)
    pairs = [(model, _Fused(model)) for model in models.values()]
    with torch.inference_mode():
        diffs = [(a(x) - b(x)).abs().max().item() for a, b in pairs]
    with torch_threads(1):
        runners = [prepare(m, x, "eager", "contiguous", 1) for pair in pairs for m in pair]
        times = interleaved_times(runners, ContentionGuard(1), args.slices, 2, 2, 0.0)
    print(f"{'model':<18} {'fused ms':>9} {'written ms':>11} {'written/fused':>14}  IQR over rounds"
          f"   max |Δ logit|")  # fmt: skip
    ratios = []
    for i, name in enumerate(models):
        c = paired_ratio(times[2 * i], times[2 * i + 1], 2)  # written out, then fused
        ratios.append(c.ratio)
        print(
            f"{name:<18} {c.second_ms:9.2f} {c.first_ms:11.2f} "
            f"{c.ratio:14.3f}  {c.round_q1:.3f}–{c.round_q3:.3f}   {diffs[i]:.1e}"
        )
    print(f"geometric mean written/fused over {len(ratios)} models: "
          f"{statistics.geometric_mean(ratios):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()

"""Would keeping SBCFormer's gathered attention bias in eval mode make it faster? Side by side.

``archlab.layers.hourglass.OffsetBias`` gathers its (heads, N, N) bias from its table on every
forward pass; the official SBCFormer code keeps the gathered bias from ``eval()`` on. This times
our models as they are against copies whose biases return a tensor gathered once (the best case
for keeping it: no checks on each pass), same weights, interleaved in one process (rounds over the
models, one thread), for every SBCFormer preset and the hybrid presets with an hourglass mixer. It
prints each model's latency gathering on every pass as a ratio to the kept one (above 1: keeping it
is faster), with the interquartile range of that ratio over rounds.
Rounds that other processes disturbed are run again (``ContentionGuard``).

Run: ``.venv/bin/python bench/bias_kept.py [--slices 40] [--resolution 224]``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import types

import torch
from torch import nn

from archlab.layers import OffsetBias
from archlab.measurement.backends import prepare
from archlab.measurement.contention import ContentionGuard
from archlab.measurement.interleave import interleaved_times, paired_ratio
from archlab.measurement.latency import torch_threads
from archlab.models import FAMILIES


def _keeping_the_bias(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose attention biases return a tensor gathered once."""
    twin = copy.deepcopy(model)
    for module in twin.modules():
        if isinstance(module, OffsetBias):
            with torch.no_grad():
                kept = module.table[:, module.index].clone()
            module.forward = types.MethodType(  # type: ignore[method-assign]
                lambda self, kept=kept: kept, module
            )
    return twin


def _models() -> dict[str, nn.Module]:
    models = {}
    for family in ("sbcformer", "hybrid"):
        for name, preset in FAMILIES[family].presets.items():
            torch.manual_seed(0)
            model = FAMILIES[family].build(preset.cfg).eval()
            if any(isinstance(m, OffsetBias) for m in model.modules()):
                models[name] = model
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=40, help="interleaved rounds")
    parser.add_argument("--resolution", type=int, default=224)
    args = parser.parse_args()
    models = _models()
    # both variants are copies, so that neither keeps the original's memory layout
    runners = [
        m for model in models.values() for m in (_keeping_the_bias(model), copy.deepcopy(model))
    ]
    x = torch.randn(1, 3, args.resolution, args.resolution)
    with torch.inference_mode():
        for model_kept, model_gathered in zip(runners[::2], runners[1::2]):
            assert torch.equal(model_kept(x), model_gathered(x)), "both must compute the same"
    with torch_threads(1):
        guard = ContentionGuard(1)
        prepared = [prepare(m, x, "eager", "contiguous", 1) for m in runners]
        times = interleaved_times(prepared, guard, args.slices, 2, 3, 0.0)
    print(f"{'model':<18} {'kept ms':>8} {'gathered ms':>12} {'gathered/kept':>14}  rounds: IQR")
    ratios = []
    for i, name in enumerate(models):
        c = paired_ratio(times[2 * i + 1], times[2 * i], 2)  # gathered over kept
        ratios.append(c.ratio)
        print(
            f"{name:<18} {c.second_ms:8.2f} {c.first_ms:12.2f} "
            f"{c.ratio:14.3f}  {c.round_q1:.3f}–{c.round_q3:.3f}"
        )
    geo = statistics.geometric_mean(ratios)
    print(f"geometric mean gathered/kept over {len(ratios)} models: {geo:.3f}")


if __name__ == "__main__":
    main()

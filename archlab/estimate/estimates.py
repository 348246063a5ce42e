"""Accuracy estimates of an arch: zero-cost proxies and short training on its reduced copy.

Both run on the arch adapted to a small input (:func:`archlab.estimate.reduced.reduce_cfg`), each
on a fresh model initialised from the same seed: the proxies on a 10-class head (the digits probe
batch), short training on a head sized to its dataset. The metric names are those the objectives
read: ``naswot``, ``synflow``, ``grad_norm`` (:mod:`archlab.estimate.proxies`) and ``val_acc``
(:mod:`archlab.estimate.training`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from archlab.estimate.data import load_data
from archlab.estimate.proxies import PROXIES, compute_proxies
from archlab.estimate.reduced import reduce_cfg
from archlab.estimate.training import Progress, TrainSpec, short_train

if TYPE_CHECKING:
    from archlab.space import SearchSpace

__all__ = ["ESTIMATES", "estimate_accuracy", "reduced_model"]

ESTIMATES: tuple[str, ...] = (*PROXIES, "val_acc")


def reduced_model(
    space: SearchSpace, arch: dict[str, Any], resolution: int, num_classes: int, seed: int = 0
) -> nn.Module:
    """The arch adapted to ``resolution`` px, initialised from ``seed``.

    Raises:
        ValueError: the arch is impossible, or cannot run at ``resolution``.
    """
    cfg = reduce_cfg(space.family.name, space.to_cfg(arch), resolution, space.resolution)
    torch.manual_seed(seed)
    return space.family.build(cfg, num_classes=num_classes)


def estimate_accuracy(
    space: SearchSpace,
    arch: dict[str, Any],
    metrics: Iterable[str],
    *,
    resolution: int = 64,
    proxy_batch: int = 8,
    seed: int = 0,
    train: TrainSpec | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The requested estimates of ``arch``; ``val_acc`` also adds ``train_*`` details.

    Args:
        space: the arch's space (its resolution is the one the arch was designed for).
        arch: one value per knob.
        metrics: names from :data:`ESTIMATES`.
        resolution: input side of the proxies' probe batch.
        proxy_batch: images in the probe batch (NASWOT, grad-norm).
        seed: weight-initialisation and probe-batch seed.
        train: the short-training budget (its own resolution, data, seed); default ``TrainSpec()``.
        progress: called after each training step with (step, steps, loss).

    Raises:
        KeyError: an unknown metric name.
        ValueError: the arch cannot run at the reduced resolution.
    """
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in ESTIMATES]
    if unknown:
        raise KeyError(f"unknown accuracy estimate {unknown}; known: {list(ESTIMATES)}")
    out: dict[str, Any] = {}
    proxies = [m for m in metrics if m in PROXIES]
    if proxies:
        model = reduced_model(space, arch, resolution, num_classes=10, seed=seed)
        out.update(compute_proxies(model, proxies, resolution, proxy_batch, seed))
    if "val_acc" in metrics:
        train = train or TrainSpec()
        data = load_data(train.data, train.resolution)
        model = reduced_model(space, arch, train.resolution, data.num_classes, seed=train.seed)
        result = short_train(model, data, train, progress)
        out.update(
            val_acc=result.val_acc,
            train_loss=result.train_loss,
            train_steps=result.steps,
            train_s=result.train_s,
            train_stopped_early=result.stopped_early,
        )
    return out

"""Accuracy estimates of an arch: zero-cost proxies, size baselines and short training.

The proxies and short training run on the arch adapted to a small input
(:func:`archlab.estimate.reduced.reduce_cfg`), each on a fresh model initialised from the same seed:
the proxies on a 10-class head (probe images from ``data``: digits by default), short training on a
head sized to its dataset. The metric names are those the objectives read: ``naswot``,
``synflow``, ``grad_norm``, ``zico``, ``swap``, ``meco`` (:mod:`archlab.estimate.proxies`),
``val_acc`` and ``train_speed`` (minus the mean training loss of the same short training, without
its evaluation; :mod:`archlab.estimate.training`); together they are :data:`ESTIMATES`.

:data:`BASELINES` (``params``, ``macs``) are the plain size baselines every proxy is compared with:
the parameter count and the MACs of one forward pass of the *full* model (1000-class head) at the
space's resolution, counted by :mod:`archlab.measurement.flops` ("bigger predicts better").
:func:`estimate_accuracy` computes them on request, but they are not in :data:`ESTIMATES`: a search
measures them itself, at its own resolution, as cost objectives.

With ``timings=True`` the result also holds ``<name>_s`` for every requested estimate: the
wall-clock seconds it would take alone, i.e. its own computation plus building the model it runs on
(a build shared by several estimates is counted in each). ``val_acc_s`` covers building, training
and evaluating (``train_s``, training alone, is always returned with ``val_acc``);
``train_speed_s`` covers building and training.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from archlab.estimate.proxies import PROXIES, compute_proxies
from archlab.estimate.reduced import reduce_cfg
from archlab.estimate.training import (
    Progress,
    TrainSpec,
    load_spec_data,
    short_train,
    training_speed,
)
from archlab.measurement.flops import count_macs, count_params

if TYPE_CHECKING:
    from archlab.space import SearchSpace

__all__ = ["BASELINES", "ESTIMATES", "estimate_accuracy", "reduced_model"]

ESTIMATES: tuple[str, ...] = (*PROXIES, "val_acc", "train_speed")
BASELINES: tuple[str, ...] = ("params", "macs")


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


def _baselines(
    space: SearchSpace, arch: dict[str, Any], names: list[str], seed: int
) -> tuple[dict[str, Any], dict[str, float]]:
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = space.family.build(space.to_cfg(arch)).eval()
    build_s = time.perf_counter() - start
    out: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name in names:
        start = time.perf_counter()
        out[name] = (
            count_params(model) if name == "params" else count_macs(model, space.resolution).total
        )
        seconds[name] = build_s + time.perf_counter() - start
    return out, seconds


def _proxies(
    space: SearchSpace,
    arch: dict[str, Any],
    names: list[str],
    resolution: int,
    proxy_batch: int,
    seed: int,
    data: str | Path | None,
) -> tuple[dict[str, Any], dict[str, float]]:
    start = time.perf_counter()
    model = reduced_model(space, arch, resolution, num_classes=10, seed=seed)
    build_s = time.perf_counter() - start
    out: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name in names:
        start = time.perf_counter()
        out.update(compute_proxies(model, [name], resolution, proxy_batch, seed, data))
        seconds[name] = build_s + time.perf_counter() - start
    return out, seconds


def _short_training(
    space: SearchSpace, arch: dict[str, Any], train: TrainSpec, progress: Progress | None
) -> tuple[dict[str, Any], float]:
    """``val_acc`` with its ``train_*`` details, and the seconds to build, train and evaluate."""
    start = time.perf_counter()
    train_data = load_spec_data(train)
    model = reduced_model(space, arch, train.resolution, train_data.num_classes, train.seed)
    result = short_train(model, train_data, train, progress)
    out = {
        "val_acc": result.val_acc,
        "train_loss": result.train_loss,
        "train_steps": result.steps,
        "train_s": result.train_s,
        "train_stopped_early": result.stopped_early,
    }
    return out, time.perf_counter() - start


def _training_speed(
    space: SearchSpace, arch: dict[str, Any], train: TrainSpec, progress: Progress | None
) -> tuple[float, float]:
    """``train_speed`` and the seconds to build and train."""
    start = time.perf_counter()
    train_data = load_spec_data(train)
    model = reduced_model(space, arch, train.resolution, train_data.num_classes, train.seed)
    value = training_speed(model, train_data, train, progress)
    return value, time.perf_counter() - start


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
    data: str | Path | None = None,
    timings: bool = False,
) -> dict[str, Any]:
    """The requested estimates of ``arch``; ``val_acc`` also adds ``train_*`` details.

    Args:
        space: the arch's space (its resolution is the one the arch was designed for).
        arch: one value per knob.
        metrics: names from :data:`ESTIMATES` or :data:`BASELINES`.
        resolution: input side of the proxies' probe batch.
        proxy_batch: images in the probe batch (as in
            :func:`archlab.estimate.proxies.compute_proxies`).
        seed: weight-initialisation and probe-batch seed.
        train: the short-training budget (its own resolution, data, seed) of ``val_acc`` and
            ``train_speed``; default ``TrainSpec()``.
        progress: called after each training step with (step, steps, loss).
        data: the proxies' probe data set: ``None``/``"digits"`` (default) or a
            :func:`archlab.estimate.data.load_data` name or folder, e.g. ``"fashion-mnist"``
            (short training reads ``train.data``).
        timings: also return ``<name>_s``, the seconds of every requested estimate.

    Raises:
        KeyError: an unknown metric name.
        ValueError: the arch cannot run at the reduced resolution.
    """
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in ESTIMATES and m not in BASELINES]
    if unknown:
        raise KeyError(
            f"unknown accuracy estimate {unknown}; known: {list(ESTIMATES) + list(BASELINES)}"
        )
    out: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    proxies = [m for m in metrics if m in PROXIES]
    if proxies:
        values, spent = _proxies(space, arch, proxies, resolution, proxy_batch, seed, data)
        out.update(values)
        seconds.update(spent)
    baselines = [m for m in metrics if m in BASELINES]
    if baselines:
        values, spent = _baselines(space, arch, baselines, seed)
        out.update(values)
        seconds.update(spent)
    if "val_acc" in metrics:
        values, seconds["val_acc"] = _short_training(space, arch, train or TrainSpec(), progress)
        out.update(values)
    if "train_speed" in metrics:
        out["train_speed"], seconds["train_speed"] = _training_speed(
            space, arch, train or TrainSpec(), progress
        )
    if timings:
        out.update({f"{name}_s": seconds[name] for name in metrics if name in seconds})
    return out

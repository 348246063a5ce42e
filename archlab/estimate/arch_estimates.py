"""Every accuracy estimate of one arch, as ``archlab estimate`` prints it.

The settings are those the shipped evidence was measured with (``archlab/estimate/evidence.json``:
Fashion-MNIST probe images at 32 px, 8 images, seed 0), so a printed figure can be checked against
the tables in ``bench/results/``. A space with a model fitted on its ground truth also gets that
model's prediction (``knob_ridge``), and the training speed over 1/64 of the ground-truth budget
(``tse_1_64``: seconds). Short training at 1/8 and 1/4 of that budget is optional: it takes minutes.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from archlab.estimate.estimates import BASELINES, estimate_accuracy
from archlab.estimate.evidence import (
    FALLBACK_DEFAULT,
    SHORT_TRAINING,
    TRAINING_SPEED,
    load_evidence,
)
from archlab.estimate.proxies import PROXIES
from archlab.estimate.surrogate import FITTED_ESTIMATE, load_surrogates, predict_for_space
from archlab.estimate.training import GROUND_TRUTH, Progress, TrainSpec
from archlab.space import SearchSpace

__all__ = [
    "SHORT_TRAINING",
    "TRAINING_SPEED",
    "all_estimates",
    "short_training_spec",
    "trained_estimate",
]

PROBE_BATCH = 8
SEED = 0
#: Short training's seed: one the ground truth (seeds 0 and 1) does not use, so the estimate shares
#: neither initialisation nor batch order with the runs it is scored against.
SHORT_TRAINING_SEED = 2


def short_training_spec(divisor: int, data: str | None = None) -> TrainSpec:
    """The ground-truth recipe cut to ``1/divisor`` of its steps (warm-up cut alike)."""
    return dataclasses.replace(
        GROUND_TRUTH.with_steps(GROUND_TRUTH.steps // divisor),
        seed=SHORT_TRAINING_SEED,
        data=data or GROUND_TRUTH.data,
    )


def trained_estimate(
    space: SearchSpace,
    arch: dict[str, Any],
    name: str,
    data: str | None = None,
    progress: Progress | None = None,
) -> tuple[float, float]:
    """The training estimate ``name`` (one of ``SHORT_TRAINING`` or ``TRAINING_SPEED``) of
    ``arch`` and the seconds it took, with the recipe, budget and seed the evidence ran.

    Raises:
        KeyError: ``name`` is not a training estimate.
    """
    if name in TRAINING_SPEED:
        divisor, value = TRAINING_SPEED[name], "train_speed"
    elif name in SHORT_TRAINING:
        divisor, value = SHORT_TRAINING[name], "val_acc"
    else:
        raise KeyError(f"{name!r} is not a training estimate")
    spec = short_training_spec(divisor, data)
    found = estimate_accuracy(
        space, arch, [value], train=spec, seed=spec.seed, progress=progress, timings=True
    )
    return float(found[value]), float(found[f"{value}_s"])


def _default(space: str) -> tuple[str, str]:
    evidence = load_evidence()
    if evidence is not None and space in evidence.space_defaults:
        own = evidence.space_defaults[space]
        return own, f"chosen by {space}'s own evidence of {evidence.measured}"
    if evidence is not None and evidence.default:
        return evidence.default, f"chosen by the pooled evidence of {evidence.measured}"
    return FALLBACK_DEFAULT, "the search's default; the evidence does not yet pick one"


def all_estimates(
    space: SearchSpace, arch: dict[str, Any], data: str, resolution: int, short_train: bool
) -> dict[str, Any]:
    """``{"estimates": {name: value}, "seconds": {name: s}, ...}`` plus one top-level number per
    estimate (and ``params``), the default estimate's name and the settings used.

    Raises:
        ValueError: the arch is not one of the space's (a value its knob cannot take: the fitted
            model would extrapolate), is impossible, or cannot run at ``resolution``.
        archlab.estimate.fashion_mnist.FashionMnistMissing: Fashion-MNIST is not installed.
    """
    space.check_arch(arch)
    names = [*PROXIES, *BASELINES]
    found = estimate_accuracy(
        space, arch, names, resolution=resolution, proxy_batch=PROBE_BATCH, seed=SEED,
        data=data, timings=True,
    )  # fmt: skip
    values = {n: float(found[n]) for n in names}
    seconds = {n: float(found[f"{n}_s"]) for n in names}
    if space.name in load_surrogates():  # the model fitted on this space's ground truth
        start = time.perf_counter()
        values[FITTED_ESTIMATE] = predict_for_space(space.name, space.knobs, space.default(), arch)
        seconds[FITTED_ESTIMATE] = time.perf_counter() - start
    for name in (*TRAINING_SPEED, *(SHORT_TRAINING if short_train else ())):
        values[name], seconds[name] = trained_estimate(space, arch, name, data)
    default, source = _default(space.name)
    return {
        **values,
        "estimates": values,
        "seconds": seconds,
        "default": default,
        "default_source": source,
        "settings": f"{data}@{resolution}px,batch{PROBE_BATCH},seed{SEED}",
    }

"""Short-training fidelity: train an arch for a small fixed budget, report validation accuracy.

The budget is a number of optimiser steps on a real dataset (:mod:`archlab.estimate.data`: digits
built in, or any ImageFolder) at a small resolution, with a wall-clock limit per run: training stops
at the limit and the model is evaluated as it is, and the result says so. Recipe (fixed, the same
for every architecture): AdamW, linear warm-up then cosine decay to zero, cross-entropy, seeded
batch order and initialisation; BatchNorm statistics are re-estimated on training images before
evaluation. A few hundred steps rank architectures only roughly; ``bench/proxy_correlation.py``
measures how well, and how the zero-cost proxies compare.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from archlab.estimate.data import ImageData, load_data, to_input

__all__ = [
    "GROUND_TRUTH",
    "TrainResult",
    "TrainSpec",
    "evaluate",
    "load_spec_data",
    "recalibrate_batchnorm",
    "short_train",
    "training_speed",
]

_RECALIBRATION_BATCHES = 4  # training batches that re-estimate BatchNorm statistics before eval
#: progress(step, steps, loss) after every optimiser step.
Progress = Callable[[int, int, float], None]


@dataclass(frozen=True)
class TrainSpec:
    """The training budget and recipe; part of what a study measures."""

    steps: int = 100  # optimiser steps
    batch: int = 32  # images per step
    resolution: int = 64  # input side in pixels (the arch is reduced to it: estimate.reduced)
    lr: float = 2e-3  # peak learning rate of AdamW
    weight_decay: float = 0.05
    warmup: int = 10  # linear warm-up steps
    time_limit_s: float | None = 120.0  # stop training after this long (then evaluate)
    seed: int = 0  # initialisation and batch order
    data: str | None = None  # None: scikit-learn digits; "fashion-mnist"; else a folder
    flip: bool = False  # seeded random horizontal flips of training images
    val_fraction: float | None = None  # share of the training set held out; None: the data's own
    bn_images: int | None = None  # images re-estimating BatchNorm; None: the last 4 batches

    @property
    def images_seen(self) -> int:
        """The budget in training images (steps × batch)."""
        return self.steps * self.batch

    def budget_label(self) -> str:
        """A short name of the budget, e.g. ``1000x64@32px``.

        A validation split or BatchNorm sample other than the default is part of the name
        (``1000x64@32px/val0.5/bn4096``), so rows of different recipes never mix."""
        label = f"{self.steps}x{self.batch}@{self.resolution}px"
        if self.val_fraction is not None:
            label += f"/val{self.val_fraction:g}"
        if self.bn_images is not None:
            label += f"/bn{self.bn_images}"
        return label

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 1:
            raise ValueError(f"steps and batch must be ≥ 1, got {self.steps} and {self.batch}")
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup < 0:
            raise ValueError("lr must be > 0, weight_decay and warmup ≥ 0")
        if self.time_limit_s is not None and self.time_limit_s <= 0:
            raise ValueError(f"time_limit_s must be positive or None, got {self.time_limit_s}")
        if self.val_fraction is not None and not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must lie in (0, 1), got {self.val_fraction}")
        if self.bn_images is not None and self.bn_images < 1:
            raise ValueError(f"bn_images must be ≥ 1 or None, got {self.bn_images}")

    def with_steps(self, steps: int) -> TrainSpec:
        """This recipe at ``steps`` optimiser steps, its warm-up kept at the same share of them."""
        return dataclasses.replace(
            self, steps=steps, warmup=max(1, self.warmup * steps // self.steps)
        )

    @property
    def recalibration_images(self) -> int:
        """How many of the last training images re-estimate the BatchNorm statistics."""
        return self.bn_images or _RECALIBRATION_BATCHES * self.batch


@dataclass(frozen=True)
class TrainResult:
    val_acc: float  # top-1 accuracy on the validation split, in [0, 1]
    train_loss: float  # mean loss of the last (up to) 10 steps
    steps: int  # steps actually run
    train_s: float  # wall-clock seconds of training (evaluation excluded)
    stopped_early: bool  # True if the time limit cut the budget short


#: The reference recipe every architecture is trained with for the accuracy evidence
#: (docs/accuracy.md): Fashion-MNIST at 32 px, 1,000 AdamW steps of 64 images (64,000 images, about
#: 1.3 epochs of the 50,000-image training split), 5 % linear warm-up then cosine decay, seeded
#: flips, no time limit. One thread, one seed: the same accuracy on every run.
GROUND_TRUTH = TrainSpec(
    steps=1000,
    batch=64,
    resolution=32,
    lr=2e-3,
    weight_decay=0.05,
    warmup=50,
    time_limit_s=None,
    data="fashion-mnist",
    flip=True,
)


def load_spec_data(spec: TrainSpec) -> ImageData:
    """The images ``spec`` trains and validates on: its data set, resolution and split."""
    return load_data(spec.data, spec.resolution, spec.val_fraction)


def _lr_factor(step: int, spec: TrainSpec) -> float:
    if step < spec.warmup:
        return (step + 1) / (spec.warmup + 1)
    progress = (step - spec.warmup) / max(1, spec.steps - spec.warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _batches(n: int, spec: TrainSpec) -> torch.Tensor:
    """Indices of ``spec.steps`` batches: seeded reshuffles of the training set, one per epoch."""
    gen = torch.Generator().manual_seed(spec.seed)
    epochs = math.ceil(spec.steps * spec.batch / n)
    order = torch.cat([torch.randperm(n, generator=gen) for _ in range(epochs)])
    return order[: spec.steps * spec.batch].reshape(spec.steps, spec.batch)


def _flips(spec: TrainSpec) -> torch.Tensor | None:
    """Which images of every batch are flipped (steps, batch), from a generator of their own."""
    if not spec.flip:
        return None
    gen = torch.Generator().manual_seed(spec.seed + 7919)
    return torch.rand(spec.steps, spec.batch, generator=gen) < 0.5


def _training_batch(data: ImageData, idx: torch.Tensor, flip: torch.Tensor | None) -> torch.Tensor:
    images = data.train_images[idx]
    if flip is not None:
        images[flip] = images[flip].flip(-1)
    return to_input(images)


def _device_of(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def resolve_device(device: str) -> torch.device:
    """``auto`` (CUDA where present, else CPU), ``cpu`` or ``cuda``.

    Raises:
        ValueError: an unknown name, or ``cuda`` on a machine without it.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; choose auto, cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but this machine has no CUDA device")
    return torch.device(device)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, images: torch.Tensor, batch: int = 64) -> None:
    """Re-estimate every BatchNorm's running statistics on ``images``, batch by batch.

    The statistics become the plain average of the per-batch statistics (``momentum=None``).

    After a few hundred steps the running averages (momentum 0.1) lag behind the fast-moving
    weights, and eval-mode accuracy can fall far below training accuracy; recomputing them on
    training images, as Cai et al. (Once-for-All, ICLR 2020) do for sub-networks, removes that.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    device = _device_of(model)
    for start in range(0, len(images), batch):
        model(to_input(images[start : start + batch]).to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


@torch.inference_mode()
def evaluate(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 200
) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on uint8 ``images``."""
    model.eval()
    device = _device_of(model)
    correct = 0
    for start in range(0, len(images), batch):
        logits = model(to_input(images[start : start + batch]).to(device))
        correct += int((logits.argmax(1).cpu() == labels[start : start + batch]).sum())
    return correct / max(1, len(images))


def _run_steps(
    model: nn.Module,
    data: ImageData,
    spec: TrainSpec,
    progress: Progress | None,
    device: torch.device,
) -> tuple[list[float], float, torch.Tensor]:
    """The recipe's optimiser steps (until the time limit): every step's loss, the seconds they
    took, and the batches' image indices (the last of them re-estimate BatchNorm)."""
    if data.resolution != spec.resolution:
        raise ValueError(f"data is at {data.resolution} px but training asks {spec.resolution} px")
    torch.manual_seed(spec.seed)
    model.to(device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    batches = _batches(len(data.train_images), spec)
    flips = _flips(spec)
    losses: list[float] = []
    model.train()
    start = time.perf_counter()
    for step, idx in enumerate(batches):
        if spec.time_limit_s is not None and time.perf_counter() - start > spec.time_limit_s:
            break
        for group in optimizer.param_groups:
            group["lr"] = spec.lr * _lr_factor(step, spec)
        batch = _training_batch(data, idx, None if flips is None else flips[step]).to(device)
        with autocast:
            loss = F.cross_entropy(model(batch), data.train_labels[idx].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step + 1, spec.steps, losses[-1])
    return losses, time.perf_counter() - start, batches


def short_train(
    model: nn.Module,
    data: ImageData,
    spec: TrainSpec,
    progress: Progress | None = None,
    device: torch.device | str = "cpu",
) -> TrainResult:
    """Train ``model`` in place for ``spec.steps`` steps (or until the time limit), then evaluate.

    On CUDA the forward and backward passes run under bfloat16 autocast; results then differ
    slightly from the CPU's, which are the reference (deterministic for a seed on one thread).

    Raises:
        ValueError: the data's resolution is not ``spec.resolution``.
    """
    device = torch.device(device)
    losses, train_s, batches = _run_steps(model, data, spec, progress, device)
    recalibrate_batchnorm(model, data.train_images[batches.flatten()[-spec.recalibration_images :]])
    val_acc = evaluate(model, data.val_images, data.val_labels)
    tail = losses[-10:] or [float("nan")]
    return TrainResult(
        val_acc, sum(tail) / len(tail), len(losses), train_s, len(losses) < spec.steps
    )


def training_speed(
    model: nn.Module, data: ImageData, spec: TrainSpec, progress: Progress | None = None
) -> float:
    """Minus the mean training loss over every step of ``spec`` (higher: the arch learns faster).

    The training-speed estimate of Ru et al. (NeurIPS 2021, "Speedy Performance Estimation for
    Neural Architecture Search"), who sum the training losses of a short run: with the same number
    of steps for every arch the mean orders archs as the sum does. It needs no evaluation, so a few
    steps cost seconds. The time limit is ignored: a cut run would not be comparable.

    Raises:
        ValueError: the data's resolution is not ``spec.resolution``.
    """
    untimed = dataclasses.replace(spec, time_limit_s=None)
    losses, _, _ = _run_steps(model, data, untimed, progress, torch.device("cpu"))
    return -sum(losses) / len(losses)

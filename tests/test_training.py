from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from archlab.estimate.data import load_digits, load_image_folder, to_input
from archlab.estimate.estimates import estimate_accuracy, reduced_model
from archlab.estimate.training import (
    GROUND_TRUTH,
    TrainSpec,
    load_spec_data,
    recalibrate_batchnorm,
    short_train,
    training_speed,
)
from archlab.space import load_space


def test_short_training_on_digits_runs_and_is_reproducible(tiny_space_path: Path) -> None:
    space = load_space(tiny_space_path)
    spec = TrainSpec(steps=4, batch=8, resolution=32, time_limit_s=None)
    data = load_digits(32)
    results = []
    for _ in range(2):
        model = reduced_model(space, space.default(), 32, data.num_classes, seed=0)
        results.append(short_train(model, data, spec))
    first = results[0]
    assert 0.0 <= first.val_acc <= 1.0 and np.isfinite(first.train_loss)
    assert first.steps == 4 and not first.stopped_early
    assert first.val_acc == results[1].val_acc and first.train_loss == results[1].train_loss


def test_time_limit_stops_training_and_still_evaluates() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 10))
    spec = TrainSpec(steps=1000, batch=8, resolution=16, time_limit_s=1e-9)
    result = short_train(model, load_digits(16), spec)
    assert result.stopped_early and result.steps < 1000
    assert 0.0 <= result.val_acc <= 1.0


def test_a_linear_model_learns_digits() -> None:
    # Not a benchmark: a sanity check that labels, inputs and the optimiser fit together.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    spec = TrainSpec(steps=150, batch=32, resolution=8, lr=0.01, warmup=0, time_limit_s=None)
    assert short_train(model, load_digits(8), spec).val_acc > 0.8


def test_progress_is_reported_every_step() -> None:
    calls: list[tuple[int, int]] = []
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    short_train(
        model,
        load_digits(8),
        TrainSpec(steps=3, batch=4, resolution=8),
        progress=lambda step, steps, loss: calls.append((step, steps)),
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_training_speed_is_minus_the_mean_loss_of_the_same_training(
    tiny_space_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same steps as short training (same losses), no evaluation, the same on every run; the
    time limit is not applied, so a slow machine cannot shorten the run it is compared on."""
    from archlab.estimate import training

    space = load_space(tiny_space_path)
    spec = TrainSpec(steps=5, batch=8, resolution=32, time_limit_s=1e-9)
    data = load_digits(32)
    trained: list[float] = []
    model = reduced_model(space, space.default(), 32, data.num_classes, seed=0)
    short_train(model, data, replace(spec, time_limit_s=None), lambda _s, _n, x: trained.append(x))

    def no_evaluation(*_: object, **__: object) -> float:
        raise AssertionError("training speed evaluated the model")

    monkeypatch.setattr(training, "evaluate", no_evaluation)
    monkeypatch.setattr(training, "recalibrate_batchnorm", no_evaluation)
    speeds, seen = [], []
    for _ in range(2):
        model = reduced_model(space, space.default(), 32, data.num_classes, seed=0)
        speeds.append(training_speed(model, data, spec, lambda _s, _n, x: seen.append(x)))
    assert len(trained) == 5 and seen == trained * 2  # every step ran, despite the time limit
    assert speeds[0] == speeds[1] == pytest.approx(-sum(trained) / 5)
    # a model that learns faster (a larger learning rate on digits, here) scores higher
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    fast, slow = (
        training_speed(
            _seeded(linear), load_digits(8), TrainSpec(steps=30, batch=32, resolution=8, lr=lr)
        )
        for lr in (1e-2, 1e-5)
    )
    assert fast > slow


def _seeded(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with weights from seed 0."""
    import copy

    torch.manual_seed(0)
    fresh = copy.deepcopy(model)
    for m in fresh.modules():
        if isinstance(m, nn.Linear):
            m.reset_parameters()
    return fresh


def test_batchnorm_is_recalibrated_to_the_exact_mean() -> None:
    data = load_digits(8)
    model = nn.Sequential(nn.BatchNorm2d(3))
    model[0].running_mean.fill_(5.0)
    images = data.train_images[:100]
    recalibrate_batchnorm(model, images, batch=25)  # equal batches: the mean of means is exact
    expected = to_input(images).mean(dim=(0, 2, 3))
    assert torch.allclose(model[0].running_mean, expected, atol=1e-5)
    assert model[0].momentum == 0.1


def test_resolution_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="data is at 8 px but training asks 16 px"):
        short_train(nn.Linear(1, 1), load_digits(8), TrainSpec(resolution=16))
    with pytest.raises(ValueError, match="steps and batch"):
        TrainSpec(steps=0)


def test_short_training_on_an_image_folder(tmp_path: Path, tiny_space_path: Path) -> None:
    rng = np.random.default_rng(0)
    for label, colour in (("red", 0), ("blue", 2)):
        (tmp_path / label).mkdir()
        for i in range(6):
            pixels = rng.integers(0, 60, (20, 20, 3), dtype=np.uint8)
            pixels[..., colour] += 180
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")
    spec = TrainSpec(steps=2, batch=4, resolution=32, data=str(tmp_path), time_limit_s=None)
    space = load_space(tiny_space_path)
    out = estimate_accuracy(space, space.default(), ["val_acc"], train=spec)
    assert 0.0 <= out["val_acc"] <= 1.0 and out["train_steps"] == 2
    assert load_image_folder(str(tmp_path.resolve()), 32).num_classes == 2


def test_the_recipe_label_names_a_split_or_batchnorm_sample_only_when_changed() -> None:
    # The committed ground-truth tables are keyed by this label: the default must not change.
    assert GROUND_TRUTH.budget_label() == "1000x64@32px"
    v2 = replace(GROUND_TRUTH, val_fraction=0.5, bn_images=4096)
    assert v2.budget_label() == "1000x64@32px/val0.5/bn4096"
    assert replace(GROUND_TRUTH, bn_images=512).budget_label() == "1000x64@32px/bn512"


def test_a_recipe_at_other_steps_keeps_its_warm_up_share() -> None:
    # Short training (1/8, 1/4, 1/64) and --steps runs rely on it: 5 % warm-up, at least one step.
    assert [GROUND_TRUTH.with_steps(n).warmup for n in (2000, 250, 125, 15)] == [100, 12, 6, 1]
    longer = GROUND_TRUTH.with_steps(2000)
    assert longer.steps == 2000 and replace(longer, steps=1000, warmup=50) == GROUND_TRUTH


@pytest.mark.parametrize("bad", [{"val_fraction": 0.0}, {"val_fraction": 1.0}, {"bn_images": 0}])
def test_an_impossible_split_or_batchnorm_sample_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        TrainSpec(**bad)  # type: ignore[arg-type]


def test_the_spec_chooses_the_validation_split() -> None:
    default = load_spec_data(TrainSpec(resolution=8))
    half = load_spec_data(TrainSpec(resolution=8, val_fraction=0.5))
    total = len(default.train_images) + len(default.val_images)
    assert len(half.train_images) + len(half.val_images) == total
    assert len(default.val_images) == pytest.approx(0.2 * total, abs=10)
    assert len(half.val_images) == pytest.approx(0.5 * total, abs=10)


@pytest.mark.parametrize(("bn_images", "expected"), [(None, 4 * 6), (10, 10), (1000, 5 * 6)])
def test_batchnorm_is_re_estimated_on_the_last_training_images(
    monkeypatch: pytest.MonkeyPatch, bn_images: int | None, expected: int
) -> None:
    seen: list[int] = []
    monkeypatch.setattr(
        "archlab.estimate.training.recalibrate_batchnorm",
        lambda model, images: seen.append(len(images)),
    )
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    spec = TrainSpec(steps=5, batch=6, resolution=8, bn_images=bn_images)
    short_train(model, load_digits(8), spec)
    assert seen == [expected]  # never more than the images the schedule holds

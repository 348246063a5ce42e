from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from archlab.estimate import data as data_module
from archlab.estimate.data import ImageData
from archlab.estimate.estimates import BASELINES, ESTIMATES, estimate_accuracy
from archlab.estimate.score import (
    held_out_pick,
    pooled_agreement,
    rank_normalise,
    score_estimates,
)
from archlab.measurement.flops import count_macs, count_params
from archlab.space import load_space


def test_new_proxies_are_estimates_and_baselines_are_apart() -> None:
    assert {"naswot", "synflow", "grad_norm", "zico", "swap", "val_acc"} <= set(ESTIMATES)
    assert BASELINES == ("params", "macs")
    assert not set(BASELINES) & set(ESTIMATES)  # a search measures these itself


def test_estimate_accuracy_computes_zico_swap_and_the_baselines(tiny_space_path: Path) -> None:
    space = load_space(tiny_space_path)
    arch = space.default()
    names = ["zico", "swap", "params", "macs"]
    out = estimate_accuracy(space, arch, names, resolution=32, proxy_batch=4, timings=True)
    again = estimate_accuracy(space, arch, names, resolution=32, proxy_batch=4)
    assert all(math.isfinite(out[n]) for n in names)
    assert {n: out[n] for n in names} == again  # deterministic; no timings unless asked
    torch.manual_seed(0)
    full = space.family.build(space.to_cfg(arch)).eval()
    assert out["params"] == count_params(full)
    assert out["macs"] == count_macs(full, space.resolution).total
    assert all(out[f"{n}_s"] > 0 for n in names)


def test_estimate_accuracy_threads_the_probe_data(
    tiny_space_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = load_space(tiny_space_path)
    asked: list[str] = []

    def fake_data(data: str, resolution: int) -> ImageData:
        """Flat images of 20 grey levels: probes unlike any digit."""
        asked.append(data)
        train = torch.stack([torch.full((3, 32, 32), 10 * k, dtype=torch.uint8) for k in range(20)])
        labels = torch.arange(20) % 10
        return ImageData("fake", tuple("0123456789"), train, labels, train[:2], labels[:2])

    monkeypatch.setattr(data_module, "load_data", fake_data)
    arch = space.default()
    on_digits = estimate_accuracy(space, arch, ["naswot"], resolution=32, proxy_batch=4)
    on_fake = estimate_accuracy(space, arch, ["naswot"], resolution=32, proxy_batch=4, data="fake")
    assert asked == ["fake"]  # digits are built in; the named set was loaded
    assert on_fake != on_digits


def test_estimate_accuracy_rejects_unknown_names(tiny_space_path: Path) -> None:
    space = load_space(tiny_space_path)
    with pytest.raises(KeyError, match="zico"):
        estimate_accuracy(space, space.default(), ["jacov"])


# --- scoring against a ground truth ---


def test_perfect_and_reversed_rankings() -> None:
    truth = np.linspace(0.5, 0.9, 10)
    scores = score_estimates({"same": truth * 100 + 3, "reversed": -truth}, truth)
    same, rev = scores["same"], scores["reversed"]
    assert (
        same.n == 10 and same.spearman == pytest.approx(1.0) and same.kendall == pytest.approx(1.0)
    )
    assert same.top20_recall == 1.0 and same.spearman_ci == pytest.approx((1.0, 1.0))
    assert rev.spearman == pytest.approx(-1.0) and rev.kendall == pytest.approx(-1.0)
    assert rev.top20_recall == 0.0


def test_missing_estimates_are_left_out_and_infinities_rank_at_the_ends() -> None:
    truth = [0.1, 0.2, 0.3, 0.4, 0.5]
    scores = score_estimates(
        {"gaps": [1.0, math.nan, 3.0, 4.0, 5.0], "overflow": [-math.inf, 2.0, 3.0, 4.0, math.inf]},
        truth,
    )
    assert scores["gaps"].n == 4 and scores["gaps"].spearman == pytest.approx(1.0)
    assert scores["overflow"].spearman == pytest.approx(1.0)


def test_rank_normalise() -> None:
    assert rank_normalise([30.0, 10.0, 20.0, 20.0]) == pytest.approx([0.875, 0.125, 0.5, 0.5])
    assert len(rank_normalise([])) == 0


def test_pooling_ranks_within_each_space() -> None:
    # Space B's archs are all worse than A's but score higher: raw values pooled would rank them
    # the wrong way round; within each space the estimate is perfect.
    a_truth, b_truth = np.array([0.90, 0.91, 0.92, 0.93]), np.array([0.50, 0.51, 0.52])
    a_est, b_est = np.array([1.0, 2.0, 3.0, 4.0]), np.array([10.0, 11.0, 12.0])
    raw = score_estimates(
        {"x": np.concatenate([a_est, b_est])}, np.concatenate([a_truth, b_truth])
    )["x"]
    assert raw.spearman < 0
    pooled = pooled_agreement([(a_est, a_truth), (b_est, b_truth)])
    assert pooled.n == 7 and pooled.spearman == pytest.approx(1.0)
    assert pooled.kendall == pytest.approx(1.0)
    # perfect in one space, reversed in a space of the same size: no agreement overall
    mixed = pooled_agreement([(a_est, a_truth), (-a_est, a_truth + 1)])
    assert mixed.spearman == pytest.approx(0.0, abs=1e-12)


def test_a_real_pick_holds_out_and_a_pick_among_noise_does_not() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=40)
    noise = {f"noise{i}": rng.normal(size=40) for i in range(4)}
    real = held_out_pick({"good": truth + 0.5 * rng.normal(size=40), **noise}, truth, rounds=200)
    assert real.picks["good"] > 0.95 and real.held_out_rho > 0.6
    assert real.held_out_rho == pytest.approx(real.picked_rho, abs=0.1)
    chance = held_out_pick(noise, truth, rounds=200)
    assert max(chance.picks.values()) < 0.8 and sum(chance.picks.values()) == pytest.approx(1.0)
    assert abs(chance.held_out_rho) < 0.2 < chance.picked_rho - chance.held_out_rho  # flattered
    with pytest.raises(ValueError, match="at least 6 archs"):
        held_out_pick({"good": truth[:5]}, truth[:5])


@pytest.mark.parametrize(
    "objective, divisor, metric",
    [("train_1_8", 8, "val_acc"), ("tse_1_64", 64, "train_speed")],
)
def test_a_search_can_optimise_the_short_training_the_evidence_scores(
    objective: str,
    divisor: int,
    metric: str,
    tiny_space_path: Path,
    storage_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``train_1_8`` (validation accuracy) and ``tse_1_64`` (minus the mean training loss) in a
    search are the reference recipe cut to 1/8 and 1/64, with the evidence's seed: the figures
    ``bench/proxy_correlation.py`` scores."""
    import dataclasses

    from archlab.estimate import arch_estimates
    from archlab.estimate.training import GROUND_TRUTH
    from archlab.search.loop import run_search
    from archlab.study.settings import SearchSpec

    steps = 2 * divisor  # 2 steps at the fraction
    cheap = dataclasses.replace(GROUND_TRUTH, steps=steps, warmup=divisor, batch=8)
    monkeypatch.setattr(arch_estimates, "GROUND_TRUTH", cheap)
    spec = SearchSpec(
        space=str(tiny_space_path), storage=storage_url, study_name="t", n_trials=2,
        objectives=(objective, "latency"), latency_max_time_s=0.2, corners=False,
    )  # fmt: skip
    study = run_search(spec).study
    space = load_space(str(tiny_space_path))
    recipe = arch_estimates.short_training_spec(divisor, "fashion-mnist")
    assert (recipe.steps, recipe.seed) == (2, arch_estimates.SHORT_TRAINING_SEED)
    for trial in study.trials:
        again = estimate_accuracy(space, trial.params, [metric], train=recipe, seed=recipe.seed)
        assert trial.values[0] == trial.user_attrs[objective] == again[metric]
        assert (again[metric] < 0) == (objective == "tse_1_64")  # minus a loss; an accuracy
    value, seconds = arch_estimates.trained_estimate(
        space, trial.params, objective, "fashion-mnist"
    )
    assert value == again[metric] and seconds > 0  # what `archlab estimate` and the bench print
    with pytest.raises(KeyError, match="'naswot' is not a training estimate"):
        arch_estimates.trained_estimate(space, trial.params, "naswot")

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from archlab.estimate.estimates import BASELINES, ESTIMATES, estimate_accuracy
from archlab.estimate.score import pooled_agreement, rank_normalise, score_estimates
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


def test_estimate_accuracy_threads_the_probe_data(tiny_space_path: Path) -> None:
    space = load_space(tiny_space_path)
    default = estimate_accuracy(space, space.default(), ["naswot"], resolution=32, proxy_batch=4)
    digits = estimate_accuracy(
        space, space.default(), ["naswot"], resolution=32, proxy_batch=4, data="digits"
    )
    assert default == digits


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

"""The knob ridge (archlab.estimate.surrogate): encoding, a known linear answer, serialisation."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bench_scripts import load_bench_script
from scipy.stats import spearmanr

from archlab.estimate.ground_truth import random_arch_truth, read_rows
from archlab.estimate.rank_stats import Agreement
from archlab.estimate.surrogate import (
    KnobRidge,
    encode,
    fit_knob_ridge,
    leave_one_out,
    load_surrogates,
    surrogate_for,
)
from archlab.estimate.training import GROUND_TRUTH
from archlab.space import load_space

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"


def _archs(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "depth": rng.choice([1, 2, 3, 4]),
            "width": rng.choice([32, 64, 96]),
            "mixer": rng.choice(["plg", "parc", "none"]),
            "tokens": rng.choice([None, 4, 6]),
            "fixed": "same",
        }
        for _ in range(n)
    ]


def _truth(arch: dict[str, Any]) -> float:
    """A known answer: depth and the mixer matter, width barely, tokens not at all."""
    return 0.80 + 0.01 * arch["depth"] + 0.02 * (arch["mixer"] == "plg") + 0.0001 * arch["width"]


def test_encoding_numbers_unset_flags_and_one_hot_choices() -> None:
    archs = [
        {"d": 1, "m": "a", "t": None, "c": 7},
        {"d": 3, "m": "b", "t": 4, "c": 7},
        {"d": 2, "m": "a", "t": 6, "c": 7},
    ]
    x, columns = encode(archs)
    names = [(c.knob, c.kind, c.level) for c in columns]
    assert names == [
        ("d", "number", ""),
        ("m", "level", '"a"'),
        ("m", "level", '"b"'),
        ("t", "number", ""),
        ("t", "unset", ""),
    ]  # the constant knob c says nothing and is dropped
    assert x.tolist() == [[1, 1, 0, 5, 1], [3, 0, 1, 4, 0], [2, 1, 0, 6, 0]]
    unseen, _ = encode([{"d": 9, "m": "new", "t": None}], columns)
    assert unseen.tolist() == [[9, 0, 0, 5, 1]]  # a value never fitted: no level column fires


def test_fit_ranks_held_out_archs_of_a_known_linear_truth() -> None:
    train, test = _archs(40, seed=1), _archs(30, seed=2)
    model = fit_knob_ridge(train, [_truth(a) for a in train])
    predicted = model.predict(test)
    assert spearmanr(predicted, [_truth(a) for a in test]).statistic > 0.95
    heaviest = [name for name, _ in model.weights()[:2]]
    assert set(heaviest) == {"depth", "mixer=plg"}
    assert model.archs == 40


def test_a_model_round_trips_through_json() -> None:
    archs = _archs(20)
    model = fit_knob_ridge(archs, [_truth(a) for a in archs])
    again = KnobRidge.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again == model
    assert np.array_equal(again.predict(archs), model.predict(archs))


def test_a_fit_refuses_too_few_archs_or_mismatched_accuracies() -> None:
    archs = _archs(5)
    with pytest.raises(ValueError, match="5 archs but 4 accuracies"):
        fit_knob_ridge(archs, [0.9] * 4)
    with pytest.raises(ValueError, match="3 or more archs, got 2"):
        fit_knob_ridge(archs[:2], [0.9, 0.8])


def test_leave_one_out_predicts_each_arch_without_it() -> None:
    archs = _archs(25, seed=3)
    truth = [_truth(a) for a in archs]
    predicted = leave_one_out(archs, truth)
    assert spearmanr(predicted, truth).statistic > 0.9
    alone = fit_knob_ridge(archs[1:], truth[1:]).predict(archs[:1])[0]
    assert predicted[0] == pytest.approx(alone)


def test_a_space_without_a_model_or_with_other_knobs_is_refused(tmp_path: Path) -> None:
    archs = _archs(10)
    model = fit_knob_ridge(archs, [_truth(a) for a in archs])
    path = tmp_path / "surrogates.json"
    path.write_text(json.dumps({"spaces": {"mine": {"model": model.to_dict()}}}))
    knobs = ["depth", "width", "mixer", "tokens", "fixed"]
    assert surrogate_for("mine", knobs, path) == model
    with pytest.raises(ValueError, match=r"no model .* space 'parc' \(fitted for: mine\)"):
        surrogate_for("parc", knobs, path)
    with pytest.raises(ValueError, match=r"not here: \['tokens'\]; new here: \['heads'\]"):
        surrogate_for("mine", ["depth", "width", "mixer", "fixed", "heads"], path)


@pytest.mark.parametrize("space", sorted(load_surrogates()))
def test_each_shipped_model_is_the_fit_of_its_committed_ground_truth(space: str) -> None:
    """surrogates.json is rewritten by bench/accuracy_surrogate.py --write; a ground truth or a
    space file changed without it fails here."""
    shipped = load_surrogates()[space]
    rows = read_rows(RESULTS / f"ground_truth_{space}.csv")
    truth = random_arch_truth(rows, GROUND_TRUTH.budget_label())
    archs = sorted(truth)
    refit = fit_knob_ridge([json.loads(a) for a in archs], [truth[a] for a in archs])
    assert refit.columns == shipped.columns and refit.archs == shipped.archs
    assert np.allclose(refit.coef, shipped.coef) and refit.alpha == pytest.approx(shipped.alpha)
    assert set(shipped.knobs) == set(load_space(space).knobs)


def test_held_out_scores_only_the_archs_the_model_was_not_fitted_on() -> None:
    """bench/accuracy_surrogate.py --held-out: the shipped model and each estimate computed for
    every new arch are scored on the new archs alone; a candidate is fitted on the old ones."""
    held_out_predictions = load_bench_script("accuracy_surrogate").held_out_predictions
    configs = _archs(40, seed=4)
    archs = [json.dumps({**a, "i": i}) for i, a in enumerate(configs)]  # every JSON distinct
    y = np.array([_truth(a) for a in configs])
    fitted = set(archs[:30])
    model = fit_knob_ridge(configs[:30], list(y[:30]))
    estimates = {a: {"good": float(y[i]), "bad": -float(y[i])} for i, a in enumerate(archs)}
    estimates[archs[35]].pop("bad")  # not computed for one new arch: left out
    estimates[archs[0]]["only_fitted"] = 1.0  # never computed for a new arch: left out
    seen: list[tuple[list[dict[str, Any]], np.ndarray]] = []

    def candidate(
        train: list[dict[str, Any]], accuracy: np.ndarray
    ) -> Callable[[list[dict[str, Any]]], np.ndarray]:
        seen.append((train, accuracy))
        return lambda new: -np.arange(len(new), dtype=float)

    predictions = held_out_predictions(archs, y, fitted, model, estimates, {"mine": candidate})
    assert set(predictions) == {"knob_ridge (shipped)", "mine", "good"}
    assert all(len(v) == 10 for v in predictions.values())
    assert np.array_equal(predictions["good"], y[30:])
    assert spearmanr(predictions["knob_ridge (shipped)"], y[30:]).statistic > 0.9
    [(train, accuracy)] = seen
    assert [a["i"] for a in train] == list(range(30)) and np.array_equal(accuracy, y[:30])
    assert held_out_predictions(archs, y, set(archs[:38]), model, estimates) == {}  # 2 new


def test_a_paired_difference_of_rho_scores_both_on_the_same_draws() -> None:
    difference = load_bench_script("accuracy_surrogate").paired_rho_difference
    truth = np.arange(12, dtype=float)
    d, low, high = difference(truth, -truth, truth)
    assert d == pytest.approx(2.0) and low == pytest.approx(2.0) and high == pytest.approx(2.0)
    noisy = truth + np.random.default_rng(0).normal(0, 3, 12)
    d, low, high = difference(noisy, noisy, truth)
    assert d == 0.0 and low == high == 0.0  # the same estimate: no difference on any draw


def test_the_gp_candidate_ranks_held_out_archs_of_a_known_truth() -> None:
    fit = load_bench_script("accuracy_surrogate").fit_knob_gp
    train, test = _archs(40, seed=1), _archs(30, seed=2)
    predict = fit(train, np.array([_truth(a) for a in train]))
    assert spearmanr(predict(test), [_truth(a) for a in test]).statistic > 0.9


def test_a_held_out_check_reads_the_rho_against_the_leave_one_out_interval_and_back() -> None:
    check = load_bench_script("accuracy_surrogate").leave_one_out_check
    rng = np.random.default_rng(3)
    truth = {f"a{i}": float(v) for i, v in enumerate(rng.normal(size=40))}
    loo = {a: v + rng.normal(0, 1.0) for a, v in list(truth.items())[:30]}  # 10 new archs

    def held_out(rho: float, low: float, high: float) -> Agreement:
        return Agreement(12, rho, (low, high), rho, (low, high), 0.0)

    reading = check(loo, truth, held_out(0.0, -0.5, 0.5))
    score = reading.leave_one_out
    assert score.n == 30
    low, high = score.spearman_ci
    assert 0 < low < score.spearman < high < 1  # noisy predictions: a wide interval above zero
    assert not reading.inside and not reading.consistent  # clearly below the figure
    assert check(loo, truth, held_out(low, low - 0.3, low + 0.3)).inside
    assert check(loo, truth, held_out((low + high) / 2, 0.0, 0.9)).inside
    above = check(loo, truth, held_out(high + 0.01, score.spearman - 0.1, 1.0))
    assert not above.inside and above.consistent  # a small held-out set, above the interval
    assert not check(loo, truth, held_out(0.99, score.spearman + 0.01, 1.0)).consistent


def test_held_out_data_at_a_revision_is_that_revisions_ground_truth_and_estimates() -> None:
    """--data-at REV: a held-out figure is taken again on the archs of REV, not today's."""
    script = load_bench_script("accuracy_surrogate")
    repo = Path(__file__).resolve().parents[1]
    git = shutil.which("git")
    unchanged = git and subprocess.run(
        [git, "diff", "--quiet", "HEAD", "--", "bench/results"], cwd=repo, capture_output=True
    )
    if not unchanged or unchanged.returncode != 0:
        pytest.skip("bench/results differs from HEAD here (or git is missing)")
    archs, y, rows = script._truth("hybrid", "HEAD")
    now = script._truth("hybrid")
    assert archs == now[0] and np.array_equal(y, now[1]) and len(rows) == len(now[2])
    assert script._estimate_rows("hybrid", "HEAD") == script._estimate_rows("hybrid")
    assert script._truth("hybrid", "no-such-revision")[0] == []  # nothing, not a traceback
    assert script._estimate_rows("hybrid", "no-such-revision") == {}


def test_held_out_takes_the_shipped_model_with_the_archs_it_was_fitted_on() -> None:
    shipped = load_bench_script("accuracy_surrogate")._shipped
    model, archs = shipped("plgvit", "")
    assert model == load_surrogates()["plgvit"] and len(archs) == model.archs
    assert shipped("plgvit", "no-such-revision") is None  # a bad revision: no model, no traceback

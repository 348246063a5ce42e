"""The ground-truth runner: deterministic training, resumable CSV, seed agreement, references."""

from __future__ import annotations

import dataclasses
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from bench_scripts import load_bench_script
from rich.console import Console

from archlab.estimate.ground_truth import (
    append_row,
    mean_accuracy,
    parse_shard,
    pending,
    planned_runs,
    read_rows,
    reference_outcomes,
    seed_agreement,
    train_run,
)
from archlab.estimate.rank_stats import (
    agreement,
    agreement_outlook,
    arch_qualities,
    attainable_correlation,
    fresh_archs,
    kendall,
    noise_for_agreement,
    seed_noise,
    simulated_agreement,
    spearman,
    top_recall,
)
from archlab.estimate.training import GROUND_TRUTH
from archlab.space import load_space

TINY = dataclasses.replace(
    GROUND_TRUTH, steps=3, batch=8, warmup=1, resolution=32, data="digits", flip=True
)


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


def test_the_recipe_is_deterministic_for_a_seed(tiny_space_path: Path) -> None:
    space = load_space(str(tiny_space_path))
    run = planned_runs(space, 1, [3], references=False)[0]
    first, second = train_run(space, run, TINY), train_run(space, run, TINY)
    assert first["val_acc"] == second["val_acc"]
    assert first["train_loss"] == second["train_loss"]
    other_seed = train_run(space, dataclasses.replace(run, seed=4), TINY)
    assert other_seed["train_loss"] != first["train_loss"]


def test_references_include_presets_and_the_plain_cnn(tiny_space_path: Path) -> None:
    space = dataclasses.replace(load_space("plgvit"), references=("lw_plgvit_r",))
    runs = planned_runs(space, 2, [0, 1])
    assert [(r.kind, r.name, r.seed) for r in runs[4:]] == [
        ("preset", "lw_plgvit_r", 0), ("preset", "lw_plgvit_r", 1),
        ("cnn", "plain_cnn", 0), ("cnn", "plain_cnn", 1),
    ]  # fmt: skip
    assert runs[0].arch == runs[1].arch and runs[0].seed != runs[1].seed  # pairs together
    row = train_run(space, runs[-1], TINY)
    assert row["kind"] == "cnn" and 0 <= row["val_acc"] <= 1 and row["params"] > 100_000


def test_finished_runs_are_skipped_on_resume(tmp_path: Path, tiny_space_path: Path) -> None:
    space = load_space(str(tiny_space_path))
    runs = planned_runs(space, 2, [0, 1], references=False)
    path = tmp_path / "gt.csv"
    budget = TINY.budget_label()
    append_row(path, train_run(space, runs[0], TINY))
    append_row(path, train_run(space, runs[1], TINY))
    assert list(pending(runs, path, budget)) == runs[2:]
    assert list(pending(runs, path, "another budget")) == runs
    rows = read_rows(path)
    assert [r["seed"] for r in rows] == [0, 1]
    assert json.loads(rows[0]["arch"]) == json.loads(runs[0].arch)
    assert len(mean_accuracy(rows, budget)) == 1


def test_rows_record_the_code_and_old_files_keep_their_header(
    tmp_path: Path, tiny_space_path: Path
) -> None:
    from archlab._version import __version__, source_revision

    space = load_space(str(tiny_space_path))
    run = planned_runs(space, 1, [0], references=False)[0]
    row = train_run(space, run, TINY)
    assert row["code"] == source_revision() and row["code"].startswith(__version__)
    path = tmp_path / "new.csv"
    append_row(path, row)
    assert read_rows(path)[0]["code"] == row["code"]
    # a file begun before the column existed: rows go in its columns, nothing shifts
    old = tmp_path / "old.csv"
    header = "space,kind,name,arch,seed,budget,val_acc,train_loss,params,seconds,torch"
    old.write_text(header + "\n")
    append_row(old, row)
    append_row(old, {**row, "seed": 1})
    lines = old.read_text().splitlines()
    assert lines[0] == header and all(line.count(",") >= header.count(",") for line in lines)
    rows = read_rows(old)
    assert [r["seed"] for r in rows] == [0, 1] and rows[0]["torch"] == row["torch"]
    assert "code" not in rows[0]


def test_append_row_writes_other_columns_for_other_results(tmp_path: Path) -> None:
    """The bench scripts' own results files (not ground truth) go through the same locked append."""
    path = tmp_path / "speed.csv"
    append_row(path, {"arch": "{}", "tse": -1.5}, ["arch", "tse", "seed"])
    append_row(path, {"arch": '{"a": 1}', "tse": -1.25, "seed": 3}, ["ignored"])
    assert path.read_text().splitlines() == ["arch,tse,seed", "{},-1.5,", '"{""a"": 1}",-1.25,3']


def _rows(accs: list[tuple[float, float]]) -> list[dict]:
    return [
        {"kind": "random", "budget": "b", "arch": f"a{i}", "seed": s, "val_acc": v}
        for i, pair in enumerate(accs)
        for s, v in enumerate(pair)
    ]


def test_seed_agreement_of_known_rankings() -> None:
    same = _rows([(0.1 * i, 0.1 * i + 0.01) for i in range(10)])
    assert seed_agreement(same, "b", (0, 1)).spearman == pytest.approx(1.0)
    reversed_ = _rows([(0.1 * i, 1 - 0.1 * i) for i in range(10)])
    result = seed_agreement(reversed_, "b", (0, 1))
    assert result.spearman == pytest.approx(-1.0) and result.kendall == pytest.approx(-1.0)
    assert result.n == 10


def test_rank_statistics_on_a_synthetic_case() -> None:
    truth = [float(i) for i in range(10)]
    assert spearman(truth, truth) == pytest.approx(1.0)
    assert kendall(truth, truth[::-1]) == pytest.approx(-1.0)
    assert top_recall(truth, truth) == 1.0 and top_recall(truth[::-1], truth) == 0.0
    one_swap = [0, 1, 2, 3, 4, 5, 6, 7, 9, 8]
    assert spearman(one_swap, truth) == pytest.approx(1 - 6 * 2 / (10 * 99))
    noisy = agreement([t + (i % 3) for i, t in enumerate(truth)], truth)
    low, high = noisy.spearman_ci
    assert low <= noisy.spearman <= high < 1.0 + 1e-9


def test_a_shard_is_one_of_n_and_anything_else_is_refused() -> None:
    assert parse_shard("0/1") == (0, 1) and parse_shard("1/2") == (1, 2)
    for bad in ("2/2", "x", "1", "-1/2", "1/0", "1/2/3"):
        with pytest.raises(ValueError, match="expected I/N"):
            parse_shard(bad)


def test_a_run_records_the_code_it_started_with_not_a_later_commit(
    tiny_space_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long job must not label its runs with a commit made while it trained."""
    import subprocess

    import archlab._version as version
    import archlab.estimate.ground_truth as ground_truth

    head = {"commit": "aaaaaaa"}

    def fake_git(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        out = head["commit"] if "rev-parse" in args else ""
        return subprocess.CompletedProcess(args, 0, stdout=out, stderr="")

    real_train = ground_truth.short_train

    def train_then_commit(*args: Any, **kwargs: Any) -> Any:
        result = real_train(*args, **kwargs)
        head["commit"] = "bbbbbbb"  # someone commits while the run trains
        return result

    monkeypatch.setattr(version.subprocess, "run", fake_git)
    monkeypatch.setattr(ground_truth, "short_train", train_then_commit)
    version.source_revision.cache_clear()
    try:
        space = load_space(str(tiny_space_path))
        run = planned_runs(space, 1, [0], references=False)[0]
        assert train_run(space, run, TINY)["code"].endswith("+gaaaaaaa")
    finally:
        version.source_revision.cache_clear()


def test_reference_outcomes_are_the_presets_and_cnn_at_one_budget() -> None:
    def row(kind: str, name: str, seed: int, acc: float, budget: str = "b") -> dict[str, Any]:
        return dict(kind=kind, name=name, arch="{}", seed=seed, budget=budget, val_acc=acc, code="")

    rows = [
        row("preset", "p", 1, 0.80), row("preset", "p", 0, 0.84), row("cnn", "cnn", 0, 0.9),
        row("random", "arch0", 0, 0.5), row("preset", "p", 2, 0.1, budget="other"),
    ]  # fmt: skip
    out = reference_outcomes(rows, "b")
    assert sorted(out) == ["cnn", "p"]
    assert out["p"]["seeds"] == [0, 1] and out["p"]["accuracies"] == [0.84, 0.80]
    assert out["p"]["accuracy"] == pytest.approx(0.82)
    assert out["p"]["accuracy_std"] == pytest.approx(0.04 / 2**0.5)
    assert out["cnn"]["kind"] == "cnn" and out["cnn"]["accuracy_std"] == 0.0


def test_the_attainable_correlation_matches_a_simulated_ground_truth() -> None:
    # Archs of quality q, each run q + noise: two runs agree at r = 0.64; a perfect estimate (q
    # itself) correlates with the two-run mean at sqrt(2r / (1 + r)) = 0.883.
    rng = np.random.default_rng(0)
    quality = rng.normal(size=200_000)
    noise_sd = np.sqrt(1 / 0.64 - 1)
    runs = quality + rng.normal(scale=noise_sd, size=(2, quality.size))
    assert np.corrcoef(runs[0], runs[1])[0, 1] == pytest.approx(0.64, abs=0.005)
    simulated = np.corrcoef(quality, runs.mean(axis=0))[0, 1]
    assert attainable_correlation(0.64, seeds=2) == pytest.approx(simulated, abs=0.005)
    assert attainable_correlation(0.64, seeds=1) == pytest.approx(0.8)  # sqrt(r) for one run
    assert attainable_correlation(1.0, seeds=2) == 1.0
    assert math.isnan(attainable_correlation(-0.1, seeds=2))  # no signal: nothing to attain
    with pytest.raises(ValueError, match="seeds"):
        attainable_correlation(0.5, seeds=0)


def test_seed_noise_recovers_the_spread_and_noise_it_was_simulated_with() -> None:
    # archs spread 0.5 %, each run 0.3 % of noise: ICC 0.25 / (0.25 + 0.09) = 0.735
    rng = np.random.default_rng(1)
    quality = 0.88 + rng.normal(scale=0.005, size=100_000)
    first, second = quality + rng.normal(scale=0.003, size=(2, quality.size))
    found = seed_noise(first, second)
    assert found.n == quality.size
    assert found.noise_sd == pytest.approx(0.003, rel=0.01)
    assert found.spread_sd == pytest.approx(0.005, rel=0.01)
    assert found.icc == pytest.approx(0.25 / 0.34, abs=0.005)
    assert np.corrcoef(first, second)[0, 1] == pytest.approx(found.icc, abs=0.01)
    # noise larger than the archs' spread: the spread is floored at 0, not imaginary
    flat = seed_noise(np.array([0.80, 0.90, 0.85]), np.array([0.90, 0.80, 0.85]))
    assert flat.spread_sd == 0.0 and flat.icc == 0.0
    with pytest.raises(ValueError, match="at least 3"):
        seed_noise(np.array([0.8, 0.9]), np.array([0.8, 0.9]))


def test_simulated_seed_agreement_matches_the_normal_theory() -> None:
    # For normal archs and noise, two runs correlate at r = ICC and their Spearman ρ at
    # (6 / π)·asin(r / 2); with many archs per draw the simulated ρ sits on it.
    spread, noise = 1.0, math.sqrt(1 / 0.84 - 1)  # ICC 0.84
    rho = simulated_agreement(fresh_archs(spread, 500, draws=200), noise)
    assert np.median(rho) == pytest.approx(6 / math.pi * math.asin(0.84 / 2), abs=0.01)
    # noiseless runs of distinct archs always agree; the same seed gives the same draws
    quality = fresh_archs(spread, 30, draws=1)[0]
    assert np.all(simulated_agreement(quality, 0.0, draws=50) == pytest.approx(1.0))
    assert np.array_equal(simulated_agreement(quality, 0.3), simulated_agreement(quality, 0.3))


def test_an_outlook_of_30_archs_is_wide_and_the_noise_found_for_a_target_reaches_it() -> None:
    quality = fresh_archs(0.005, 30, draws=1)[0]
    look = agreement_outlook(quality, 0.002, target=0.9)
    assert look.low < look.median < look.high and 0 <= look.chance <= 1
    needed = noise_for_agreement(quality, target=0.9)
    assert agreement_outlook(quality, needed, target=0.9).median >= 0.9 - 0.005
    assert agreement_outlook(quality, needed * 1.2, target=0.9).median < 0.9
    # reaching it in 80 % of draws takes less noise than in half of them
    assert noise_for_agreement(quality, target=0.9, chance=0.8) < needed
    # archs of equal accuracy never rank alike, however quiet the runs
    assert noise_for_agreement(np.full(30, 0.88), target=0.9) == 0.0
    with pytest.raises(ValueError, match="chance"):
        noise_for_agreement(quality, chance=1.0)


def test_arch_qualities_take_the_noise_out_of_the_two_seed_means() -> None:
    rng = np.random.default_rng(3)
    truth = 0.88 + rng.normal(scale=0.004, size=5_000)
    first, second = truth + rng.normal(scale=0.004, size=(2, truth.size))
    quality = arch_qualities(first, second)
    # the two-seed means spread wider than the archs do (noise SD / √2 on top); the estimate not
    assert np.std((first + second) / 2) == pytest.approx(0.004 * math.sqrt(1.5), rel=0.03)
    assert np.std(quality) == pytest.approx(0.004, rel=0.03)
    assert np.mean(quality) == pytest.approx(np.mean((first + second) / 2))


def test_the_ground_truth_report_simulates_the_agreement_and_compares_recipes(
    tmp_path: Path,
) -> None:
    bench = load_bench_script("ground_truth")
    out = io.StringIO()
    bench.console = Console(file=out, width=300)
    path = tmp_path / "gt.csv"
    rng = np.random.default_rng(4)
    quality = 0.88 + rng.normal(scale=0.005, size=8)
    long_spec = dataclasses.replace(GROUND_TRUTH, steps=2000)
    # the default recipe on 8 archs, a quieter long one on the first 5 of them
    for spec, noise, archs in ((GROUND_TRUTH, 0.002, 8), (long_spec, 0.0005, 5)):
        for i, q in enumerate(quality[:archs]):
            for seed in (0, 1):
                row = {"space": "s", "kind": "random", "name": f"arch{i}", "arch": f'{{"i": {i}}}'}
                acc = q + rng.normal(scale=noise)
                budget = spec.budget_label()
                row |= {"seed": seed, "budget": budget, "val_acc": acc, "seconds": 300}
                append_row(path, row)
    bench._report(path, long_spec, 0, GROUND_TRUTH.budget_label())
    text = out.getvalue()
    assert "seed 0 vs 1 over 5 archs" in text
    assert "these 5 archs: ρ median" in text and "5 fresh archs: ρ median" in text
    assert "on the 5 archs trained with both seeds in both recipes" in text
    assert f"{GROUND_TRUTH.budget_label()}: seed agreement" in text
    # the long recipe's noise, read on all 8 archs of the default
    assert f"on all 8 archs of {GROUND_TRUTH.budget_label()}: simulated ρ median" in text
    # a recipe is not compared with itself
    out.seek(0)
    out.truncate()
    bench._report(path, GROUND_TRUTH, 0, GROUND_TRUTH.budget_label())
    assert "both recipes" not in out.getvalue() and "these 8 archs" in out.getvalue()

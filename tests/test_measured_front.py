"""A predicted-latency search is judged by what was measured: a predictor 20 % low, faked."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from typer.testing import CliRunner

import archlab.search.loop as loop
import archlab.search.remeasure as remeasure
from archlab.cli import app
from archlab.measurement.latency import Latency, LatencyEnv
from archlab.search.loop import run_search
from archlab.space import SearchSpace
from archlab.study.measured_front import correction_of, fit_correction, non_dominated
from archlab.study.objectives import DEFAULT_OBJECTIVES
from archlab.study.settings import SearchSpec
from archlab.study.storage import load_study, study_dir
from archlab.study.trials import over_target_frame, pareto_frame, trials_frame

TARGET_MS = 60.0
BIAS = 0.8  # predictions are 20 % low


def _true_ms(config: dict[str, Any]) -> float:
    """A latency that only depends on the architecture: 10 to 110 ms."""
    return 10.0 + zlib.crc32(json.dumps(config, sort_keys=True).encode()) % 1000 / 10


@pytest.fixture
def biased(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Predictions 20 % below the latency the (fake) re-measurement finds; returns the sizes
    of the chunks re-measured."""
    chunks: list[int] = []

    def evaluate(space: SearchSpace, arch: dict[str, Any], *args: Any, **kw: Any) -> Any:
        true = _true_ms(space.to_config(arch))
        # the estimate grows with latency, with some scatter: a front of many members
        scatter = zlib.crc32(repr(sorted(arch.items())).encode()) % 100 / 5
        return {
            "params": 1,
            "macs": 1,
            DEFAULT_OBJECTIVES[0]: true + scatter,
            "latency_ms_predicted": true * BIAS,
        }

    def measure(configs: list[dict[str, Any]], resolution: int, **kw: Any) -> list[Latency]:
        chunks.append(len(configs))
        env = LatencyEnv("cpu", 1, 1, resolution)
        return [Latency(_true_ms(c), 0.5, 0.1, 0.01, 16, env) for c in configs]

    monkeypatch.setattr(loop, "latency_predictor", lambda spec: None)
    monkeypatch.setattr(loop, "evaluate_arch", evaluate)
    monkeypatch.setattr(remeasure, "measure_many_in_processes", measure)
    monkeypatch.setattr(remeasure, "front_anchors", lambda spec, space: [])
    return chunks


def _spec(space: Path, storage: str, **kw: Any) -> SearchSpec:
    settings: dict[str, Any] = dict(
        space=str(space),
        storage=storage,
        study_name="t",
        n_trials=60,
        sampler="random",
        seed=3,
        target_latency_s=TARGET_MS / 1e3,
        latency_mode="predicted",
        latency_model="unused.json",
    )
    return SearchSpec(**{**settings, **kw})


def test_a_low_biased_predictor_is_caught_and_corrected(
    tiny_space_path: Path, storage_url: str, archlab_home: Path, biased: list[int]
) -> None:
    run_search(_spec(tiny_space_path, storage_url, calibrate_after=0))  # corrected at the end only
    study = load_study("t", storage_url)
    predicted_front = study.best_trials  # Optuna's, on the bare predictions
    fooled = [t for t in predicted_front if t.user_attrs["latency_ms_predicted"] / BIAS > TARGET_MS]
    assert fooled, "the test needs predicted-feasible members that measure over the target"

    # the correction recovers the bias, with an interval around it
    correction = correction_of(study)
    assert correction.scale == pytest.approx(1 / BIAS)
    assert correction.low <= correction.scale <= correction.high

    # the front carries measured latencies and measured feasibility, every member within target
    front = pareto_frame(study)
    assert (front["latency_source"] == "measured").all() and front["feasible"].all()
    assert (front["latency_ms"] <= TARGET_MS).all()
    assert (front["objective:latency_ms"] == front["latency_ms"]).all()
    assert not set(front["number"]) & {t.number for t in fooled}
    # ... those that measured over it are listed apart, with both figures
    over = over_target_frame(study)
    assert {t.number for t in fooled} <= set(over["number"])
    assert (over["latency_ms"] > TARGET_MS).all() and over["latency_ms_predicted"].notna().all()

    # the stored front is the printed one
    stored = pd.read_csv(study_dir("t") / "pareto.csv")
    assert list(stored["number"]) == list(front["number"]) and stored["feasible"].all()
    apart = pd.read_csv(study_dir("t") / "over_target_when_measured.csv")
    assert list(apart["number"]) == list(over["number"])

    # judged on corrected predictions, every trial's feasibility is its true one
    rows = trials_frame(study)
    done = rows[rows["state"] == "COMPLETE"]
    truth = done["latency_ms_predicted"] / BIAS <= TARGET_MS + 1e-9
    assert (done["feasible"] == truth).all()


def test_a_resumed_search_judges_its_constraint_on_corrected_predictions(
    tiny_space_path: Path, storage_url: str, archlab_home: Path, biased: list[int]
) -> None:
    run_search(_spec(tiny_space_path, storage_url, n_trials=20))
    run_search(_spec(tiny_space_path, storage_url, n_trials=10))
    study = load_study("t", storage_url)
    later = [t for t in study.trials if "latency_correction_scale" in t.user_attrs]
    assert len(later) >= 9
    for t in later:
        true_ms = t.user_attrs["latency_ms_predicted"] / BIAS
        assert t.constraints["latency"] == pytest.approx(true_ms / 1e3 - TARGET_MS / 1e3)


def test_a_search_calibrates_its_predictions_part_way_and_uses_the_correction(
    tiny_space_path: Path, storage_url: str, archlab_home: Path, biased: list[int]
) -> None:
    run_search(_spec(tiny_space_path, storage_url, n_trials=40, calibrate_after=20))
    study = load_study("t", storage_url)
    assert biased[0] <= remeasure.CALIBRATION_MODELS  # a few front members, measured mid-search
    trials = sorted(study.trials, key=lambda t: t.number)
    assert all("latency_correction_scale" not in t.user_attrs for t in trials[:20])
    later = [t for t in trials[20:] if t.constraints is not None]
    assert len(later) >= 15
    for t in later:  # judged on corrected predictions, i.e. on the true latency
        assert t.user_attrs["latency_correction_scale"] == pytest.approx(1 / BIAS)
        true_ms = t.user_attrs["latency_ms_predicted"] / BIAS
        assert t.constraints["latency"] == pytest.approx(true_ms / 1e3 - TARGET_MS / 1e3)


def test_the_front_is_filled_within_the_remeasure_budget(
    tiny_space_path: Path, storage_url: str, archlab_home: Path, biased: list[int]
) -> None:
    run_search(_spec(tiny_space_path, storage_url, remeasure_budget=0, calibrate_after=0))
    study = load_study("t", storage_url)
    first = [study.trials[int(n)] for n in study.user_attrs["remeasured"]]
    assert remeasure.distinct_archs(first) == study.user_attrs["front_before_remeasurement"]
    front = pareto_frame(study)  # members that joined and were not measured are marked
    assert set(front["latency_source"]) <= {"measured", "predicted"}
    unmeasured = front[front["latency_source"] == "predicted"]
    assert (unmeasured["latency_ms_corrected"] <= TARGET_MS).all()


def test_pareto_prints_measured_and_predicted_latency_within_100_columns(
    tiny_space_path: Path, storage_url: str, archlab_home: Path, biased: list[int]
) -> None:
    run_search(_spec(tiny_space_path, storage_url))
    out = CliRunner().invoke(
        app, ["pareto", "--study", "t", "--storage", storage_url], env={"COLUMNS": "100"}
    )
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert all(len(line) <= 100 for line in lines)
    header = next(line for line in lines if "lat ms (meas) ± IQR" in line)
    assert "lat ms (pred)" in header and f"{DEFAULT_OBJECTIVES[0]} (estimate)" in header
    assert any(line.startswith("Over the 60 ms target when measured") for line in lines)
    assert any(line.startswith("Correction fitted on them: ×1.250") for line in lines)
    shown = json.loads(
        CliRunner()
        .invoke(app, ["pareto", "--study", "t", "--storage", storage_url, "--format", "json"])
        .output
    )
    assert all(r["feasible"] and r["latency_ms"] <= TARGET_MS for r in shown["pareto"])
    assert all(not r["feasible_measured"] for r in shown["over_target_when_measured"])


def test_correction_interval_and_front_helpers() -> None:
    none = fit_correction([], [])
    assert none.scale == 1.0 and none.models == 0
    fit = fit_correction([10.0, 12.0, 11.0, 13.0], [10.0, 10.0, 10.0, 10.0])
    assert fit.scale == pytest.approx(1.15) and fit.low < fit.scale < fit.high
    points = np.array([[1.0, 3.0], [2.0, 2.0], [2.0, 3.0], [3.0, 1.0], [1.0, 3.0]])
    assert non_dominated(points) == [0, 1, 3, 4]  # ties both stay, as in Optuna


def test_a_measured_study_keeps_optuna_s_front(
    tiny_space_path: Path, storage_url: str, archlab_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def evaluate(space: SearchSpace, arch: dict[str, Any], *args: Any, **kw: Any) -> Any:
        true = _true_ms(space.to_config(arch))
        return {"params": 1, "macs": 1, DEFAULT_OBJECTIVES[0]: true, "latency_ms": true}

    monkeypatch.setattr(loop, "evaluate_arch", evaluate)
    spec = _spec(tiny_space_path, storage_url, latency_mode="measured", n_trials=10)
    run_search(spec)
    study = optuna.load_study(study_name="t", storage=storage_url)
    assert set(pareto_frame(study)["number"]) == {t.number for t in study.best_trials}
    assert over_target_frame(study).empty

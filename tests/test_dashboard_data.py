"""The data behind the dashboard: fronts on two metrics, gains per millisecond, configs rebuilt from
the stored space, comparisons, study health and the published-variant references."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

import archlab.search.references as references
from archlab.dashboard import data as dd
from archlab.dashboard import figures
from archlab.dashboard import health as study_health
from archlab.dashboard.compare import better_marks, config_diff, metrics_table
from archlab.dashboard.front import front_2d, gains_table, marginal_gains
from archlab.estimate.reduced import reduce_cfg
from archlab.models import cfg_to_dict, find_preset
from archlab.space import load_space
from archlab.study.storage import StorageError, open_storage, study_dir

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _frame(rows: list[tuple[int, str, float | None, float | None]]) -> pd.DataFrame:
    """Trials as (number, status, latency_ms, naswot)."""
    return pd.DataFrame(
        [
            {"number": n, "status": s, "latency_ms": lat, "naswot": acc, "params": 1e5, "macs": 1e7}
            for n, s, lat, acc in rows
        ]
    )


def test_front_keeps_feasible_non_dominated_trials_sorted_by_x() -> None:
    frame = _frame(
        [
            (0, "feasible", 10.0, 40.0),
            (1, "feasible", 12.0, 39.0),  # slower and worse than trial 0: dominated
            (2, "feasible", 20.0, 42.0),
            (3, "infeasible", 5.0, 50.0),  # would dominate everything, but is over the target
            (4, "failed", None, None),
            (5, "feasible", 20.0, 42.0),  # a tie with trial 2 is kept once
            (6, "feasible", 30.0, 41.0),  # slower than trial 2 and worse
        ]
    )
    front = front_2d(frame, "latency_ms", "naswot")
    assert list(front["number"]) == [0, 2]


def test_front_follows_each_metrics_direction() -> None:
    frame = _frame([(0, "feasible", 10.0, 40.0), (1, "feasible", 20.0, 42.0)])
    assert list(front_2d(frame, "naswot", "latency_ms")["number"]) == [0, 1]
    frame["params"] = [2e5, 1e5]  # trial 1: fewer params and more NASWOT: dominates trial 0
    assert list(front_2d(frame, "params", "naswot")["number"]) == [1]


def test_marginal_gains_say_what_each_extra_millisecond_buys() -> None:
    front = front_2d(
        _frame(
            [(0, "feasible", 10.0, 40.0), (1, "feasible", 14.0, 41.0), (2, "feasible", 24.0, 43.5)]
        ),
        "latency_ms",
        "naswot",
    )
    gains = marginal_gains(front, "latency_ms", "naswot")
    assert list(gains["trial"]) == [0, 1, 2]
    assert gains["extra cost"].iloc[1:].tolist() == [4.0, 10.0]
    assert gains["gain"].iloc[1:].tolist() == [1.0, 2.5]
    assert gains["gain per unit of cost"].iloc[1:].tolist() == [0.25, 0.25]
    assert np.isnan(gains["extra cost"].iloc[0])  # the front starts here
    assert marginal_gains(front.iloc[:0], "latency_ms", "naswot").empty


def test_steps_smaller_than_the_latency_spread_are_within_noise() -> None:
    frame = _frame(
        [(0, "feasible", 10.0, 40.0), (1, "feasible", 10.3, 41.0), (2, "feasible", 14.0, 42.0)]
    )
    frame["latency_iqr_ms"] = [0.2, 0.5, 0.4]
    gains = marginal_gains(front_2d(frame, "latency_ms", "naswot"), "latency_ms", "naswot")
    assert gains["noise"].iloc[1:].tolist() == [0.5, 0.5]  # the larger IQR of the two trials
    assert gains["within noise"].tolist() == [False, True, False]
    shown = gains_table(gains, "latency_ms", "naswot")
    assert shown["extra ms"].tolist() == ["start", "+0.300", "+3.70"]
    assert shown["latency step"].tolist() == ["start", "within noise", "measurable"]
    assert shown["gained per extra ms"].tolist() == ["–", "–", "0.270"]  # no rate within noise
    assert list(shown.columns)[1:3] == ["latency (ms, median)", "accuracy estimate: NASWOT score"]


def test_gains_without_latency_mark_no_noise() -> None:
    frame = _frame([(0, "feasible", 10.0, 40.0), (1, "feasible", 12.0, 41.0)])
    frame["latency_iqr_ms"] = [5.0, 5.0]
    frame["macs"] = [1e7, 1.1e7]
    gains = marginal_gains(front_2d(frame, "macs", "naswot"), "macs", "naswot")
    assert not gains["within noise"].any()
    assert "latency step" not in gains_table(gains, "macs", "naswot")


def test_study_data_rebuilds_every_trial_config_from_the_stored_space(
    dashboard_study: Any, tiny_space_path: Path
) -> None:
    data = dd.load_study_data(open_storage(dashboard_study.url), dashboard_study.name)
    space = load_space(tiny_space_path)
    assert data.target_ms == pytest.approx(20.0) and data.knobs == list(space.knobs)
    assert dd.study_space(data).resolution == 64
    for number, arch in data.arch.items():
        assert dd.trial_config(data, number) == space.to_config(arch)
    assert list(data.trials["status"]).count("failed") == 1
    assert data.trials.loc[data.trials["status"] == "failed", "reason"].item() == (
        "RuntimeError: out of memory: simulated"
    )
    with pytest.raises(KeyError, match="no trial 99"):
        dd.trial_config(data, 99)


def test_trial_markdown_carries_latency_spread_environment_and_config(dashboard_study: Any) -> None:
    data = dd.load_study_data(open_storage(dashboard_study.url), dashboard_study.name)
    row = data.measured.iloc[0]
    text = dd.trial_markdown(data, int(row["number"]))
    assert f"{row['latency_ms']:.2f} ms median, IQR {row['latency_iqr_ms']:.2f} ms" in text
    assert f"{int(row['latency_runs'])} timed runs" in text and "target 20 ms" in text
    config = yaml.safe_load(text.split("```yaml\n")[1].split("```")[0])
    assert config == dd.trial_config(data, int(row["number"]))
    stem = dd.trial_file_stem(data, int(row["number"]))
    assert stem.startswith(f"tiny_trial{int(row['number'])}_") and stem.endswith("gmacs")


def test_study_stamp_changes_when_a_trial_finishes(tmp_path: Path) -> None:
    for url in (f"sqlite:///{tmp_path / 'a.db'}", f"journal:///{tmp_path / 'a.log'}"):
        storage = open_storage(url)
        study = optuna.create_study(storage=storage, study_name="s")
        before = dd.study_stamp(storage, "s")
        study.add_trial(optuna.trial.create_trial(value=1.0))
        after = dd.study_stamp(storage, "s")
        assert before != after and ("COMPLETE", 1) in after
        assert dd.study_stamp(storage, "s") == after  # nothing new: same stamp
        with pytest.raises(StorageError, match="no study 'other'"):
            dd.study_stamp(storage, "other")


def test_study_rows_list_space_target_and_trials_per_state(dashboard_study: Any) -> None:
    rows = dd.study_rows(open_storage(dashboard_study.url))
    row = rows.set_index("study").loc[dashboard_study.name]
    assert (row["trials"], row["complete"], row["fail"], row["pruned"]) == (4, 3, 1, 0)
    assert row["target_ms"] == pytest.approx(20.0) and row["resolution"] == 64


def test_dashboard_storage_refuses_to_create_a_missing_sqlite_file(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no SQLite file"):
        dd.open_dashboard_storage(f"sqlite:///{tmp_path / 'none.db'}")
    assert not (tmp_path / "none.db").exists()
    with pytest.raises(StorageError, match="is not a storage URL"):
        dd.open_dashboard_storage("studies/archlab.db")


def test_config_diff_lists_only_the_knobs_that_differ() -> None:
    data = dd.StudyData(
        "s",
        {},
        ["a", "b"],
        ["maximize", "minimize"],
        pd.DataFrame(columns=["knob:x", "knob:y", "knob:z"]),
        arch={
            0: {"x": 1, "y": "a", "z": 0.5},
            1: {"x": 1, "y": "b", "z": 0.5},
            2: {"x": 2, "y": "a", "z": 0.5},
        },
    )
    diff = config_diff(data, [0, 1, 2])
    assert list(diff["knob"]) == ["x", "y"] and list(diff.columns)[1:] == [
        "trial 0",
        "trial 1",
        "trial 2",
    ]
    assert config_diff(data, [0, 0]).empty
    with pytest.raises(KeyError, match=r"no trial\(s\) \[7\]"):
        config_diff(data, [0, 7])


def test_compare_marks_the_better_value_of_each_metric() -> None:
    frame = _frame([(0, "feasible", 10.0, 40.0), (1, "infeasible", 30.0, 42.0)])
    frame["latency_iqr_ms"], frame["latency_ci_rel"] = [0.3, 0.3], [0.01, 0.02]
    frame["peak_memory_bytes"], frame["duration_s"] = [2e6, 1e6], [3.0, 1.0]
    frame["macs"] = [2.5e9, 3e9]
    data = dd.StudyData("s", {}, ["naswot", "latency_ms"], ["maximize", "minimize"], frame)
    table, marks = metrics_table(data, [0, 1]), better_marks(data, [0, 1])
    rows = dict(zip(table["metric"], zip(table["trial 0"], table["trial 1"])))
    assert rows["latency (ms, median)"] == ("10.00 ms", "30.00 ms")
    assert rows["MACs"] == ("2.50G", "3.00G") and rows["peak memory (bytes)"] == (
        "2.00MB",
        "1.00MB",
    )
    better = {
        label: [c for c in ("trial 0", "trial 1") if marks.loc[i, c]]
        for i, label in enumerate(table["metric"])
    }
    assert better["latency (ms, median)"] == ["trial 0"]
    assert better["accuracy estimate: NASWOT score"] == ["trial 1"]  # higher is better
    assert better["peak memory (bytes)"] == ["trial 1"]
    assert better["latency IQR (ms)"] == []  # a tie marks nothing
    assert better["status"] == [] and better["trial time (s)"] == []


def _health_data(
    rows: list[tuple[int, str, float | None, float | None]], reference: dict[str, Any] | None = None
) -> dd.StudyData:
    frame = _frame(rows)
    frame["objective:naswot"], frame["objective:latency_ms"] = frame["naswot"], frame["latency_ms"]
    return dd.StudyData(
        "s", {}, ["naswot", "latency_ms"], ["maximize", "minimize"], frame, spec_reference=reference
    )


def test_hypervolume_history_uses_the_stored_reference_point() -> None:
    data = _health_data(
        [
            (0, "infeasible", 5.0, 45.0),
            (1, "feasible", 10.0, 42.0),
            (2, "failed", None, None),
            (3, "feasible", 20.0, 44.0),
        ],
        reference={"point": [40.0, 30.0], "rule": "fixed by the search"},
    )
    hv = study_health.hypervolume_history(data)
    assert hv is not None and hv.stored and hv.rule == "fixed by the search"
    assert hv.reference == {"naswot": 40.0, "latency_ms": 30.0}
    # trial 1 spans (42-40)·(30-10) = 40; trial 3 adds (44-42)·(30-20) = 20
    assert hv.history["hypervolume"].tolist() == [0.0, 40.0, 40.0, 60.0]


def test_hypervolume_history_without_stored_point_is_provisional_and_stated() -> None:
    data = _health_data([(0, "feasible", 10.0, 42.0), (1, "feasible", 20.0, 44.0)])
    hv = study_health.hypervolume_history(data)
    assert hv is not None and not hv.stored and hv.rule.startswith("provisional")
    assert hv.reference == pytest.approx({"naswot": 41.8, "latency_ms": 21.0})  # 10% beyond
    assert study_health.hypervolume_history(_health_data([(0, "infeasible", 5.0, 1.0)])) is None


def test_knob_importance_needs_enough_trials_and_ranks_the_knob_that_matters(
    tmp_path: Path,
) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'imp.db'}")
    study = optuna.create_study(
        storage=storage, study_name="imp", directions=["maximize", "minimize"]
    )
    dists = {
        "depth": optuna.distributions.IntDistribution(1, 8),
        "ffn": optuna.distributions.CategoricalDistribution(["a", "b"]),
    }
    for i in range(4):
        params = {"depth": 1 + i % 8, "ffn": "ab"[i % 2]}
        study.add_trial(
            optuna.trial.create_trial(
                params=params, distributions=dists, values=[float(params["depth"]), 1.0]
            )
        )
    found, why = study_health.knob_importance(storage, "imp")
    assert found is None and "at least 5 complete trials; this study has 4" in str(why)
    for i in range(4, 20):
        params = {"depth": 1 + i % 8, "ffn": "ab"[i % 3 % 2]}
        study.add_trial(
            optuna.trial.create_trial(
                params=params, distributions=dists, values=[float(params["depth"]), 1.0]
            )
        )
    for evaluator in study_health.EVALUATORS:
        found, why = study_health.knob_importance(storage, "imp", evaluator=evaluator)
        assert why is None and found is not None
        assert found.index[0] == "depth" and found.sum() == pytest.approx(1.0)
    with pytest.raises(KeyError, match="unknown importance evaluator 'magic'"):
        study_health.knob_importance(storage, "imp", evaluator="magic")


def test_references_are_measured_once_at_the_studys_resolution(
    dashboard_study: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHLAB_HOME", str(dashboard_study.home))
    spec = load_study_spec(dashboard_study)
    out = study_dir(dashboard_study.name)
    refs = references.cached_references(spec, out)
    measured = refs.measured[dashboard_study.reference]
    assert measured["adapted"] and measured["reconstructed"] and measured["latency_ms"] > 0
    assert 0 < measured["activations_peak_bytes"] < measured["peak_memory_bytes"]
    assert sorted(refs.missing) == ["lw_plgvit_a", "plgvit_base", "plgvit_small", "plgvit_tiny"]
    family, _, preset = find_preset(dashboard_study.reference)
    stored = json.loads((out / references.CACHE_NAME).read_text())
    assert stored["presets"][dashboard_study.reference]["config"] == cfg_to_dict(
        reduce_cfg(family.name, preset.cfg, 64, preset.resolution), family.name
    )

    def never(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("a cached preset was measured again")

    monkeypatch.setattr(references, "evaluate_arch", never)
    again = references.measure_references(spec, out, names=[dashboard_study.reference])
    assert again.measured == refs.measured
    with pytest.raises(KeyError, match="no preset"):
        references.measure_references(spec, out, names=["resnet50"])


def test_reference_cache_is_ignored_when_the_settings_change(
    dashboard_study: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHLAB_HOME", str(dashboard_study.home))
    spec = {**load_study_spec(dashboard_study), "threads": 2}
    refs = references.cached_references(spec, study_dir(dashboard_study.name))
    assert not refs.measured and len(refs.missing) == 5


def test_reference_cache_without_a_metric_kept_now_is_measured_again(
    dashboard_study: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ARCHLAB_HOME", str(dashboard_study.home))
    spec = load_study_spec(dashboard_study)
    out = tmp_path  # a copy of the fixture's cache: the dashboard tests share the original
    shutil.copy(study_dir(dashboard_study.name) / references.CACHE_NAME, out)
    assert references.cached_references(spec, out).measured  # the fixture's cache is current
    path = out / references.CACHE_NAME
    stored = json.loads(path.read_text())
    stored["key"]["kept"].remove("peak_memory_bytes")  # as written before that metric was kept
    path.write_text(json.dumps(stored))
    assert not references.cached_references(spec, out).measured


def load_study_spec(study: Any) -> dict[str, Any]:
    return dict(
        optuna.load_study(study_name=study.name, storage=study.url).user_attrs["archlab_spec"]
    )


def test_pareto_figure_marks_each_status_front_target_and_presets() -> None:
    frame = _frame(
        [
            (0, "feasible", 10.0, 40.0),
            (1, "feasible", 14.0, 41.0),
            (2, "infeasible", 30.0, 42.0),
            (3, "pruned", None, None),
            (4, "failed", None, None),
        ]
    )
    refs = pd.DataFrame(
        [
            {
                "preset": "p",
                "reconstructed": False,
                "adapted": True,
                "latency_ms": 12.0,
                "naswot": 39.0,
                "params": 1e6,
                "macs": 1e8,
            }
        ]
    )
    front = front_2d(frame, "latency_ms", "naswot")
    fig, note = figures.pareto_figure(
        frame, "latency_ms", "naswot", front=front, target_ms=20.0, references=refs, selected=1
    )
    names = [t.name for t in fig.data]
    assert names == [
        "Pareto front (2)",
        "within target (2)",
        "over latency target (1)",
        "presets (1)",
    ]
    assert fig.data[0].line.shape == "hv" and fig.data[3].text is None  # names on hover only
    assert "<b>published variant p†</b>" in fig.data[3].customdata[0][1]
    assert note == "" and fig.layout.shapes[0].x0 == 20.0
    lo, hi = fig.layout.xaxis.range
    assert lo < 10.0 and hi > 30.0  # the target line is inside the axis, not on its edge
    assert fig.layout.annotations[-1].text == "trial 1"
    _, far = figures.pareto_figure(frame, "latency_ms", "naswot", target_ms=5000.0)
    assert "far right of every trial" in far


def _preset(name: str, latency_ms: float, naswot: float) -> dict[str, Any]:
    return {
        "preset": name,
        "reconstructed": False,
        "adapted": False,
        "latency_ms": latency_ms,
        "naswot": naswot,
        "params": 1e6,
        "macs": 2.5e9,
    }


def test_axes_fit_the_trials_and_far_presets_become_edge_arrows_with_values() -> None:
    frame = _frame([(0, "feasible", 10.0, 40.0), (1, "feasible", 30.0, 42.0)])
    refs = pd.DataFrame([_preset("near", 20.0, 41.0), _preset("base", 355.0, 41.5)])
    fig, _ = figures.pareto_figure(frame, "latency_ms", "naswot", references=refs)
    lo, hi = fig.layout.xaxis.range
    assert lo < 10.0 and 30.0 < hi < 40.0  # fitted to the trials, not stretched to 355 ms
    stars, arrows = fig.data[-2], fig.data[-1]
    assert stars.name == "presets (1)" and list(stars.x) == [20.0]
    assert arrows.name == "presets beyond the axes (1)"
    assert list(arrows.marker.symbol) == ["triangle-right"]
    assert [a.text for a in fig.layout.annotations] == ["355.00 ms →"]  # its value, on a label
    assert lo < arrows.x[0] < hi and arrows.y[0] == 41.5  # on the right edge, at its own height
    fitted_all, _ = figures.pareto_figure(
        frame, "latency_ms", "naswot", references=refs, fit_trials=False
    )
    assert fitted_all.layout.xaxis.range[1] > 355.0
    assert all("beyond the axes" not in t.name for t in fitted_all.data)


def test_an_estimates_agreement_with_training_goes_under_the_chart_not_on_its_axis() -> None:
    frame = _frame([(0, "feasible", 10.0, 40.0)])
    fig, note = figures.pareto_figure(frame, "latency_ms", "naswot", space="plgvit")
    assert fig.layout.yaxis.title.text == "accuracy estimate: NASWOT score"
    assert note.startswith("accuracy estimate: NASWOT score (")


def test_log_x_fits_in_log_units() -> None:
    frame = _frame([(0, "feasible", 10.0, 40.0), (1, "feasible", 100.0, 42.0)])
    fig, _ = figures.pareto_figure(frame, "latency_ms", "naswot", log_x=True)
    lo, hi = fig.layout.xaxis.range
    assert fig.layout.xaxis.type == "log" and lo < 1.0 and 2.0 < hi < 2.2


def test_hover_names_the_axes_with_units_and_counts_use_one_convention() -> None:
    frame = _frame([(0, "feasible", 10.0, 40.0)])
    frame["macs"] = [2.5e9]
    fig, _ = figures.pareto_figure(frame, "macs", "latency_ms")
    hover = fig.data[0].customdata[0][2]
    assert "MACs: 2.50G" in hover and "latency (ms, median): 10.00 ms" in hover
    assert "latency_ms" not in hover
    assert fig.layout.xaxis.exponentformat == "SI"  # ticks read 2.5G, as the CLI writes
    assert fig.layout.hoverlabel.bgcolor == "white"


def test_a_knob_with_few_numeric_values_is_coloured_as_categories() -> None:
    frame = _frame([(n, "feasible", 10.0 + n, 40.0 + n) for n in range(12)])
    frame["knob:depth"] = [2, 10] * 6
    frame["knob:dim"] = [float(16 + 4 * n) for n in range(12)]
    fig, _ = figures.pareto_figure(frame, "latency_ms", "naswot", colour="depth")
    assert fig.layout.coloraxis.colorbar.ticktext == ("2", "10")  # in numeric order
    fig, _ = figures.pareto_figure(frame, "latency_ms", "naswot", colour="dim")
    assert fig.layout.coloraxis.colorbar.ticktext is None  # 12 values: a continuous scale
    assert fig.layout.coloraxis.colorscale[-1][1] != fig.layout.coloraxis.colorscale[-2][1]


@pytest.mark.parametrize(
    ("spec", "metric_names", "directions", "columns", "expected"),
    [
        (
            {"objectives": ["synflow", "latency"]},
            ["synflow", "latency_ms"],
            ["maximize", "minimize"],
            None,
            "synflow",
        ),
        # no accuracy objective (e.g. macs vs latency): the estimate the trials carry
        (
            {"objectives": ["macs", "latency"]},
            ["macs", "latency_ms"],
            ["minimize", "minimize"],
            None,
            "naswot",
        ),
        ({}, ["a", "b"], ["minimize", "minimize"], ["number", "macs"], None),
    ],
    ids=["accuracy-objective", "no-accuracy-objective", "no-estimate"],
)
def test_accuracy_metric_follows_the_studys_objectives(
    spec: dict[str, Any],
    metric_names: list[str],
    directions: list[str],
    columns: list[str] | None,
    expected: str | None,
) -> None:
    frame = _frame([(0, "feasible", 10.0, 80.0), (1, "feasible", 20.0, 85.0)])
    frame["synflow"] = [3.0, 1.0]
    trials = frame if columns is None else frame[columns]
    study = dd.StudyData("s", spec, metric_names, directions, trials)
    assert study.accuracy_metric == expected


def test_parallel_coordinates_show_the_given_knobs_and_name_the_objectives() -> None:
    from archlab.dashboard.health_figures import parallel_figure

    frame = pd.DataFrame(
        {
            "knob:a": [1, 2, 3],
            "knob:b": ["x", "y", "x"],
            "knob:c": [4, 5, 6],
            "objective:naswot": [40.0, 41.0, 42.0],
            "objective:latency_ms": [10.0, 12.0, 14.0],
        }
    )
    fig = parallel_figure(frame, ["b", "a"], ["naswot", "latency_ms"])
    labels = [d.label for d in fig.data[0].dimensions]
    assert labels == ["b", "a", "accuracy estimate: NASWOT score", "latency (ms, median)"]


def test_the_chart_says_which_trials_it_leaves_out_and_why() -> None:
    trials = pd.DataFrame(
        {
            "status": ["feasible", "feasible", "failed", "infeasible"],
            "latency_ms": [10.0, 12.0, np.nan, 30.0],
            "trained_accuracy": [0.88, np.nan, np.nan, np.nan],
            "macs": [1.0, 2.0, np.nan, 3.0],
        }
    )
    note = dd.unplotted_note(trials, "latency_ms", "trained_accuracy")
    assert note == (
        "not plotted: 1 failed (no measurements), 1 feasible (not trained), "
        "1 infeasible (not trained)"
    )
    only_failed = "not plotted: 1 failed (no measurements)"
    assert dd.unplotted_note(trials, "latency_ms", "macs") == only_failed
    assert dd.unplotted_note(trials.iloc[:1], "latency_ms", "macs") is None


def test_estimate_vs_training_needs_three_trained_trials_and_ranks_them() -> None:
    import numpy as np

    from archlab.dashboard.trained import estimate_vs_training

    trials = pd.DataFrame(
        {
            "number": [0, 1, 2, 3],
            "naswot": [1.0, 3.0, 2.0, 4.0],
            "trained_accuracy": [0.80, 0.82, 0.81, np.nan],  # trial 3 not trained
            "trained_accuracy_std": [0.001, 0.002, 0.001, np.nan],
        }
    )
    check = estimate_vs_training(trials, "naswot")
    assert check is not None and check.trials == 3 and check.spearman == pytest.approx(1.0)
    reversed_ = trials.assign(trained_accuracy=[0.82, 0.80, 0.81, np.nan])
    assert estimate_vs_training(reversed_, "naswot").spearman == pytest.approx(-1.0)
    assert estimate_vs_training(trials.iloc[[0, 1, 3]], "naswot") is None  # two trained
    assert estimate_vs_training(trials, "zico") is None  # not an objective of this study

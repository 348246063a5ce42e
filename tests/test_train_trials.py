"""``archlab train``: trained accuracies stored with the study, failures kept, resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from idx_files import write_idx_set
from typer.testing import CliRunner

import archlab.estimate.ground_truth as ground_truth
import archlab.search.train_trials as train_mod
from archlab.cli import app
from archlab.search.loop import run_search
from archlab.study.settings import SearchSpec
from archlab.study.storage import load_study
from archlab.study.trials import TRAINED_ATTR, store_trained, trained_outcomes

runner = CliRunner()


def _search(space: Path, url: str, name: str, trials: int) -> None:
    """A quick search of the tiny space (MACs and params: nothing to train)."""
    run_search(
        SearchSpec(
            space=str(space),
            storage=url,
            study_name=name,
            n_trials=trials,
            objectives=("macs", "params"),
            latency_max_time_s=0.2,
            target_latency_s=10.0,
        )
    )


@pytest.fixture()
def study_url(tmp_path: Path, tiny_space_path: Path, archlab_home: Path) -> str:
    url = f"sqlite:///{tmp_path / 'train.db'}"
    _search(tiny_space_path, url, "t", 3)
    return url


def _train(url: str, *extra: str) -> Any:
    args = ["train", "--study", "t", "--storage", url, "--data", "digits", "--steps", "3"]
    return runner.invoke(app, [*args, *extra])


def _count_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """The (name, seed) of every training run from now on; the runs still train."""
    real = ground_truth.train_run
    calls: list[tuple[str, int]] = []

    def counting(space: Any, run: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append((run.name, run.seed))
        return real(space, run, *args, **kwargs)

    monkeypatch.setattr(train_mod, "train_run", counting)
    return calls


def test_train_stores_each_trials_accuracy(study_url: str) -> None:
    result = _train(study_url, "--trials", "0,2", "--seeds", "2")
    assert result.exit_code == 0, result.output
    trained = trained_outcomes(load_study("t", study_url).user_attrs)
    assert sorted(trained) == ["0", "2"]
    for outcome in trained.values():
        assert 0.0 <= outcome["accuracy"] <= 1.0
        assert outcome["seeds"] == [0, 1] and len(outcome["accuracies"]) == 2
        assert outcome["budget"] == "3x64@32px" and outcome["data"] == "digits"
    assert "Trained accuracy" in result.output


def test_a_failing_trial_keeps_its_reason_and_the_rest_go_on(
    study_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ground_truth.train_run

    def second_fails(space: Any, run: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if run.name == "trial1":
            raise RuntimeError("out of memory (simulated)")
        return real(space, run, *args, **kwargs)

    monkeypatch.setattr(train_mod, "train_run", second_fails)
    result = _train(study_url, "--trials", "0,1,2", "--seeds", "1")
    assert result.exit_code == 0, result.output
    trained = trained_outcomes(load_study("t", study_url).user_attrs)
    assert "out of memory (simulated)" in trained["1"]["error"]
    assert "accuracy" in trained["0"] and "accuracy" in trained["2"]
    monkeypatch.setattr(train_mod, "train_run", real)
    calls = _count_runs(monkeypatch)
    assert _train(study_url, "--trials", "0,1,2", "--seeds", "1").exit_code == 0
    assert calls == [("trial1", 0)]  # resumed: only the failed one is trained again
    assert "accuracy" in trained_outcomes(load_study("t", study_url).user_attrs)["1"]


def test_default_is_the_feasible_front_and_bad_trials_are_refused(study_url: str) -> None:
    study = load_study("t", study_url)
    front = sorted(t.number for t in study.best_trials)
    assert train_mod.chosen_trials(study, None) == front
    result = _train(study_url, "--trials", "42")
    assert result.exit_code == 2 and "no complete trial(s) [42]" in result.output


def test_a_study_not_made_by_archlab_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    optuna.create_study(storage=url, study_name="t")
    result = _train(url)
    assert result.exit_code == 2 and "not created by archlab" in result.output


def test_the_dashboard_shows_trained_accuracy(study_url: str) -> None:
    import pandas as pd

    from archlab.dashboard import data as dd
    from archlab.dashboard.figures import pareto_figure
    from archlab.study.storage import open_storage

    assert _train(study_url, "--trials", "1", "--seeds", "1").exit_code == 0
    study = load_study("t", study_url)
    study.set_user_attr("trained_references", {"lw_plgvit_r": {"accuracy": 0.5}})
    data = dd.load_study_data(open_storage(study_url), "t")
    trained = data.trials.set_index("number")[dd.TRAINED]
    assert trained.notna().tolist() == [False, True, False]
    refs = pd.DataFrame({"preset": ["lw_plgvit_r", "other"], "latency_ms": [3.0, 4.0]})
    refs = dd.with_trained_references(refs, data)
    assert refs[dd.TRAINED].tolist()[0] == 0.5 and pd.isna(refs[dd.TRAINED].tolist()[1])
    fig, _ = pareto_figure(data.trials, "latency_ms", dd.TRAINED)
    assert fig.layout.yaxis.title.text.startswith("trained accuracy")


def test_presets_take_the_ground_truths_accuracy_where_trained_with_the_same_recipe(
    study_url: str,
) -> None:
    import pandas as pd

    from archlab.dashboard import data as dd
    from archlab.dashboard.figures import pareto_figure
    from archlab.estimate.evidence import Evidence
    from archlab.study.storage import open_storage

    assert _train(study_url, "--trials", "0,1", "--seeds", "1").exit_code == 0
    load_study("t", study_url).set_user_attr("trained_references:lw_plgvit_a", {"accuracy": 0.4})
    data = dd.load_study_data(open_storage(study_url), "t")
    assert data.trained_recipes == {("3x64@32px", "digits")}

    def reference(accuracy: float, budget: str = "3x64@32px") -> dict[str, Any]:
        return {"accuracy": accuracy, "seeds": [0, 1], "budget": budget, "data": "digits"}

    shipped = {
        "lw_plgvit_r": reference(0.6),
        "lw_plgvit_a": reference(0.7),  # the study's own reference training wins
        "plgvit_tiny": reference(0.8, budget="1000x64@32px"),  # another recipe: not comparable
    }
    evidence = Evidence("2026-12-07", {}, None, None, "", references=shipped)
    refs = pd.DataFrame(
        {
            "preset": ["lw_plgvit_r", "lw_plgvit_a", "plgvit_tiny"],
            "latency_ms": [3.0, 4.0, 5.0],
            "reconstructed": [True, True, False],
            "adapted": False,
        }
    )
    out = dd.with_trained_references(refs, data, evidence)
    assert out[dd.TRAINED].tolist()[:2] == [0.6, 0.4] and pd.isna(out[dd.TRAINED].tolist()[2])
    sources = out[dd.TRAINED_SOURCE].tolist()
    assert sources[0] == "archlab's ground truth, same recipe, seeds 0, 1"
    assert sources[1].startswith("trained for this study") and pd.isna(sources[2])
    fig, _ = pareto_figure(data.trials, "latency_ms", dd.TRAINED, references=out)
    hover = " ".join(
        str(c[1]) for t in fig.data if t.name.startswith("presets") for c in t.customdata
    )
    assert "trained accuracy: archlab's ground truth, same recipe, seeds 0, 1" in hover

    _train(study_url, "--trials", "2", "--seeds", "1", "--steps", "4")  # a second recipe
    data = dd.load_study_data(open_storage(study_url), "t")
    out = dd.with_trained_references(refs, data, evidence)
    trained = out[dd.TRAINED].tolist()
    assert pd.isna(trained[0]) and trained[1] == 0.4  # trials of two recipes: no shipped figure


def test_pareto_shows_the_trained_accuracy_and_the_references(study_url: str) -> None:
    import json

    before = runner.invoke(app, ["pareto", "--study", "t", "--storage", study_url])
    assert before.exit_code == 0 and "trained acc" not in before.output
    front = sorted(t.number for t in load_study("t", study_url).best_trials)
    assert _train(study_url, "--trials", str(front[0]), "--seeds", "2").exit_code == 0
    outcome = trained_outcomes(load_study("t", study_url).user_attrs)[str(front[0])]
    load_study("t", study_url).set_user_attr("trained_references:lw_plgvit_r", {"accuracy": 0.5})
    args = ["pareto", "--study", "t", "--storage", study_url]
    shown = runner.invoke(app, args, env={"COLUMNS": "120"})
    assert shown.exit_code == 0, shown.output
    assert "trained acc" in shown.output
    assert f"{outcome['accuracy']:.4f} ± {outcome['accuracy_std']:.4f}" in shown.output
    assert "Reference models trained the same way (trained for this study" in shown.output
    assert "lw_plgvit_r 0.5000" in shown.output
    out = json.loads(runner.invoke(app, [*args, "--format", "json"]).output)
    by_trial = {r["number"]: r for r in out["pareto"]}
    assert by_trial[front[0]]["trained_accuracy"] == outcome["accuracy"]
    assert all(r["trained_accuracy"] is None for n, r in by_trial.items() if n != front[0])
    assert out["trained_references"]["lw_plgvit_r"]["accuracy"] == 0.5


def test_processes_training_one_study_at_once_keep_each_others_results(
    study_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process stores its outcome just before this one's write reaches the storage: the
    write must not drop it (as writing back a shared dict read a moment earlier would)."""
    first, second = load_study("t", study_url), load_study("t", study_url)
    write = first.set_user_attr

    def other_process_first(key: str, value: Any) -> None:
        store_trained(second, TRAINED_ATTR, "2", {"accuracy": 0.9})
        write(key, value)

    monkeypatch.setattr(first, "set_user_attr", other_process_first)
    store_trained(first, TRAINED_ATTR, "0", {"accuracy": 0.8})
    assert trained_outcomes(load_study("t", study_url).user_attrs) == {
        "0": {"accuracy": 0.8},
        "2": {"accuracy": 0.9},
    }


def test_outcomes_stored_by_older_versions_are_still_read(study_url: str) -> None:
    study = load_study("t", study_url)
    study.set_user_attr(TRAINED_ATTR, {"0": {"accuracy": 0.7}, "1": {"accuracy": 0.75}})
    store_trained(study, TRAINED_ATTR, "1", {"accuracy": 0.76})  # retrained: the newer wins
    assert trained_outcomes(study.user_attrs) == {"0": {"accuracy": 0.7}, "1": {"accuracy": 0.76}}
    assert trained_outcomes(study.user_attrs, "trained_references") == {}


def test_the_test_split_is_scored_only_when_asked_and_only_where_it_exists(
    study_url: str, tmp_path: Path
) -> None:
    import json

    first = str(min(t.number for t in load_study("t", study_url).best_trials))
    refused = _train(study_url, "--trials", first, "--test")  # digits: no test split
    assert refused.exit_code == 2 and "has no test split" in refused.output
    idx = tmp_path / "idx"
    write_idx_set(idx, n_train=120, n_test=40)
    assert _train(study_url, "--trials", first, "--data", str(idx)).exit_code == 0
    plain = trained_outcomes(load_study("t", study_url).user_attrs)[first]
    assert "test_accuracy" not in plain
    result = _train(study_url, "--trials", first, "--data", str(idx), "--test")
    assert result.exit_code == 0, result.output
    assert "test acc" in result.output
    tested = trained_outcomes(load_study("t", study_url).user_attrs)[first]
    assert tested["accuracies"] == plain["accuracies"]  # trained again, the same, then tested
    assert len(tested["test_accuracies"]) == 2
    assert all(0.0 <= a <= 1.0 for a in tested["test_accuracies"])
    args = ["pareto", "--study", "t", "--storage", study_url, "--format", "json"]
    rows = {r["number"]: r for r in json.loads(runner.invoke(app, args).output)["pareto"]}
    assert rows[int(first)]["test_accuracy"] == tested["test_accuracy"]


def test_more_seeds_train_only_the_new_ones_and_other_data_trains_again(
    study_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_runs(monkeypatch)
    assert _train(study_url, "--trials", "0", "--seeds", "1").exit_code == 0
    one = trained_outcomes(load_study("t", study_url).user_attrs)["0"]
    assert _train(study_url, "--trials", "0", "--seeds", "2").exit_code == 0
    two = trained_outcomes(load_study("t", study_url).user_attrs)["0"]
    assert calls == [("trial0", 0), ("trial0", 1)]  # seed 0 kept, not trained twice
    assert two["seeds"] == [0, 1] and two["accuracies"][0] == one["accuracies"][0]
    assert two["accuracy"] == pytest.approx(sum(two["accuracies"]) / 2)
    assert two["seconds"] >= one["seconds"]
    calls.clear()
    assert _train(study_url, "--trials", "0", "--seeds", "2").exit_code == 0
    assert calls == []  # nothing missing
    args = ["train", "--study", "t", "--storage", study_url, "--trials", "0", "--seeds", "1"]
    assert runner.invoke(app, [*args, "--data", "digits", "--steps", "4"]).exit_code == 0
    assert calls == [("trial0", 0)]  # another recipe: trained again
    assert trained_outcomes(load_study("t", study_url).user_attrs)["0"]["budget"] == "4x64@32px"


def test_a_failing_new_seed_keeps_the_seeds_trained_before(
    study_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _train(study_url, "--trials", "0", "--seeds", "1").exit_code == 0
    before = trained_outcomes(load_study("t", study_url).user_attrs)["0"]
    real = ground_truth.train_run

    def seed_one_fails(space: Any, run: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if run.seed == 1:
            raise RuntimeError("out of memory (simulated)")
        return real(space, run, *args, **kwargs)

    monkeypatch.setattr(train_mod, "train_run", seed_one_fails)
    result = _train(study_url, "--trials", "0", "--seeds", "2")
    assert result.exit_code == 0, result.output
    after = trained_outcomes(load_study("t", study_url).user_attrs)["0"]
    assert after["accuracies"] == before["accuracies"] and after["failed_seeds"] == [1]
    assert "out of memory (simulated)" in after["seed_error"]
    assert "failed" in result.output


def test_a_seed_another_study_trained_is_taken_not_trained_again(
    study_url: str, tiny_space_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _search(tiny_space_path, study_url, "u", 1)
    t, u = load_study("t", study_url), load_study("u", study_url)
    assert t.trials[0].params == u.trials[0].params  # every study starts at the default arch
    assert _train(study_url, "--trials", "0", "--seeds", "1").exit_code == 0
    calls = _count_runs(monkeypatch)
    args = ["train", "--study", "u", "--storage", study_url, "--trials", "0", "--data", "digits"]
    result = runner.invoke(app, [*args, "--steps", "3", "--seeds", "2"])
    assert result.exit_code == 0, result.output
    assert calls == [("trial0", 1)]  # seed 0 taken from study t
    assert "taken from another study" in result.output and "t, trial 0" in result.output
    mine = trained_outcomes(load_study("u", study_url).user_attrs)["0"]
    theirs = trained_outcomes(load_study("t", study_url).user_attrs)["0"]
    assert mine["accuracies"][0] == theirs["accuracies"][0]
    assert mine["reused"] == {"0": "t, trial 0"} and mine["seeds"] == [0, 1]
    calls.clear()
    other = runner.invoke(app, [*args, "--steps", "4", "--seeds", "1"])  # another recipe
    assert other.exit_code == 0 and calls == [("trial0", 0)]
    calls.clear()
    assert runner.invoke(app, [*args, "--steps", "3", "--seeds", "1", "--no-reuse"]).exit_code == 0
    assert calls == [("trial0", 0)]
    assert "reused" not in trained_outcomes(load_study("u", study_url).user_attrs)["0"]

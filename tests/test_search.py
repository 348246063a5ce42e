from __future__ import annotations

import dataclasses
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest

import archlab.search.evaluate as evaluate_mod
import archlab.search.loop as search_mod
import archlab.search.remeasure as remeasure_mod
from archlab.search.loop import run_search
from archlab.space import load_space
from archlab.study.objectives import DEFAULT_OBJECTIVES
from archlab.study.settings import SearchError, SearchSpec
from archlab.study.storage import StorageError, load_study, open_storage
from archlab.study.trials import pareto_frame, prediction_check, trials_frame

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _spec(tiny_space_path: Path, storage_url: str, **kw: object) -> SearchSpec:
    defaults = dict(
        space=str(tiny_space_path),
        storage=storage_url,
        study_name="t",
        n_trials=3,
        target_latency_s=1.0,
        seed=1,
        proxy_batch=4,
        latency_max_time_s=0.3,
    )
    defaults.update(kw)
    return SearchSpec(**defaults)  # type: ignore[arg-type]


def test_tiny_search_stores_metrics_constraint_and_spec(
    tiny_space_path: Path, storage_url: str
) -> None:
    result = run_search(_spec(tiny_space_path, storage_url))
    study = load_study("t", storage_url)  # read back from the file, not from memory
    assert len(study.trials) == 3 and result.new_trials == 3
    space = load_space(tiny_space_path)
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert set(trial.params) == set(space.knobs)  # the arch is trial.params
        attrs = trial.user_attrs
        assert attrs["params"] > 0 and attrs["macs"] > 0 and attrs["latency_ms"] > 0
        assert attrs["latency_iqr_ms"] >= 0 and attrs["latency_runs"] >= 10
        assert attrs["unsupported_ops"] == {}
        assert trial.values == [attrs[DEFAULT_OBJECTIVES[0]], attrs["latency_ms"]]
        assert trial.system_attrs["constraints:latency"] == pytest.approx(
            attrs["latency_ms"] / 1e3 - 1.0
        )
        space.to_cfg(trial.params)  # any stored trial rebuilds
    spec = study.user_attrs["archlab_spec"]
    assert spec["space"] == "tiny_plgvit" and spec["target_latency_s"] == 1.0
    assert spec["objectives"] == list(DEFAULT_OBJECTIVES) and "family: plgvit" in spec["space_yaml"]
    assert study.metric_names == [DEFAULT_OBJECTIVES[0], "latency_ms"]


def test_a_new_study_optimises_its_spaces_pick_and_a_resumed_one_keeps_its_own(
    tiny_space_path: Path, storage_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import archlab.estimate.evidence as evidence_mod

    def evidence_picking(estimate: str) -> evidence_mod.Evidence:
        return evidence_mod.Evidence("d", {}, None, "naswot", "r", {"tiny_plgvit": estimate})

    monkeypatch.setattr(evidence_mod, "load_evidence", lambda *a: evidence_picking("synflow"))
    first = run_search(_spec(tiny_space_path, storage_url, n_trials=1))
    assert first.spec.objectives == ("synflow", "latency")
    monkeypatch.setattr(evidence_mod, "load_evidence", lambda *a: evidence_picking("swap"))
    resumed = run_search(_spec(tiny_space_path, storage_url, n_trials=1))  # no SearchError
    assert resumed.spec.objectives == ("synflow", "latency")
    study = load_study("t", storage_url)
    assert study.metric_names == ["synflow", "latency_ms"] and len(study.trials) == 2
    assert all(t.values[0] == t.user_attrs["synflow"] for t in study.trials)
    other = run_search(_spec(tiny_space_path, storage_url, n_trials=1, study_name="u"))
    assert other.spec.objectives == ("swap", "latency")  # a new study takes today's pick
    given = _spec(tiny_space_path, storage_url, n_trials=1, objectives=("naswot", "latency"))
    with pytest.raises(SearchError, match="objectives"):  # told otherwise: refused, not mixed
        run_search(given)


def test_resume_adds_trials(tiny_space_path: Path, storage_url: str) -> None:
    run_search(_spec(tiny_space_path, storage_url, n_trials=2))
    result = run_search(_spec(tiny_space_path, storage_url, n_trials=2))
    assert len(result.study.trials) == 4 and result.new_trials == 2
    # a resumed study does not replay the first samples
    params = [t.params for t in result.study.trials]
    assert params[2] != params[0] or params[3] != params[1]


def test_resume_with_other_settings_is_refused(tiny_space_path: Path, storage_url: str) -> None:
    run_search(_spec(tiny_space_path, storage_url, n_trials=1))
    with pytest.raises(SearchError, match="target_latency_s: stored 1.0 vs now 0.25"):
        run_search(_spec(tiny_space_path, storage_url, n_trials=1, target_latency_s=0.25))


def test_infeasible_trials_are_kept_but_not_on_the_front(
    tiny_space_path: Path, storage_url: str
) -> None:
    result = run_search(_spec(tiny_space_path, storage_url, target_latency_s=1e-6))
    frame = trials_frame(result.study)
    assert len(frame) == 3 and not frame["feasible"].any()
    assert pareto_frame(result.study).empty


def test_failing_candidate_becomes_failed_trial_and_study_goes_on(
    tiny_space_path: Path, storage_url: str, fail_evaluation: Callable[[int, BaseException], None]
) -> None:
    fail_evaluation(2, RuntimeError("out of memory: simulated"))
    result = run_search(_spec(tiny_space_path, storage_url))
    states = [t.state for t in result.study.trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 1
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2
    failed = next(t for t in result.study.trials if t.state == optuna.trial.TrialState.FAIL)
    assert failed.user_attrs["fail_reason"] == "RuntimeError: out of memory: simulated"


def test_keyboard_interrupt_keeps_finished_trials(
    tiny_space_path: Path, storage_url: str, fail_evaluation: Callable[[int, BaseException], None]
) -> None:
    fail_evaluation(3, KeyboardInterrupt())
    result = run_search(_spec(tiny_space_path, storage_url, n_trials=5))
    assert result.interrupted
    study = load_study("t", storage_url)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "FAIL"]
    assert study.trials[-1].user_attrs["fail_reason"] == "interrupted"
    assert result.stop_signal == signal.SIGINT


def test_trial_failed_by_another_worker_meanwhile_is_skipped(
    tiny_space_path: Path,
    storage_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another worker's stale-trial check fails the first trial while it is measured (its worker
    was silent too long): this worker cannot record it, skips it and runs the next one."""
    real, calls = search_mod.evaluate_arch, []

    def evaluate(*args: object, **kwargs: object) -> dict[str, object]:
        metrics = real(*args, **kwargs)  # type: ignore[arg-type]
        if not calls:
            storage = open_storage(storage_url)
            other = optuna.load_study(study_name="t", storage=storage)
            (trial,) = other.get_trials(states=(optuna.trial.TrialState.RUNNING,))
            storage.set_trial_user_attr(trial._trial_id, "fail_reason", "stale: simulated")
            storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        calls.append(1)
        return metrics

    monkeypatch.setattr(search_mod, "evaluate_arch", evaluate)
    result = run_search(_spec(tiny_space_path, storage_url, n_trials=2, corners=False))
    assert not result.interrupted and result.new_trials == 2
    assert [t.state.name for t in load_study("t", storage_url).trials] == ["FAIL", "COMPLETE"]
    assert "trial 0 was finished by another worker (FAIL: stale: simulated)" in caplog.text


def test_impossible_arch_is_pruned_with_reason(tiny_space_path: Path, storage_url: str) -> None:
    # At 32 px the last stage is 1×1, smaller than the space's 2×2 global windows: every arch is
    # impossible there, and the trial must say so instead of measuring anything.
    space = load_space(tiny_space_path)
    space.resolution = 32
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.optimize(
        search_mod._objective(space, _spec(tiny_space_path, storage_url), 32), n_trials=1
    )
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert "exceeds the stage's 1×1 map" in trial.user_attrs["prune_reason"]
    assert "params" not in trial.user_attrs


def test_unknown_sampler_and_objective_are_rejected(
    tiny_space_path: Path, storage_url: str
) -> None:
    with pytest.raises(SearchError, match="unknown sampler 'cmaes'"):
        run_search(_spec(tiny_space_path, storage_url, sampler="cmaes"))
    with pytest.raises(ValueError, match="unknown objective"):
        run_search(_spec(tiny_space_path, storage_url, objectives=("accuracy", "latency")))


@pytest.mark.parametrize(
    ("sampler", "cls"),
    [
        ("tpe", optuna.samplers.TPESampler),
        ("random", optuna.samplers.RandomSampler),
        ("nsga3", optuna.samplers.NSGAIIISampler),
    ],
)
def test_other_samplers_run(
    sampler: str, cls: type, tiny_space_path: Path, storage_url: str
) -> None:
    result = run_search(_spec(tiny_space_path, storage_url, sampler=sampler, n_trials=2))
    assert len(result.study.trials) == 2
    assert type(result.study.sampler) is cls


def test_bad_storage_urls_are_explained(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="not a storage URL"):
        open_storage("studies/x.db")
    with pytest.raises(StorageError, match="cannot open storage"):
        open_storage("nosuchdb://host/db")
    with pytest.raises(StorageError, match="does not exist"):
        open_storage(f"journal://{tmp_path}/missing/dir/log")


def test_journal_storage_works(tiny_space_path: Path, tmp_path: Path) -> None:
    url = f"journal://{tmp_path}/study.log"
    run_search(_spec(tiny_space_path, url, n_trials=1))
    done = load_study("t", url).get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert len(done) == 1  # the other corner arch stays queued for the next run


def test_missing_study_lists_existing(tiny_space_path: Path, storage_url: str) -> None:
    run_search(_spec(tiny_space_path, storage_url, n_trials=1))
    with pytest.raises(StorageError, match=r"no study 'other'.*\['t'\]"):
        load_study("other", storage_url)


def _tiny_profile(tiny_space_path: Path, path: Path) -> Path:
    from archlab.predict.profile import profile_device

    profile_device(
        str(tiny_space_path), n_models=2, n_calibration=2, runs=2, calibration_slices=1
    ).save(path)
    return path


def test_predicted_search_end_to_end_remeasures_the_front(
    tiny_space_path: Path, storage_url: str, tmp_path: Path
) -> None:
    profile = _tiny_profile(tiny_space_path, tmp_path / "cpu.json")
    result = run_search(
        _spec(
            tiny_space_path,
            storage_url,
            n_trials=3,
            latency_mode="predicted",
            latency_model=str(profile),
            max_memory_bytes=10**9,
            remeasure_slices=1,
        )
    )
    study = load_study("t", storage_url)
    for trial in study.trials:
        attrs = trial.user_attrs
        assert "latency_ms" not in attrs and attrs["latency_ms_predicted"] > 0
        assert trial.values == [attrs[DEFAULT_OBJECTIVES[0]], attrs["latency_ms_predicted"]]
        assert attrs["peak_memory_bytes"] > 0 and attrs["latency_blocks_estimated"] == 0
        assert trial.system_attrs["constraints:memory"] < 0
    remeasured = study.user_attrs["remeasured"]
    front = pareto_frame(result.study)
    on_front = {str(n) for n in front["number"]}
    assert on_front <= set(remeasured)  # the front a user gets was measured, every member
    # a re-measured member that left the front was dominated once measured (the target is 1 s)
    accuracy = {str(t.number): t.user_attrs[DEFAULT_OBJECTIVES[0]] for t in study.trials}
    latency = {n: r["latency_ms"] for n, r in remeasured.items()}
    for n in set(remeasured) - on_front:
        assert any(accuracy[f] >= accuracy[n] and latency[f] <= latency[n] for f in on_front)
    assert (front["latency_ms"] > 0).all() and front["latency_ms_predicted"].notna().all()
    # one slice in all: one process, whatever the cores
    assert {r["latency_processes"] for r in remeasured.values()} == {1}
    # the profile was made here: its anchors were timed alongside, giving the machine's speed
    for r in remeasured.values():
        assert r["speed_vs_profile"] > 0
        assert r["latency_ms_profile_time"] == pytest.approx(
            r["latency_ms"] / r["speed_vs_profile"]
        )
    check = prediction_check(study)
    assert check is not None and check["models"] == len(remeasured)
    assert {"median_abs_error", "profile_time_median_abs_error", "speed_vs_profile"} <= set(check)


def test_anchors_are_only_timed_on_the_profile_s_own_setup(
    tiny_space_path: Path, tmp_path: Path
) -> None:
    profile = _tiny_profile(tiny_space_path, tmp_path / "cpu.json")
    space = load_space(str(tiny_space_path))
    spec = SearchSpec(space=str(tiny_space_path), latency_model=str(profile))
    assert len(remeasure_mod.front_anchors(spec, space)) == 2
    assert remeasure_mod.front_anchors(dataclasses.replace(spec, threads=2), space) == []
    space.resolution = 96
    assert remeasure_mod.front_anchors(spec, space) == []


def test_front_is_remeasured_in_one_process_per_free_core(monkeypatch: pytest.MonkeyPatch) -> None:
    from archlab.search.remeasure import remeasure_processes

    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert remeasure_processes(SearchSpec(remeasure_slices=8)) == 8
    assert remeasure_processes(SearchSpec(remeasure_slices=8, threads=2)) == 4
    assert remeasure_processes(SearchSpec(remeasure_slices=3)) == 3
    assert remeasure_processes(SearchSpec(threads=16)) == 1
    assert remeasure_processes(SearchSpec(remeasure_processes=2)) == 2


def test_unseen_blocks_policy_estimates_or_measures(
    tiny_space_path: Path, storage_url: str, tmp_path: Path
) -> None:
    """A one-model profile lacks most blocks: "estimate" predicts them without timing any."""
    from archlab.predict.profile import DeviceProfile, profile_device

    path = tmp_path / "cpu.json"
    profile_device(
        str(tiny_space_path), n_models=1, n_calibration=1, runs=2, calibration_slices=1
    ).save(path)
    size = len(DeviceProfile.load(path).entries)
    common = dict(latency_mode="predicted", latency_model=str(path), remeasure_slices=1)
    run_search(_spec(tiny_space_path, storage_url, n_trials=4, unseen_blocks="estimate", **common))
    trials = load_study("t", storage_url).trials
    assert sum(t.user_attrs["latency_blocks_estimated"] for t in trials) > 0
    assert all(t.user_attrs["latency_blocks_measured_on_demand"] == 0 for t in trials)
    assert len(DeviceProfile.load(path).entries) == size
    with pytest.raises(SearchError, match="--unseen-blocks: 'guess' is not one of"):
        run_search(_spec(tiny_space_path, storage_url, unseen_blocks="guess", **common))


def test_a_new_study_starts_from_the_space_corners(tiny_space_path: Path, storage_url: str) -> None:
    corners = load_space(tiny_space_path).corners()
    result = run_search(_spec(tiny_space_path, storage_url, n_trials=3))
    first = sorted(result.study.trials, key=lambda t: t.number)[:2]
    assert [t.params for t in first] == corners
    assert all(t.user_attrs["seeded"] == "corner" for t in first)
    resumed = run_search(_spec(tiny_space_path, storage_url, n_trials=1))  # not queued again
    assert sum("seeded" in t.user_attrs for t in resumed.study.trials) == 2
    plain = run_search(_spec(tiny_space_path, storage_url, study_name="r", sampler="random"))
    assert not any("seeded" in t.user_attrs for t in plain.study.trials)


def test_memory_constraint_makes_trials_infeasible(tiny_space_path: Path, storage_url: str) -> None:
    result = run_search(_spec(tiny_space_path, storage_url, n_trials=2, max_memory_bytes=1000))
    assert all(t.system_attrs["constraints:memory"] > 0 for t in result.study.trials)
    assert pareto_frame(result.study).empty


def test_predicted_search_needs_a_readable_profile(
    tiny_space_path: Path, storage_url: str, tmp_path: Path
) -> None:
    with pytest.raises(SearchError, match="needs --latency-model"):
        run_search(_spec(tiny_space_path, storage_url, latency_mode="predicted"))
    with pytest.raises(ValueError, match="cannot read device profile"):
        run_search(
            _spec(
                tiny_space_path,
                storage_url,
                latency_mode="predicted",
                latency_model=str(tmp_path / "missing.json"),
            )
        )


def test_auto_sampler_is_tpe_for_two_objectives_and_nsga3_for_more() -> None:
    assert search_mod.resolve_sampler(SearchSpec(objectives=("naswot", "latency"))) == "tpe"
    for names in (("naswot", "latency", "params"), ("naswot", "latency", "macs", "params")):
        spec = SearchSpec(objectives=names)
        assert search_mod.resolve_sampler(spec) == "nsga3"
        assert isinstance(search_mod.make_sampler(spec, 0), optuna.samplers.NSGAIIISampler)
    chosen = SearchSpec(objectives=("naswot", "latency", "params"), sampler="tpe")
    assert isinstance(search_mod.make_sampler(chosen, 0), optuna.samplers.TPESampler)


def test_two_to_four_objectives_are_accepted(tiny_space_path: Path, storage_url: str) -> None:
    with pytest.raises(ValueError, match="two to 4 distinct objectives"):
        run_search(
            _spec(
                tiny_space_path,
                storage_url,
                objectives=("naswot", "synflow", "latency", "macs", "params"),
            )
        )
    with pytest.raises(ValueError, match="two to 4 distinct objectives"):
        run_search(_spec(tiny_space_path, storage_url, objectives=("naswot",)))


@pytest.mark.parametrize(
    "names", [("naswot", "latency", "params"), ("synflow", "latency", "macs", "params")]
)
def test_three_and_four_objective_searches_end_to_end(
    names: tuple[str, ...], tiny_space_path: Path, storage_url: str
) -> None:
    result = run_search(_spec(tiny_space_path, storage_url, objectives=names, n_trials=2))
    assert isinstance(result.study.sampler, optuna.samplers.NSGAIIISampler)
    study = load_study("t", storage_url)
    metrics = [search_mod.get_objectives(names)[i].metric for i in range(len(names))]
    assert study.metric_names == metrics
    assert len(study.directions) == len(names)
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert trial.values == [trial.user_attrs[m] for m in metrics]
    assert study.user_attrs["archlab_spec"]["sampler"] == "auto"
    assert not pareto_frame(result.study).empty


def test_short_training_objective_end_to_end(tiny_space_path: Path, storage_url: str) -> None:
    steps: list[int] = []
    run_search(
        _spec(
            tiny_space_path,
            storage_url,
            objectives=("short_train", "params"),
            n_trials=1,
            train_steps=2,
            train_batch=4,
            proxy_resolution=32,
        ),
        progress=lambda step, total, loss: steps.append(step),
    )
    trial = load_study("t", storage_url).trials[0]
    attrs = trial.user_attrs
    assert 0.0 <= attrs["val_acc"] <= 1.0 and trial.values == [attrs["val_acc"], attrs["params"]]
    assert attrs["train_steps"] == 2 and steps == [1, 2] and not attrs["train_stopped_early"]
    assert "naswot" not in attrs  # only the estimates the objectives read are computed


def test_resume_with_another_training_budget_is_refused(
    tiny_space_path: Path, storage_url: str
) -> None:
    kw = dict(
        objectives=("short_train", "params"),
        n_trials=1,
        train_steps=1,
        train_batch=4,
        proxy_resolution=32,
    )
    run_search(_spec(tiny_space_path, storage_url, **kw))
    with pytest.raises(SearchError, match="train_steps: stored 1 vs now 2"):
        run_search(_spec(tiny_space_path, storage_url, **{**kw, "train_steps": 2}))


def test_a_measured_study_is_not_resumed_with_predicted_latencies(
    tiny_space_path: Path, storage_url: str, tmp_path: Path
) -> None:
    run_search(_spec(tiny_space_path, storage_url, n_trials=1))
    with pytest.raises(SearchError, match="latency_mode: stored 'measured' vs now 'predicted'"):
        run_search(
            _spec(
                tiny_space_path,
                storage_url,
                n_trials=1,
                latency_mode="predicted",
                latency_model=str(tmp_path / "cpu.json"),
            )
        )


def test_front_remeasurement_keeps_each_chunk_it_finished(
    tiny_space_path: Path, storage_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from archlab.measurement.latency import Latency, LatencyEnv

    profile = _tiny_profile(tiny_space_path, tmp_path / "cpu.json")
    spec = _spec(
        tiny_space_path,
        storage_url,
        n_trials=8,
        latency_mode="predicted",
        latency_model=str(profile),
        sampler="random",
    )
    # the front must not depend on how fast this machine timed the profile's blocks: predicted
    # latency is the MAC count here (1 ms per million), so the same trials form it everywhere
    real_latency = evaluate_mod._latency_metrics

    def latency_from_macs(
        model: Any, resolution: int, spec: Any, macs: Any, predictor: Any
    ) -> dict:
        return {**real_latency(model, resolution, spec, macs, predictor),
                "latency_ms_predicted": macs.total / 1e6}  # fmt: skip

    monkeypatch.setattr(evaluate_mod, "_latency_metrics", latency_from_macs)
    calls: list[int] = []

    def fake(configs: list[dict], resolution: int, **options: object) -> list[Latency]:
        calls.append(len(configs))
        if len(calls) == 2:
            raise RuntimeError("machine lost")
        env = LatencyEnv("cpu", 1, 1, resolution)
        # slower than any tiny model is predicted, within the 1 s target: a measured member
        # cannot push the unmeasured ones off the front, so a second chunk always follows
        return [Latency(900.0, 0.1, 0.01, 0.01, 16, env, processes=2) for _ in configs]

    monkeypatch.setattr(remeasure_mod, "measure_many_in_processes", fake)
    monkeypatch.setattr(remeasure_mod, "FRONT_CHUNK", 1)
    with pytest.raises(RuntimeError, match="machine lost"):
        run_search(spec)
    study = load_study("t", storage_url)
    front = study.best_trials
    assert len(front) >= 2, "the test needs a front of two or more"
    first = set(study.user_attrs["remeasured"])
    assert len(first) == 1  # the first chunk, kept
    remeasure_mod.remeasure_study_front(study, spec)  # resumes with the rest
    final = load_study("t", storage_url)
    remeasured = set(final.user_attrs["remeasured"])
    # the chunk measured before the failure is kept, and every member of the front as judged
    # on the measurements (which may differ from the predicted front) was measured
    assert first <= remeasured
    assert {str(n) for n in pareto_frame(final)["number"]} <= remeasured


def _ship_knob_model(space_path: Path, path: Path) -> Any:
    """A knob model for the tiny space, fitted on 12 of its archs with a made-up accuracy."""
    from archlab.estimate.surrogate import fit_knob_ridge

    space = load_space(space_path)
    archs = [space.sample(i) for i in range(12)]
    accuracy = [0.8 + 0.01 * i for i in range(12)]
    model = fit_knob_ridge(archs, accuracy)
    path.write_text(json.dumps({"spaces": {space.name: {"model": model.to_dict()}}}))
    return model


def test_the_fitted_knob_model_is_an_objective_where_one_is_shipped(
    tiny_space_path: Path, storage_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import archlab.estimate.surrogate as surrogate_mod

    monkeypatch.setattr(surrogate_mod, "SURROGATES_PATH", tmp_path / "none.json")
    spec = _spec(tiny_space_path, storage_url, objectives=("knob_ridge", "macs"))
    with pytest.raises(SearchError, match="knob_ridge: no model fitted on a ground truth of space"):
        run_search(spec)
    with pytest.raises(StorageError, match="no study"):  # refused before any study was made
        load_study("t", storage_url)
    shipped = tmp_path / "surrogates.json"
    model = _ship_knob_model(tiny_space_path, shipped)
    monkeypatch.setattr(surrogate_mod, "SURROGATES_PATH", shipped)
    run_search(spec)
    trials = load_study("t", storage_url).trials
    assert len(trials) == 3
    for trial in trials:
        predicted = float(model.predict([trial.params])[0])
        assert trial.user_attrs["knob_ridge"] == pytest.approx(predicted)
        assert trial.values == [trial.user_attrs["knob_ridge"], trial.user_attrs["macs"]]


def test_the_knob_model_refuses_a_space_whose_knobs_differ(
    tiny_space_path: Path, storage_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import archlab.estimate.surrogate as surrogate_mod

    shipped = tmp_path / "surrogates.json"
    model = _ship_knob_model(tiny_space_path, shipped)
    document = json.loads(shipped.read_text())
    entry = document["spaces"]["tiny_plgvit"]["model"]
    entry["knobs"] = [*model.knobs[1:], "stages.9.depth"]  # fitted on another version of it
    shipped.write_text(json.dumps(document))
    monkeypatch.setattr(surrogate_mod, "SURROGATES_PATH", shipped)
    spec = _spec(tiny_space_path, storage_url, objectives=("knob_ridge", "macs"))
    with pytest.raises(SearchError, match=r"knobs differ .*stages\.9\.depth"):
        run_search(spec)

"""The typed study record, old studies read into it, and feasibility as every reader sees it."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import optuna
import pytest

from archlab.estimate.estimates import estimate_accuracy
from archlab.estimate.evidence import load_evidence
from archlab.search.loop import run_search
from archlab.study.record import RECORD_VERSION, StudyRecord, load_record, space_of
from archlab.study.settings import PROBE_DEFAULTS, SearchError, SearchSpec
from archlab.study.storage import StorageError, load_study
from archlab.study.trials import (
    LEGACY_CONSTRAINTS_KEY,
    is_feasible,
    pareto_frame,
    set_constraints,
)

DATA = Path(__file__).resolve().parent / "data"
OLD_STUDY = "made-before-records"  # 5 trials of tiny_plgvit.yaml, written by archlab before records


@pytest.fixture()
def old_study(tmp_path: Path) -> optuna.Study:
    db = tmp_path / "old.db"
    shutil.copy(DATA / "study_made_before_records.db", db)
    return load_study(OLD_STUDY, f"sqlite:///{db}")


def test_a_study_written_before_records_opens(old_study: optuna.Study) -> None:
    record = load_record(old_study)
    assert record.version == 1
    assert record.space_name == "tiny_plgvit"
    assert record.family == "plgvit"
    assert record.resolution == 64
    assert record.settings.objectives == ("naswot", "latency")
    assert record.settings.target_latency_s == pytest.approx(0.019)
    space = space_of(old_study)
    assert space.resolution == 64
    for trial in old_study.trials:
        space.to_cfg(trial.params)  # every stored arch rebuilds


def test_an_old_studys_front_is_the_one_optuna_reads(old_study: optuna.Study) -> None:
    # Its five trials were all stored within target (infeasible trials: test_search.py).
    assert all(t.constraints and max(t.constraints.values()) <= 0 for t in old_study.trials)
    assert {t.number for t in old_study.trials if is_feasible(t)} == {0, 1, 2, 3, 4}
    optuna_front = {t.number for t in old_study.best_trials}
    assert set(pareto_frame(old_study)["number"]) == optuna_front


def test_record_round_trip_and_version() -> None:
    settings = SearchSpec(
        space="plgvit", study_name="s", resolution=64, objectives=("naswot", "latency", "macs")
    )
    record = StudyRecord(settings, space_yaml="family: plgvit", family="plgvit", cpu="x")
    stored = record.to_attr()
    assert stored["record_version"] == RECORD_VERSION
    assert stored["objectives"] == ["naswot", "latency", "macs"]
    assert "storage" not in stored
    assert StudyRecord.from_attr(stored) == record


def test_a_study_without_a_record_is_refused() -> None:
    study = optuna.create_study()
    with pytest.raises(StorageError, match="not created by archlab"):
        load_record(study)


def test_a_new_search_writes_a_versioned_record(
    tiny_space_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHLAB_HOME", str(tmp_path / "home"))
    url = f"sqlite:///{tmp_path / 'new.db'}"
    result = run_search(
        SearchSpec(space=str(tiny_space_path), storage=url, n_trials=1, latency_max_time_s=0.2)
    )
    record = load_record(load_study(result.study.study_name, url))
    assert record.version == RECORD_VERSION
    assert record.space().resolution == record.resolution
    assert result.outputs is not None and (result.outputs / "pareto.csv").exists()


@pytest.mark.parametrize(
    "slacks",
    [{"latency": -0.1}, {"latency": 0.2}, {"latency": -0.1, "memory": 0.3}, {"latency": 0.0}],
)
def test_constraints_read_the_same_in_optuna_5_and_the_legacy_list(
    slacks: dict[str, float],
) -> None:
    """optuna-dashboard 0.21 reads only the legacy ``constraints`` list; Optuna 5 reads both."""
    study = optuna.create_study()
    trial = study.ask()
    set_constraints(trial, slacks)
    study.tell(trial, 1.0)
    frozen = study.trials[0]
    expected = all(v <= 0 for v in slacks.values())
    legacy = frozen.system_attrs[LEGACY_CONSTRAINTS_KEY]
    assert legacy == list(slacks.values())
    assert all(v <= 0 for v in legacy) is expected
    assert {k: frozen.system_attrs[f"constraints:{k}"] for k in slacks} == slacks
    assert is_feasible(frozen) is expected
    assert (frozen in study.best_trials) is expected


def test_an_old_study_resumes_with_the_probes_it_was_made_with(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    shutil.copy(DATA / "study_made_before_records.db", db)
    spec = SearchSpec(
        space=str(DATA / "tiny_plgvit.yaml"),
        storage=f"sqlite:///{db}",
        study_name=OLD_STUDY,
        target_latency_s=0.019,
        objectives=("naswot", "latency"),  # as stored: the default was NASWOT then
        n_trials=1,
        latency_max_time_s=0.3,
    )
    result = run_search(spec)  # no probe setting given: the study's own (digits at 64 px)
    assert result.new_trials == 1
    record = load_record(result.study)
    assert (record.settings.proxy_data, record.settings.proxy_resolution) == ("digits", 64)
    assert result.study.trials[-1].user_attrs["naswot"] is not None
    with pytest.raises(SearchError, match="proxy_data: stored 'digits' vs now 'fashion-mnist'"):
        run_search(dataclasses.replace(spec, proxy_data="fashion-mnist"))


def test_a_new_study_probes_as_the_evidence_was_measured(tmp_path: Path) -> None:
    spec = SearchSpec(
        space=str(DATA / "tiny_plgvit.yaml"),
        storage=f"sqlite:///{tmp_path / 'new.db'}",
        study_name="new",
        objectives=("naswot", "latency"),
        n_trials=1,
        latency_max_time_s=0.3,
        corners=False,
    )
    study = run_search(spec).study
    settings = load_record(study).settings
    assert (settings.proxy_data, settings.proxy_resolution) == (
        PROBE_DEFAULTS["proxy_data"],
        PROBE_DEFAULTS["proxy_resolution"],
    )
    evidence = load_evidence()
    assert evidence is not None
    assert all(
        entry.probes.startswith(f"{settings.proxy_data}@{settings.proxy_resolution}px,")
        for entry in evidence.spaces.values()
    )
    # the trial's NASWOT is the one probing those images gives
    arch = study.trials[0].params
    space = space_of(study)
    expected = estimate_accuracy(space, arch, ["naswot"], resolution=32, data="fashion-mnist")
    assert study.trials[0].user_attrs["naswot"] == pytest.approx(expected["naswot"])

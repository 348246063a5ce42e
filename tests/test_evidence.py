"""The shipped accuracy evidence: reading it, the default-estimate rule, and where it is shown."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from bench_scripts import load_bench_script
from typer.testing import CliRunner

from archlab.cli import app
from archlab.cli.spaces import _evidence_of
from archlab.dashboard.data import objective_label
from archlab.estimate.evidence import (
    MIN_ARCHS,
    MIN_FRONT_CHECKS,
    EstimateScore,
    Evidence,
    FrontCheck,
    SpaceEvidence,
    TrainedFront,
    axis_suffix,
    choose_default,
    choose_space_default,
    default_estimate,
    evidence_sentence,
    load_evidence,
    reference_accuracy,
)
from archlab.space import list_spaces, load_space


def _score(rho: float, seconds: float = 0.5, archs: int = 40) -> EstimateScore:
    return EstimateScore(rho, (rho - 0.1, rho + 0.1), rho / 2, (0, 1), 0.5, seconds, archs)


def _space(archs: int = 40, **scores: EstimateScore) -> SpaceEvidence:
    return SpaceEvidence(archs, 2, "1000x64@32px", "fashion-mnist", "p", None, dict(scores))


def test_the_rule_picks_the_best_estimate_that_fits_a_search() -> None:
    pooled = _space(params=_score(0.4), naswot=_score(0.6), zico=_score(0.8, seconds=30.0))
    assert choose_default(pooled)[0] == "naswot"  # zico ranks better but costs 30 s per arch


def test_the_rule_falls_back_to_the_cheapest_short_training_above_params() -> None:
    pooled = _space(
        params=_score(0.5), naswot=_score(0.3), train_1_8=_score(0.6, 40), train_1_4=_score(0.9, 80)
    )
    assert choose_default(pooled)[0] == "train_1_8"
    none_beats = _space(params=_score(0.7), naswot=_score(0.3), train_1_8=_score(0.6, 40))
    assert choose_default(none_beats)[0] is None


def test_the_searches_accuracy_objective_is_the_estimate_the_evidence_picks() -> None:
    """The default objective is a constant of the study layer; this keeps it equal to what the
    shipped evidence chooses (or to the fallback while it chooses nothing)."""
    from archlab.estimate.evidence import FALLBACK_DEFAULT, load_evidence
    from archlab.study.objectives import DEFAULT_OBJECTIVES, OBJECTIVES

    evidence = load_evidence()
    chosen = evidence.default if evidence is not None and evidence.default else FALLBACK_DEFAULT
    assert OBJECTIVES[DEFAULT_OBJECTIVES[0]].metric == chosen


def test_a_space_picks_its_own_default_where_its_best_estimate_beats_chance_and_params() -> None:
    def ci(rho: float, low: float) -> EstimateScore:
        return EstimateScore(rho, (low, rho + 0.2), rho / 2, (0, 1), 0.5, 0.2, 30)

    own = _space(30, params=ci(-0.2, -0.5), naswot=ci(0.1, -0.3), grad_norm=ci(0.4, 0.08))
    assert choose_space_default(own)[0] == "grad_norm"
    chance = _space(30, params=ci(-0.2, -0.5), naswot=ci(0.2, -0.16))  # interval includes zero
    assert choose_space_default(chance)[0] is None
    under_params = _space(30, params=ci(0.6, 0.3), grad_norm=ci(0.4, 0.08))
    assert choose_space_default(under_params)[0] is None
    # the baselines and short training are never a space's pick, however well they rank
    others = _space(30, params=ci(-0.2, -0.5), macs=ci(0.9, 0.7), train_1_8=ci(0.9, 0.7))
    assert choose_space_default(others)[0] is None
    # nor, by its rho, the model fitted on the space's own ground truth (only trained fronts can)
    fitted = _space(30, params=ci(-0.2, -0.5), knob_ridge=ci(0.6, 0.3), grad_norm=ci(0.4, 0.08))
    assert choose_space_default(fitted)[0] == "grad_norm"
    assert choose_default(fitted)[0] == "grad_norm"
    too_few = _space(MIN_ARCHS - 1, params=ci(-0.2, -0.5), grad_norm=ci(0.4, 0.08))
    assert choose_space_default(too_few)[0] is None


def _check(seed: int, **areas: float) -> FrontCheck:
    fronts = {n: TrainedFront(f"{n}-{seed}", 6, 0.89, 0.7, a) for n, a in areas.items()}
    return FrontCheck(53.0, seed, 30, "hybrid_all_four", 0.888, fronts)


def _with_checks(*checks: FrontCheck, own: bool = False) -> SpaceEvidence:
    free = EstimateScore(0.4, (0.1 if own else -0.1, 0.6), 0.2, (0, 1), 0.5, 0.2, 30)
    scores = {"params": _score(-0.2), "grad_norm": free, "knob_ridge": _score(0.5)}
    return SpaceEvidence(30, 2, "b", "fashion-mnist", "p", None, scores, checks)


def test_a_fitted_model_becomes_the_default_only_by_winning_every_paired_trained_front() -> None:
    wins = [_check(s, knob_ridge=2.0, naswot=1.0) for s in range(MIN_FRONT_CHECKS)]
    assert choose_space_default(_with_checks(*wins), "naswot")[0] == "knob_ridge"
    # one loss among the pairs, or too few pairs: the estimate it would replace stays
    lost = [*wins, _check(9, knob_ridge=1.0, naswot=1.5)]
    assert choose_space_default(_with_checks(*lost), "naswot")[0] is None
    assert choose_space_default(_with_checks(*wins[:-1]), "naswot")[0] is None
    # fronts won against another estimate than the one in force do not count
    assert choose_space_default(_with_checks(*wins), "zico")[0] is None
    # where the space has its own pick, the fitted model has to beat that one
    assert choose_space_default(_with_checks(*wins, own=True), "naswot")[0] == "grad_norm"
    against_own = [_check(s, knob_ridge=2.0, grad_norm=1.0) for s in range(MIN_FRONT_CHECKS)]
    assert choose_space_default(_with_checks(*against_own, own=True))[0] == "knob_ridge"


def test_front_checks_survive_the_json_round_trip_and_are_told(tmp_path: Path) -> None:
    entry = _with_checks(
        _check(0, knob_ridge=2.0, naswot=1.0), _check(1, knob_ridge=0.5, naswot=1.0)
    )
    raw = Evidence("2026-12-06", {"hybrid": entry}, None, "naswot", "r").to_dict()
    evidence = load_evidence(_write(tmp_path / "e.json", raw["spaces"]))
    assert evidence is not None
    assert evidence.spaces["hybrid"].front_checks == entry.front_checks
    assert evidence.spaces["hybrid"].front_record("knob_ridge", "naswot") == (1, 2)
    line = evidence_sentence("knob_ridge", "hybrid", evidence)
    assert "beat naswot's in 1 of 2 paired searches" in line
    assert "paired" not in evidence_sentence("grad_norm", "hybrid", evidence)  # never checked
    pairs = _with_checks(_check(0, knob_ridge=2.0, grad_norm=1.0), _check(1, grad_norm=3.0))
    defended = Evidence("d", {"hybrid": pairs}, None, "naswot", "r")  # the other side of a pair
    assert "beat knob_ridge's in 0 of 1 paired searches" in evidence_sentence(
        "grad_norm", "hybrid", defended
    )
    untried = Evidence("d", {"hybrid": _with_checks()}, None, "naswot", "r")
    assert "no trained front has checked it against naswot" in evidence_sentence(
        "knob_ridge", "hybrid", untried
    )


def test_default_estimate_takes_the_spaces_own_pick_then_the_pooled_one() -> None:
    evidence = Evidence("d", {}, None, "naswot", "r", {"plgvit": "grad_norm"})
    assert default_estimate("plgvit", evidence) == "grad_norm"
    assert default_estimate("hybrid", evidence) == "naswot"
    none_picked = Evidence("d", {}, None, None, "r")
    assert default_estimate("plgvit", none_picked) == "naswot"  # the fallback


def test_the_shipped_per_space_defaults_follow_the_rule() -> None:
    evidence = load_evidence()
    assert evidence is not None
    expected = {
        n: p
        for n, e in evidence.spaces.items()
        if (p := choose_space_default(e, evidence.default)[0])
    }
    assert evidence.space_defaults == expected
    assert evidence.space_rule == choose_space_default(next(iter(evidence.spaces.values())))[1]


def test_the_rule_claims_nothing_on_too_few_archs() -> None:
    pooled = _space(archs=MIN_ARCHS - 1, params=_score(0.1), naswot=_score(0.9))
    default, rule = choose_default(pooled)
    assert default is None and str(MIN_ARCHS) in rule


def _write(path: Path, spaces: dict) -> Path:
    path.write_text(
        json.dumps({"measured": "2026-12-06", "spaces": spaces, "pooled": None,
                    "default": None, "rule": "r"})
    )  # fmt: skip
    return path


def test_axis_suffix_states_rho_or_that_there_is_none(tmp_path: Path) -> None:
    entry = {
        "archs": 12, "seeds": 2, "budget": "b", "data": "fashion-mnist", "probes": "fm@32px",
        "seed_agreement": None,
        "estimates": {"naswot": {"spearman": 0.712, "spearman_ci": [0.3, 0.9], "kendall": 0.5,
                                 "kendall_ci": [0.2, 0.7], "top20_recall": 0.5,
                                 "seconds_per_arch": None, "archs": 12}},
    }  # fmt: skip
    entry["estimates"]["tse_1_64"] = {**entry["estimates"]["naswot"], "spearman": 0.5}
    evidence = load_evidence(_write(tmp_path / "e.json", {"plgvit": entry}))
    assert evidence is not None
    assert axis_suffix("naswot", "plgvit", evidence) == (
        "(ρ 0.71 vs training on fashion-mnist, 12 archs, fm@32px probes)"
    )
    # a training estimate reads no probe images: the axis does not name them
    assert axis_suffix("tse_1_64", "plgvit", evidence) == (
        "(ρ 0.50 vs training on fashion-mnist, 12 archs)"
    )
    assert axis_suffix("synflow", "plgvit", evidence) == "(not yet validated against training)"
    assert axis_suffix("naswot", "parc", evidence) == "(not yet validated against training)"
    assert evidence_sentence("naswot", "plgvit", evidence) == (
        "naswot on plgvit: Spearman ρ +0.71 [95 % CI +0.30, +0.90] against training on "
        "fashion-mnist (12 archs)"
    )
    assert evidence_sentence("zico", "plgvit", evidence) == (
        "zico on plgvit: not yet validated against training"
    )
    weak = {
        "spearman": -0.1,
        "spearman_ci": [-0.5, 0.3],
        "kendall": -0.1,
        "kendall_ci": [-0.4, 0.2],
        "top20_recall": 0.2,
        "seconds_per_arch": 0.2,
        "archs": 12,
    }
    entry["estimates"]["grad_norm"] = weak  # type: ignore[index]
    evidence = load_evidence(_write(tmp_path / "e.json", {"hybrid": entry}))
    assert evidence_sentence("grad_norm", "hybrid", evidence).endswith(
        ". Its interval includes zero: it does not rank hybrid archs reliably "
        "(best measured here: naswot, ρ +0.71)"
    )
    entry["estimates"]["train_1_4"] = {**weak, "spearman": 0.8}  # type: ignore[index]
    evidence = load_evidence(_write(tmp_path / "e.json", {"hybrid": entry}))
    assert evidence_sentence("grad_norm", "hybrid", evidence).endswith(
        "(best measured here: train_1_4, ρ +0.80; naswot, ρ +0.71)"  # best of all, best free
    )


def test_a_space_without_ground_truth_is_shown_the_pooled_figure(tmp_path: Path) -> None:
    def score(rho: float, archs: int) -> dict:
        return {"spearman": rho, "spearman_ci": [rho - 0.2, rho + 0.2], "kendall": rho,
                "kendall_ci": [0, 0], "top20_recall": 0.5, "seconds_per_arch": 0.1,
                "archs": archs}  # fmt: skip

    def entry(rho: float, archs: int) -> dict:
        return {"archs": archs, "seeds": 2, "budget": "b", "data": "fashion-mnist",
                "probes": "p", "seed_agreement": None,
                "estimates": {"naswot": score(rho, archs)}}  # fmt: skip

    path = tmp_path / "e.json"
    path.write_text(
        json.dumps({"measured": "2026-12-06", "default": "naswot", "rule": "r",
                    "spaces": {"plgvit": entry(-0.1, 30), "sbcformer": entry(0.7, 30)},
                    "pooled": entry(0.3, 60)})
    )  # fmt: skip
    evidence = load_evidence(path)
    assert evidence_sentence("naswot", "parc", evidence) == (
        "naswot on parc: not yet validated against training on this space; pooled over plgvit, "
        "sbcformer: Spearman ρ +0.30 [95 % CI +0.10, +0.50] (60 archs; per space -0.10 to +0.70)"
    )
    assert axis_suffix("naswot", "parc", evidence) == (
        "(not validated on parc; ρ 0.30 pooled over plgvit, sbcformer)"
    )
    # a space with its own ground truth is never described by the pool
    assert evidence_sentence("naswot", "plgvit", evidence).startswith("naswot on plgvit: Spearman")
    assert evidence_sentence("synflow", "parc", evidence) == (
        "synflow on parc: not yet validated against training"
    )


def test_a_fitted_model_lends_no_pooled_figure_to_a_space_without_one() -> None:
    evidence = load_evidence()
    assert evidence is not None and evidence.pooled is not None
    assert "knob_ridge" not in evidence.pooled.estimates  # fitted per space: nothing to pool
    assert "knob_ridge" in evidence.spaces["plgvit"].estimates
    line = evidence_sentence("knob_ridge", "a_space_of_ones_own", evidence)
    assert line == "knob_ridge on a_space_of_ones_own: not yet validated against training"


def test_the_fitted_model_is_said_to_be_scored_leave_one_out(tmp_path: Path) -> None:
    score = {
        "spearman": 0.58, "spearman_ci": [0.27, 0.77], "kendall": 0.4, "kendall_ci": [0.2, 0.6],
        "top20_recall": 0.2, "seconds_per_arch": 1e-4, "archs": 30,
    }  # fmt: skip
    entry = {
        "archs": 30, "seeds": 2, "budget": "b", "data": "fashion-mnist", "probes": "fm@32px",
        "seed_agreement": None, "estimates": {"knob_ridge": score},
    }  # fmt: skip
    evidence = load_evidence(_write(tmp_path / "e.json", {"plgvit": entry}))
    assert axis_suffix("knob_ridge", "plgvit", evidence) == (
        "(ρ 0.58 leave-one-out vs training on fashion-mnist, 30 archs)"
    )
    line = evidence_sentence("knob_ridge", "plgvit", evidence)
    assert "+0.58 [95 % CI +0.27, +0.77]" in line
    assert "each predicted by the model fitted on the others" in line
    assert "not the corners a search pushes it to" in line


def test_a_malformed_evidence_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"spaces": {}}')
    with pytest.raises(ValueError, match="malformed accuracy evidence"):
        load_evidence(path)
    assert load_evidence(tmp_path / "missing.json") is None


def test_spaces_json_and_the_dashboard_carry_the_evidence() -> None:
    result = CliRunner().invoke(app, ["spaces", "--format", "json"])
    assert result.exit_code == 0, result.output
    entries = {e["name"]: e for e in json.loads(result.output)}
    evidence = load_evidence()
    for name, entry in entries.items():
        shown = entry["accuracy_evidence"]
        if evidence is not None and name in evidence.spaces:
            assert shown["ground_truth"]["archs"] == evidence.spaces[name].archs
            assert set(shown["estimates"]) == set(evidence.spaces[name].estimates)
            checks = evidence.spaces[name].front_checks
            assert [c["search_seed"] for c in shown["front_checks"]] == [
                c.search_seed for c in checks
            ]
        else:
            assert shown["note"] == "not yet validated against training"
            if evidence is not None and evidence.pooled is not None:
                pooled = shown["pooled_over_other_spaces"]
                assert pooled["spaces"] == sorted(evidence.spaces)
                assert set(pooled["estimates"]) == set(evidence.pooled.estimates)
        assert shown["default_estimate"] == default_estimate(name)
        assert shown["default_rule"] in (evidence.rule, evidence.space_rule)
        for model, trained in shown["reference_models"].items():
            assert evidence is not None
            assert model in (*load_space(name).references, "plain_cnn")
            assert trained["accuracy"] == evidence.references[model]["accuracy"]
    if evidence is not None and evidence.references:
        assert "lw_plgvit_a" in entries["plgvit"]["accuracy_evidence"]["reference_models"]
    label = objective_label("naswot", "plgvit")
    assert label.startswith("accuracy estimate: NASWOT score (")
    assert objective_label("latency_ms", "plgvit") == "latency (ms, median)"
    if evidence is not None and "train_1_8" in evidence.spaces["plgvit"].estimates:
        rho = evidence.spaces["plgvit"].estimates["train_1_8"].spearman
        assert f"(ρ {rho:.2f} vs training" in objective_label("train_1_8", "plgvit")


def test_estimate_prints_every_estimate_of_one_arch_as_json(tiny_space_path: Path) -> None:
    args = ["estimate", "--space", str(tiny_space_path), "--arch", '{"stages.2.depth": 2}']
    result = CliRunner().invoke(app, [*args, "--data", "digits", "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    for name in ("naswot", "synflow", "grad_norm", "zico", "swap", "meco", "params", "macs"):
        assert isinstance(out[name], float) and out[name] == out["estimates"][name]
        assert out["seconds"][name] >= 0
    from archlab.study.objectives import DEFAULT_OBJECTIVES

    assert out["default"] == DEFAULT_OBJECTIVES[0]  # the searches' default, as the evidence picks
    assert out["settings"] == "digits@32px,batch8,seed0"
    assert "knob_ridge" not in out  # no model was fitted on this space's ground truth


def test_estimate_adds_the_fitted_model_where_the_space_has_one(
    tiny_space_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import archlab.estimate.surrogate as surrogate_mod
    from archlab.estimate.surrogate import fit_knob_ridge
    from archlab.space import load_space

    space = load_space(tiny_space_path)
    archs = [space.sample(i) for i in range(10)]
    model = fit_knob_ridge(archs, [0.8 + 0.01 * a["stages.2.depth"] for a in archs])
    path = tmp_path / "surrogates.json"
    path.write_text(json.dumps({"spaces": {space.name: {"model": model.to_dict()}}}))
    monkeypatch.setattr(surrogate_mod, "SURROGATES_PATH", path)
    arch = {"stages.2.depth": 2}
    args = ["estimate", "--space", str(tiny_space_path), "--arch", json.dumps(arch)]
    result = CliRunner().invoke(app, [*args, "--data", "digits", "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    full = {**space.default(), **arch}  # the knobs the arch leaves out take the space's default
    assert out["knob_ridge"] == pytest.approx(float(model.predict([full])[0]))


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"nope": 1}', "'nope' is not a knob"),
        ('{"stages.2.depth": 9}', "stages.2.depth=9 is not in its range [1, 2]"),
        ('{"ffn": "mlp"}', "ffn='mlp' is not in its choices {ccf_plus, ccf}"),
    ],
)
def test_estimate_refuses_a_bad_arch(tiny_space_path: Path, arch: str, message: str) -> None:
    args = ["estimate", "--space", str(tiny_space_path), "--arch", arch, "--data", "digits"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and message in " ".join(result.output.split())


def test_estimate_runs_on_one_thread_as_the_evidence_timed_it(
    tiny_space_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    import archlab.estimate.arch_estimates as arch_estimates

    seen: list[int] = []

    def record(*_: object) -> dict:
        seen.append(torch.get_num_threads())
        return {"estimates": {}, "seconds": {}, "default": "naswot"}

    monkeypatch.setattr(arch_estimates, "all_estimates", record)
    before = torch.get_num_threads()
    args = ["estimate", "--space", str(tiny_space_path), "--arch", "{}", "--format", "json"]
    for extra, threads in (([], 1), (["--threads", "2"], 2)):
        result = CliRunner().invoke(app, [*args, *extra])
        assert result.exit_code == 0, result.output
        assert seen[-1] == threads
    assert torch.get_num_threads() == before  # restored
    result = CliRunner().invoke(app, [*args, "--threads", "0"])
    assert result.exit_code == 2 and "--threads must be at least 1" in result.output


def test_a_reference_accuracy_is_given_only_for_the_recipe_it_was_trained_with(
    tmp_path: Path,
) -> None:
    trained = {"accuracy": 0.88, "seeds": [0, 1], "budget": "1000x64@32px", "data": "fashion-mnist"}
    raw = Evidence("d", {}, None, "naswot", "r", references={"lw_plgvit_a": trained}).to_dict()
    path = tmp_path / "e.json"
    path.write_text(json.dumps(raw))
    evidence = load_evidence(path)
    assert evidence is not None and evidence.references == {"lw_plgvit_a": trained}
    assert reference_accuracy(evidence, "lw_plgvit_a", "1000x64@32px", "fashion-mnist") == trained
    assert reference_accuracy(evidence, "lw_plgvit_a", "500x64@32px", "fashion-mnist") is None
    assert reference_accuracy(evidence, "lw_plgvit_a", "1000x64@32px", "digits") is None
    assert reference_accuracy(evidence, "lw_plgvit_r", "1000x64@32px", "fashion-mnist") is None
    assert reference_accuracy(None, "lw_plgvit_a", "1000x64@32px", "fashion-mnist") is None


def test_the_shipped_references_match_the_ground_truth_tables() -> None:
    """Every reference model of a committed ground truth is shipped, with the figures of one of
    the tables that trained it (tables trained with different code may differ)."""
    from archlab.estimate.ground_truth import read_rows, reference_outcomes
    from archlab.estimate.training import GROUND_TRUTH

    evidence = load_evidence()
    results = Path(__file__).resolve().parents[1] / "bench" / "results"
    if evidence is None or not results.exists():
        pytest.skip("no shipped evidence or no bench results in this checkout")
    budget = GROUND_TRUTH.budget_label()
    tables: dict[str, list[list[float]]] = {}
    for table in sorted(results.glob("ground_truth_*.csv")):
        for name, outcome in reference_outcomes(read_rows(table), budget).items():
            tables.setdefault(name, []).append(outcome["accuracies"])
    assert tables, "the committed ground truth has reference models"
    for name, found in tables.items():
        assert evidence.references[name]["accuracies"] in found, name


def test_a_space_without_a_ground_truth_states_the_pooled_pick_and_its_rule() -> None:
    evidence = load_evidence()
    assert evidence is not None
    shown = _evidence_of(evidence, "a_space_of_ones_own")
    assert shown["note"] == "not yet validated against training"
    assert shown["default_estimate"] == default_estimate("a_space_of_ones_own", evidence)
    assert shown["default_rule"] == evidence.rule
    assert shown["pooled_over_other_spaces"]["spaces"] == sorted(evidence.spaces)


def test_the_spaces_table_states_each_spaces_default_estimate_and_its_evidence() -> None:
    result = CliRunner().invoke(app, ["spaces"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    lines = [x for x in result.output.splitlines() if x.startswith("default accuracy estimate: ")]
    assert len(lines) == len(list_spaces())
    for name, line in zip(list_spaces(), lines):
        assert line.removeprefix("default accuracy estimate: ") == evidence_sentence(
            default_estimate(name), name
        )


def test_three_searches_with_one_seed_make_three_pairs_each_scored_on_its_own_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = load_bench_script("evidence")
    fronts = {  # estimate: [(ratio to the preset, trained accuracy)]
        "a": [(0.5, 0.89), (0.8, 0.90)],
        "b": [(0.4, 0.88)],
        "c": [(0.3, 0.80)],  # far below the others: must not move the a-b pair's floor
    }
    columns = ["space", "study", "estimate", "target_ms", "search_seed", "search_trials"]
    columns += ["preset", "preset_accuracy", "preset_ms", "latency_ms", "ratio_to_preset"]
    columns += ["accuracy"]
    with (tmp_path / "front_checks.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        for estimate, members in fronts.items():
            for ratio, acc in members:
                writer.writerow({
                    "space": "s", "study": f"st-{estimate}", "estimate": estimate,
                    "target_ms": 50, "search_seed": 0, "search_trials": 30, "preset": "p",
                    "preset_accuracy": 0.88, "preset_ms": 50, "latency_ms": 50 * ratio,
                    "ratio_to_preset": ratio, "accuracy": acc,
                })  # fmt: skip
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    checks = bench._front_checks("s")
    assert [sorted(c["fronts"]) for c in checks] == [["a", "b"], ["a", "c"], ["b", "c"]]
    pair = checks[0]["fronts"]
    # floor 0.88 (the pair's lowest): a covers 0.5..1 at +0.01 and 0.8..1 at +0.02 more; b none
    assert pair["a"]["hypervolume"] == pytest.approx(0.5 * 0.01 + 0.2 * 0.01)
    assert pair["b"]["hypervolume"] == pytest.approx(0.0)
    assert checks[1]["fronts"]["a"]["hypervolume"] > pair["a"]["hypervolume"]  # floor 0.80 there

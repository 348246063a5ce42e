from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from archlab.cli import app, parse_duration
from archlab.study.objectives import DEFAULT_OBJECTIVES

runner = CliRunner()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("250ms", 0.25), ("0.5s", 0.5), ("2m", 120.0), ("1h", 3600.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["fast", "-1s", "0ms", "1 parsec"])
def test_parse_duration_rejects_nonsense(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("command", [[], ["search"], ["pareto"], ["report"], ["spaces"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_search_help_explains_every_option() -> None:
    out = runner.invoke(app, ["search", "--help"], env={"COLUMNS": "200"}).output
    for option in (
        "--space",
        "--target-latency",
        "--n-trials",
        "--timeout",
        "--study",
        "--storage",
        "--sampler",
        "--seed",
        "--threads",
        "--resolution",
        "--objectives",
    ):
        assert option in out


def test_search_then_pareto_end_to_end(tiny_space_path: Path, archlab_home: Path) -> None:
    result = runner.invoke(
        app,
        [
            "search",
            "--space",
            str(tiny_space_path),
            "--target-latency",
            "250ms",
            "--n-trials",
            "2",
            "--study",
            "cli",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Feasible Pareto front" in result.output
    assert "archlab dashboard" in result.output
    assert str(archlab_home / "archlab.db") in result.output
    assert (archlab_home / "archlab.db").exists()
    assert (archlab_home / "cli" / "spec.yaml").exists() and (
        archlab_home / "cli" / "pareto.csv"
    ).exists()

    as_json = runner.invoke(app, ["pareto", "--study", "cli", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    front = json.loads(as_json.output)["pareto"]
    assert front, "two fast tiny models under 250 ms must give a non-empty front"
    for row in front:
        assert {
            "number",
            "params",
            "macs",
            "feasible",
            f"objective:{DEFAULT_OBJECTIVES[0]}",
            "objective:latency_ms",
        } <= set(row)
        assert row["feasible"] is True

    as_csv = runner.invoke(app, ["pareto", "--study", "cli", "--format", "csv"])
    assert as_csv.output.splitlines()[0].startswith("number,state,feasible")


def test_search_reports_bad_input_without_traceback(archlab_home: Path, tmp_path: Path) -> None:
    bad = runner.invoke(app, ["search", "--space", "nope", "--n-trials", "1"])
    assert bad.exit_code == 2 and "no such space" in bad.output and "Traceback" not in bad.output
    bad = runner.invoke(app, ["search", "--target-latency", "soon", "--n-trials", "1"])
    assert bad.exit_code == 2 and "not a duration" in bad.output
    bad = runner.invoke(app, ["search", "--storage", "mysql+nodriver://x/y", "--n-trials", "1"])
    assert bad.exit_code == 2 and "cannot open storage" in bad.output
    bad = runner.invoke(app, ["pareto", "--study", "missing"])
    assert bad.exit_code == 2 and "no study 'missing'" in bad.output


def test_report_json_has_documented_keys() -> None:
    result = runner.invoke(
        app, ["report", "--space", "plgvit", "--preset", "lw-plgvit-r", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"params", "macs", "thop_macs", "latency_ms", "published", "config"} <= set(data)
    assert data["published"]["name"] == "LW-PLG-ViT-R" and data["reconstructed"] is True
    assert data["latency_ms"] > 0 and data["unsupported_ops"] == {}
    from archlab import build_model
    from archlab.measurement.flops import count_params

    assert count_params(build_model(data["config"])) == data["params"]


def test_report_resolution_changes_macs() -> None:
    def macs(res: str) -> int:
        out = runner.invoke(
            app,
            [
                "report",
                "--preset",
                "lw-plgvit-r",
                "--no-latency",
                "--format",
                "json",
                "--resolution",
                res,
            ],
        ).output
        return json.loads(out)["macs"]

    assert macs("256") > macs("224")


def test_report_table_and_errors() -> None:
    table = runner.invoke(
        app, ["report", "--preset", "plgvit-tiny", "--no-latency"], env={"COLUMNS": "200"}
    )
    assert table.exit_code == 0, table.output
    assert "published 27.00M" in table.output and "thop" in table.output
    wrong = runner.invoke(app, ["report", "--preset", "lw-plgvit-a", "--space", "sbcformer"])
    assert wrong.exit_code == 2 and "belongs to space 'plgvit'" in wrong.output
    unknown = runner.invoke(app, ["report", "--preset", "resnet50"])
    assert unknown.exit_code == 2 and "unknown preset" in unknown.output
    bad_res = runner.invoke(
        app, ["report", "--preset", "lw-plgvit-a", "--resolution", "64", "--no-latency"]
    )
    assert bad_res.exit_code == 2 and "exceeds the stage's" in bad_res.output


def test_report_from_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "model.yaml"
    cfg.write_text("preset: lw_plgvit_r\nexpand_dim: 256\n")
    result = runner.invoke(
        app, ["report", "--config", str(cfg), "--no-latency", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["config"]["expand_dim"] == 256


def test_spaces_json_lists_presets_with_published_names() -> None:
    result = runner.invoke(app, ["spaces", "--format", "json"])
    assert result.exit_code == 0, result.output
    spaces = {s["name"]: s for s in json.loads(result.output)}
    plg = spaces["plgvit"]
    names = {p["name"]: p["published"] for p in plg["presets"]}
    assert names["lw_plgvit_a"] == "LW-PLG-ViT-A" and names["plgvit_tiny"] == "PLG-ViT-Tiny"
    assert "stages.0.dim" in plg["knobs"]


def _tiny_config(tiny_space_path: Path, tmp_path: Path) -> Path:
    import yaml

    from archlab.space import load_space

    space = load_space(tiny_space_path)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(space.to_config(space.default())))
    return path


def test_report_of_a_study_trial_with_figure_and_files(
    tiny_space_path: Path, archlab_home: Path, tmp_path: Path
) -> None:
    from archlab.search.loop import run_search
    from archlab.study.settings import SearchSpec

    run_search(
        SearchSpec(
            space=str(tiny_space_path),
            study_name="r",
            n_trials=1,
            proxy_batch=4,
            latency_max_time_s=0.2,
        )
    )
    out, figure = tmp_path / "out", tmp_path / "stages.svg"
    result = runner.invoke(
        app,
        [
            "report",
            "--study",
            "r",
            "--trial",
            "0",
            "--format",
            "json",
            "--figure",
            str(figure),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[: result.output.rindex("}") + 1])
    assert data["name"] == "r#0" and data["resolution"] == 64 and data["latency_ms"] > 0
    stages = {row["stage"] for row in data["stages"]}
    assert {"tokenizer", "stages.0", "stages.3", "(rest of forward)"} <= stages
    assert data["counters"][-1]["item"] == "total"
    assert any(r["latency_share"] for r in data["modules"] if r["module"] == "stages.2")
    assert figure.read_bytes().lstrip().startswith(b"<?xml")
    assert {p.name for p in out.iterdir()} == {
        "r_0.md",
        "r_0.json",
        "r_0_modules.csv",
        "r_0_stages.csv",
        "r_0_counters.csv",
    }
    missing = runner.invoke(app, ["report", "--study", "r", "--trial", "7"])
    assert missing.exit_code == 2 and "has no trial 7" in missing.output


def test_report_markdown_explains_thop_op_by_op(tiny_space_path: Path, tmp_path: Path) -> None:
    config = _tiny_config(tiny_space_path, tmp_path)
    result = runner.invoke(
        app,
        [
            "report",
            "--config",
            str(config),
            "--resolution",
            "64",
            "--format",
            "markdown",
            "--backend",
            "torchscript",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "## Stages" in result.output and "torchscript" in result.output
    # PLG-ViT's attention (biased: written out) reaches thop as functional matmuls it cannot see
    assert "matmul (functional)" in result.output and "inside _PlgAttention" in result.output
    assert "thop only hooks registered modules" in result.output


def test_all_presets_writes_the_reproduction_report(
    monkeypatch: pytest.MonkeyPatch, tiny_space_path: Path, tmp_path: Path
) -> None:
    import dataclasses

    from archlab.models import FAMILIES, Preset
    from archlab.report import render as report_render
    from archlab.space import load_space

    space = load_space(tiny_space_path)
    tiny = Preset(
        space.to_cfg(space.default()),
        published="Tiny",
        params_m=0.2,
        resolution=64,
        note="a test preset",
    )
    family = dataclasses.replace(FAMILIES["plgvit"], presets={"tiny_test": tiny})
    monkeypatch.setattr(report_render, "FAMILIES", {"plgvit": family})
    result = runner.invoke(
        app,
        ["report", "--all-presets", "--format", "markdown", "--out", str(tmp_path), "--no-latency"],
    )
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "presets.md").read_text()
    assert "Reproduction report" in markdown and "tiny_test" in markdown
    assert "a test preset" in markdown and "thop_largest_gap" in markdown
    import pandas as pd

    gap = pd.read_csv(tmp_path / "presets.csv")["thop_largest_gap"][0]
    assert gap.startswith(("LayerNorm2d modules", "scaled_dot_product_attention"))


def test_profile_device_then_predicted_search(
    tiny_space_path: Path, archlab_home: Path, tmp_path: Path
) -> None:
    profile = tmp_path / "cpu.json"
    made = runner.invoke(
        app,
        [
            "profile-device",
            "--space",
            str(tiny_space_path),
            "--out",
            str(profile),
            "--n-models",
            "1",
            "--calibration",
            "1",
            "--runs",
            "2",
            "--calibration-processes",
            "1",
        ],
    )
    assert made.exit_code == 0, made.output
    assert "distinct blocks" in made.output and json.loads(profile.read_text())["entries"]
    assert "in 1 fresh process" in " ".join(made.output.split())  # rich wraps lines
    bad = runner.invoke(
        app,
        ["search", "--space", str(tiny_space_path), "--latency", "predicted", "--n-trials", "1"],
    )
    assert bad.exit_code == 2 and "needs --latency-model" in bad.output
    searched = runner.invoke(
        app,
        [
            "search",
            "--space",
            str(tiny_space_path),
            "--latency",
            "predicted",
            "--latency-model",
            str(profile),
            "--n-trials",
            "2",
        ],
    )
    assert searched.exit_code == 0, searched.output
    said = " ".join(searched.output.split())
    assert "Predicted vs re-measured latency of" in said and "profile's time base" in said
    bad = runner.invoke(app, ["search", "--space", str(tiny_space_path), "--max-memory", "lots"])
    assert bad.exit_code == 2 and "not a memory size" in bad.output


def test_three_objective_search_picks_nsga3_and_bad_objectives_are_explained(
    tiny_space_path: Path, archlab_home: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "search",
            "--space",
            str(tiny_space_path),
            "--n-trials",
            "2",
            "--objectives",
            "naswot,latency,params",
            "--study",
            "three",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "nsga3" in result.output and "Feasible Pareto front" in result.output
    said = " ".join(result.output.split())  # the accuracy axis states its evidence (none here)
    assert "naswot on tiny_plgvit: not yet validated against training" in said
    bad = runner.invoke(
        app, ["search", "--space", str(tiny_space_path), "--objectives", "accuracy,latency"]
    )
    assert bad.exit_code == 2 and "unknown objective(s) ['accuracy']" in bad.output
    assert "Traceback" not in bad.output


HUGE = "1" + "0" * 400


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--target-latency", HUGE + "s"], "longer than a year"),
        (["--target-latency", "1" + "0" * 306 + "s"], "longer than a year"),
        (["--grace-period", HUGE + "s"], "longer than a year"),
        (["--timeout", HUGE + "h"], "longer than a year"),
        (["--target-latency", "2h"], "--target-latency must be between"),
        (["--grace-period", "1s"], "--grace-period must be between 2"),
        (["--n-trials", "-1"], "--n-trials must be between 1 and"),
        (["--n-trials", "0"], "--n-trials must be between 1 and"),
        (["--resolution", "0"], "--resolution must be between 32 and"),
        (["--resolution", "7"], "--resolution must be a multiple of 32"),
        (["--resolution", "-64"], "--resolution must be between 32 and"),
        (["--threads", "0"], "--threads must be between 1 and"),
        (["--threads", "-1"], "--threads must be between 1 and"),
        (["--threads", "999"], "(the CPUs here)"),
        (["--proxy-resolution", "0"], "--proxy-resolution must be between 32"),
        (["--threads", "0", "--workers", "2"], "--threads must be between 1 and"),
        (["--workers", "1000"], "--workers must be between 1 and"),
        (["--study", "x" * 256], "1 to 255 characters, got 256"),
        (["--study", "a\nb"], "control characters"),
        (["--seed", "-1"], "--seed must be between 0"),
        (["--population", "1"], "--population must be between 2"),
        (["--sampler", "cmaes"], "--sampler: 'cmaes' is not one of"),
        (["--proxy-data", "no-such-set"], "--proxy-data: 'no-such-set' is neither"),
        (["--data", "/no/such/folder"], "--data: '/no/such/folder' is not an existing folder"),
        (["--max-memory", HUGE + "GB"], "--max-memory: '1000"),
        (["--train-batch", "100000"], "--train-batch must be between 1 and 4,096"),
        (["--storage", "journal:///etc/passwd"], "not an Optuna journal file"),
        (["--storage", "journal:///no/such/dir/x.log"], "folder /no/such/dir does not exist"),
    ],
)
def test_search_refuses_bad_options_before_touching_storage(
    tiny_space_path: Path, archlab_home: Path, args: list[str], said: str
) -> None:
    result = runner.invoke(
        app, ["search", "--space", str(tiny_space_path), *args], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 2, result.output
    assert said in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not archlab_home.exists(), "nothing may be created for a refused search"


def test_worker_refuses_bad_timeout_and_seed(archlab_home: Path) -> None:
    bad = runner.invoke(app, ["worker", "--study", "s", "--timeout", HUGE + "s"])
    assert bad.exit_code == 2 and "longer than a year" in bad.output
    bad = runner.invoke(app, ["worker", "--study", "s", "--seed", "-1"])
    assert bad.exit_code == 2
    assert not archlab_home.exists()


def test_pareto_on_a_missing_sqlite_file_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "nope" / "sub" / "x.db"
    result = runner.invoke(app, ["pareto", "--study", "x", "--storage", f"sqlite:///{db}"])
    assert result.exit_code == 2 and "no SQLite file at" in result.output
    assert not (tmp_path / "nope").exists()
    journal = tmp_path / "x.log"
    result = runner.invoke(app, ["pareto", "--study", "x", "--storage", f"journal:///{journal}"])
    assert result.exit_code == 2 and "no journal file at" in result.output
    assert not journal.exists()


def test_errors_mask_the_database_password(archlab_home: Path) -> None:
    url = "postgresql://archlab:s3cret@127.0.0.1:1/nodb"
    result = runner.invoke(app, ["pareto", "--study", "x", "--storage", url])
    assert result.exit_code == 2
    assert "s3cret" not in result.output and "archlab:***@127.0.0.1" in result.output


def test_storage_comes_from_the_environment(archlab_home: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    result = runner.invoke(app, ["pareto", "--study", "x"], env={"ARCHLAB_STORAGE": url})
    assert result.exit_code == 2 and str(tmp_path / "env.db") in result.output


def test_report_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    figure, out = tmp_path / "stages.svg", tmp_path / "out"
    figure.write_text("mine")
    args = ["report", "--preset", "lw-plgvit-r", "--no-latency", "--format", "json"]
    bad = runner.invoke(app, [*args, "--figure", str(figure)])
    assert bad.exit_code == 2 and "pass --force to overwrite" in bad.output
    assert figure.read_text() == "mine"
    out.mkdir()
    (out / "lw_plgvit_r.md").write_text("mine")
    bad = runner.invoke(app, [*args, "--out", str(out)])
    assert bad.exit_code == 2 and "already holds lw_plgvit_r.md" in bad.output
    bad = runner.invoke(app, [*args, "--out", str(tmp_path / "no" / "dir")])
    assert bad.exit_code == 2 and "does not exist" in bad.output
    assert not (tmp_path / "no").exists()
    forced = runner.invoke(app, [*args, "--out", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    assert (out / "lw_plgvit_r.md").read_text() != "mine"


@pytest.mark.parametrize("option", ["--target-latency", "--timeout", "--grace-period"])
def test_a_duration_without_unit_is_refused_naming_the_units(
    tiny_space_path: Path, archlab_home: Path, option: str
) -> None:
    result = runner.invoke(
        app, ["search", "--space", str(tiny_space_path), option, "60"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "'60' has no unit" in said and "ms, s, m, min, h" in said and "60ms or 60s" in said
    assert not archlab_home.exists(), "no study may be created for a bare number"


def _fake_evaluate(latencies: list[float]) -> Any:
    """An evaluation that returns the given latencies in turn (and estimates that grow with them),
    so a CLI search takes no time and its counts are known."""
    calls: list[int] = []

    def evaluate(*args: Any, **kwargs: Any) -> dict[str, Any]:
        latency = latencies[len(calls) % len(latencies)]
        calls.append(1)
        estimate = DEFAULT_OBJECTIVES[0]
        return {"params": 1000, "macs": 10**6, estimate: latency, "latency_ms": latency}

    return evaluate


def _search_lines(tiny_space_path: Path, target: str, n: int, columns: int = 100) -> list[str]:
    result = runner.invoke(
        app,
        ["search", "--space", str(tiny_space_path), "--target-latency", target, "--sampler",
         "random", "--n-trials", str(n)],
        env={"COLUMNS": str(columns)},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_search_says_how_many_trials_were_within_and_over_the_target(
    tiny_space_path: Path, archlab_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import archlab.search.loop as loop

    monkeypatch.setattr(loop, "evaluate_arch", _fake_evaluate([5.0, 50.0, 500.0]))
    lines = _search_lines(tiny_space_path, "100ms", 3)
    assert "Latency target 100 ms: 2 within, 1 over." in lines
    assert "3 new trials; study now has 3 (3 complete, 0 pruned, 0 failed)." in lines


def test_a_target_nothing_reaches_says_so_in_one_short_line(
    tiny_space_path: Path, archlab_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import archlab.search.loop as loop

    monkeypatch.setattr(loop, "evaluate_arch", _fake_evaluate([12.0]))
    lines = _search_lines(tiny_space_path, "1s", 1, columns=300)  # lines as printed, unwrapped
    assert (
        "All 1 trial within 1 s (slowest 12 ms): lower it, or use --latency-model "
        "SLOWER_DEVICE.json" in lines
    )
    assert "1 new trial; study now has 1 (1 complete, 0 pruned, 0 failed)." in lines
    closing = lines[lines.index("1 new trial; study now has 1 (1 complete, 0 pruned, 0 failed).") :]
    # the estimate's evidence is one full statement, wrapped by the terminal
    shown_apart = [line.startswith(("Storage:", "Outputs:")) or " on tiny_plgvit: " in line
                   for line in closing]  # fmt: skip
    assert all(len(line) < 100 for line, apart in zip(closing, shown_apart) if not apart)
    lines = _search_lines(tiny_space_path, "5ms", 1, columns=300)  # another study: SPACE@5ms
    said = "No trial within the 5 ms target (fastest 12 ms): raise it or search a smaller space."
    assert said in lines


def test_search_front_table_names_the_estimate_and_shows_the_spread(
    tiny_space_path: Path, archlab_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import archlab.search.loop as loop

    monkeypatch.setattr(loop, "evaluate_arch", _fake_evaluate([5.0, 50.0]))
    lines = _search_lines(tiny_space_path, "1s", 2)
    header = next(line for line in lines if "trial" in line and "MACs" in line)
    assert f"{DEFAULT_OBJECTIVES[0]} (estimate)" in header and "latency ms ± IQR" in header
    assert "feasible" not in header and all(len(line) <= 100 for line in lines)
    progress = next(line for line in lines if line.startswith("trial 2/2"))
    assert "front 2" in progress and f"best {DEFAULT_OBJECTIVES[0]} within target 50" in progress


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--space", "no-such-space"], "no-such-space"),
        (["--storage", "nosuchdb://host/db"], "cannot open storage"),
    ],
)
def test_search_checks_space_and_storage_before_the_banner(
    archlab_home: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], said: str
) -> None:
    import archlab.search.loop as loop

    monkeypatch.setattr(loop, "evaluate_arch", _fake_evaluate([5.0]))
    result = runner.invoke(app, ["search", "--n-trials", "1", *args], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert said in result.output and "Searching" not in result.output


def test_resuming_with_other_settings_is_refused_before_the_banner(
    tiny_space_path: Path, archlab_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import archlab.search.loop as loop

    monkeypatch.setattr(loop, "evaluate_arch", _fake_evaluate([5.0]))
    _search_lines(tiny_space_path, "1s", 1)
    again = runner.invoke(
        app,
        ["search", "--space", str(tiny_space_path), "--study", "tiny_plgvit@1000ms",
         "--target-latency", "2s"],
        env={"COLUMNS": "300"},
    )  # fmt: skip
    assert again.exit_code == 2 and "created with other settings" in again.output
    assert "Searching" not in again.output


@pytest.mark.parametrize(
    "args",
    [
        ["spaces", "--format", "csv"],
        ["pareto", "--study", "x", "--format", "markdown"],
        ["estimate", "--space", "plgvit", "--arch", "{}", "--format", "xml"],
    ],
)
def test_a_format_a_command_cannot_write_is_refused(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "Invalid value for '--format'" in result.output

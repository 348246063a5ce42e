from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archlab.cli import app, parse_duration

runner = CliRunner()


@pytest.mark.parametrize(
    ("text", "seconds"), [("1s", 1.0), ("250ms", 0.25), ("0.5s", 0.5), ("2m", 120.0), ("3", 3.0)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["fast", "-1s", "0ms", "1 parsec"])
def test_parse_duration_rejects_nonsense(text: str) -> None:
    with pytest.raises(Exception, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("command", [[], ["search"], ["pareto"], ["report"], ["spaces"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_search_help_explains_every_option() -> None:
    out = runner.invoke(app, ["search", "--help"], env={"COLUMNS": "200"}).output
    for option in ("--space", "--target-latency", "--n-trials", "--timeout", "--study", "--storage",
                   "--sampler", "--seed", "--threads", "--resolution", "--objectives"):
        assert option in out


def test_search_then_pareto_end_to_end(tiny_space_path: Path, archlab_home: Path) -> None:
    result = runner.invoke(app, ["search", "--space", str(tiny_space_path), "--target-latency",
                                 "250ms", "--n-trials", "2", "--study", "cli"])
    assert result.exit_code == 0, result.output
    assert "Feasible Pareto front" in result.output
    assert str(archlab_home / "archlab.db") in result.output
    assert (archlab_home / "archlab.db").exists()
    assert (archlab_home / "cli" / "spec.yaml").exists() and (archlab_home / "cli" / "pareto.csv").exists()

    as_json = runner.invoke(app, ["pareto", "--study", "cli", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    front = json.loads(as_json.output)["pareto"]
    assert front, "two fast tiny models under 250 ms must give a non-empty front"
    for row in front:
        assert {"number", "params", "macs", "feasible", "objective:naswot", "objective:latency_ms"} <= set(row)
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
    result = runner.invoke(app, ["report", "--space", "plgvit", "--preset", "lw-plgvit-r",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"params", "macs", "thop_macs", "latency_ms", "published", "config"} <= set(data)
    assert data["published"]["name"] == "LW-PLG-ViT-R" and data["reconstructed"] is True
    assert data["latency_ms"] > 0 and data["unsupported_ops"] == {}
    from archlab import build_model
    from archlab.flops import count_params

    assert count_params(build_model(data["config"])) == data["params"]


def test_report_resolution_changes_macs() -> None:
    def macs(res: str) -> int:
        out = runner.invoke(app, ["report", "--preset", "lw-plgvit-r", "--no-latency", "--format",
                                  "json", "--resolution", res]).output
        return json.loads(out)["macs"]

    assert macs("256") > macs("224")


def test_report_table_and_errors() -> None:
    table = runner.invoke(app, ["report", "--preset", "plgvit-tiny", "--no-latency"],
                          env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "published 27.00M" in table.output and "thop" in table.output
    wrong = runner.invoke(app, ["report", "--preset", "lw-plgvit-a", "--space", "sbcformer"])
    assert wrong.exit_code == 2 and "belongs to space 'plgvit'" in wrong.output
    unknown = runner.invoke(app, ["report", "--preset", "resnet50"])
    assert unknown.exit_code == 2 and "unknown preset" in unknown.output
    bad_res = runner.invoke(app, ["report", "--preset", "lw-plgvit-a", "--resolution", "64",
                                  "--no-latency"])
    assert bad_res.exit_code == 2 and "exceeds the stage's" in bad_res.output


def test_report_from_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "model.yaml"
    cfg.write_text("preset: lw_plgvit_r\nexpand_dim: 256\n")
    result = runner.invoke(app, ["report", "--config", str(cfg), "--no-latency", "--format", "json"])
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

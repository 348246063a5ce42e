from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from typer.testing import CliRunner

import archlab
from archlab.cli import app
from archlab.report.export import ExportError, ExportResult, export_trial, pick_name
from archlab.report.files import OverwriteError
from archlab.search.loop import run_search
from archlab.space import load_space
from archlab.study.settings import SearchSpec
from archlab.study.storage import load_study

optuna.logging.set_verbosity(optuna.logging.WARNING)
runner = CliRunner()


@pytest.fixture(scope="module")
def study_url(
    tmp_path_factory: pytest.TempPathFactory, quick_spec: Callable[..., SearchSpec]
) -> str:
    """A two-trial study on the tiny space, plus one failed trial."""
    url = f"sqlite:///{tmp_path_factory.mktemp('export') / 'study.db'}"
    space = Path(__file__).parent / "data" / "tiny_plgvit.yaml"
    result = run_search(quick_spec(space, url, n_trials=2))
    result.study.add_trial(
        optuna.create_trial(
            state=optuna.trial.TrialState.FAIL, user_attrs={"fail_reason": "RuntimeError: boom"}
        )
    )
    return url


@pytest.fixture(scope="module")
def exported(study_url: str, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return export_trial("t", 1, tmp_path_factory.mktemp("pick"), storage=study_url)


def _probe(resolution: int) -> torch.Tensor:
    return torch.randn(2, 3, resolution, resolution, generator=torch.Generator().manual_seed(3))


def test_export_writes_the_four_files(exported: ExportResult) -> None:
    assert sorted(p.name for p in exported.files) == [
        "config.yaml",
        "model.onnx",
        "model.pt",
        "report.md",
    ]
    assert all(p.is_file() and p.parent == exported.out for p in exported.files)


def test_exported_config_and_weights_rebuild_the_trials_model(
    exported: ExportResult, study_url: str, tiny_space_path: Path
) -> None:
    trial = load_study("t", study_url).trials[1]
    rebuilt = archlab.build_model(exported.out / "config.yaml").eval()
    assert sum(p.numel() for p in rebuilt.parameters()) == trial.user_attrs["params"]
    rebuilt.load_state_dict(torch.load(exported.out / "model.pt", weights_only=True))
    # The measured model: the trial's arch built with the study's seed, as the search did.
    space = load_space(tiny_space_path)
    torch.manual_seed(1)
    measured = space.family.build(space.to_cfg(trial.params)).eval()
    x = _probe(space.resolution)
    with torch.inference_mode():
        assert torch.equal(rebuilt(x), measured(x))


def test_exported_onnx_matches_pytorch(exported: ExportResult) -> None:
    import onnx
    import onnxruntime

    onnx.checker.check_model(onnx.load(str(exported.out / "model.onnx")))
    model = archlab.build_model(exported.out / "config.yaml").eval()
    model.load_state_dict(torch.load(exported.out / "model.pt", weights_only=True))
    x = _probe(64)[:1]
    session = onnxruntime.InferenceSession(
        str(exported.out / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    got = session.run(None, {"image": x.numpy()})[0]
    with torch.inference_mode():
        want = model(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    assert exported.onnx_max_abs_diff is not None and exported.onnx_max_abs_diff < 1e-3


def test_report_has_flop_table_and_the_trials_measured_latency(
    exported: ExportResult, study_url: str
) -> None:
    trial = load_study("t", study_url).trials[1]
    report = (exported.out / "report.md").read_text()
    assert f"{trial.user_attrs['params']:,}" in report and f"{trial.user_attrs['macs']:,}" in report
    assert f"Median **{trial.user_attrs['latency_ms']:.2f} ms**" in report
    assert "## Per-module params and MACs" in report and "| stages.3 | Sequential |" in report
    assert exported.latency_ms == trial.user_attrs["latency_ms"]


def test_default_folder_is_a_hat_style_pick(study_url: str, archlab_home: Path) -> None:
    result = export_trial("t", 0, storage=study_url, onnx=False)
    assert result.out.parent == archlab_home / "t" / "picks"
    assert re.fullmatch(r"plgvit@[0-9.]+ms_[0-9.]+gmacs", result.out.name)
    assert sorted(p.name for p in result.files) == ["config.yaml", "model.pt", "report.md"]


def test_pick_name_says_where_the_model_sits() -> None:
    assert pick_name("plgvit", 11.69, 4_161_728) == "plgvit@11.7ms_0.00416gmacs"
    assert pick_name("plgvit", 123.4, 1_500_000_000) == "plgvit@123ms_1.5gmacs"
    assert pick_name("lw_plgvit_r", None, 1_500_000_000) == "lw_plgvit_r_1.5gmacs"


def test_bad_trial_numbers_are_explained(study_url: str, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"study 't' has no trial 99; it has trials 0\.\.2"):
        export_trial("t", 99, tmp_path, storage=study_url)
    with pytest.raises(ExportError, match=r"trial 2 .* is FAIL \(RuntimeError: boom\)"):
        export_trial("t", 2, tmp_path, storage=study_url)
    result = runner.invoke(app, ["export", "--study", "t", "--trial", "99", "--storage", study_url])
    assert result.exit_code == 2 and "no trial 99" in result.output
    assert "Traceback" not in result.output


def test_missing_onnx_extra_is_explained(
    study_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    result = export_trial("t", 0, tmp_path, storage=study_url)
    assert "install the onnx extra" in result.onnx_note
    assert not (tmp_path / "model.onnx").exists() and (tmp_path / "config.yaml").exists()


def test_export_cli_writes_a_preset(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["export", "--preset", "lw-plgvit-r", "--out", str(tmp_path), "--no-latency", "--no-onnx"],
    )
    assert result.exit_code == 0, result.output
    model = archlab.build_model(tmp_path / "config.yaml")
    preset = archlab.build_model({"preset": "lw_plgvit_r"})
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in preset.parameters())
    assert "preset lw_plgvit_r" in (tmp_path / "report.md").read_text()


def test_export_cli_needs_a_trial_or_a_preset() -> None:
    result = runner.invoke(app, ["export", "--study", "t"])
    assert result.exit_code == 2 and "--study NAME --trial N" in result.output


def test_export_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    args = ["export", "--preset", "lw-plgvit-r", "--no-latency", "--no-onnx"]
    first = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert first.exit_code == 0, first.output
    (tmp_path / "report.md").write_text("mine")
    again = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert again.exit_code == 2 and "pass --force to overwrite" in again.output
    assert (tmp_path / "report.md").read_text() == "mine"
    forced = runner.invoke(app, [*args, "--out", str(tmp_path), "--force"])
    assert forced.exit_code == 0, forced.output
    assert "preset lw_plgvit_r" in (tmp_path / "report.md").read_text()


def test_export_out_must_be_a_folder_in_an_existing_one(tmp_path: Path) -> None:
    args = ["export", "--preset", "lw-plgvit-r", "--no-latency", "--no-onnx", "--out"]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    bad = runner.invoke(app, [*args, str(a_file)])
    assert bad.exit_code == 2 and "is a file, not a folder" in bad.output
    bad = runner.invoke(app, [*args, str(tmp_path / "no" / "such" / "dir")])
    assert bad.exit_code == 2 and "does not exist" in bad.output
    assert not (tmp_path / "no").exists()


def test_exporting_a_trial_twice_needs_force(study_url: str, tmp_path: Path) -> None:
    export_trial("t", 0, tmp_path, storage=study_url, onnx=False)
    with pytest.raises(OverwriteError, match="config.yaml, model.pt, report.md"):
        export_trial("t", 0, tmp_path, storage=study_url, onnx=False)
    export_trial("t", 0, tmp_path, storage=study_url, onnx=False, force=True)


def test_export_cli_loads_an_official_checkpoint_into_the_preset(tmp_path: Path) -> None:
    from archlab.models.pretrained import to_official

    torch.manual_seed(7)
    source = archlab.build_model({"preset": "sbcformer_xs"})
    torch.save(to_official(source), tmp_path / "official.pth")
    out = tmp_path / "out"
    args = ["export", "--preset", "sbcformer-xs", "--out", str(out), "--no-latency", "--no-onnx"]
    result = runner.invoke(app, [*args, "--weights", str(tmp_path / "official.pth")])
    assert result.exit_code == 0, result.output
    saved = torch.load(out / "model.pt", weights_only=True)
    assert all(torch.equal(v, saved[k]) for k, v in source.state_dict().items())
    assert "official checkpoint" in (out / "report.md").read_text()


def test_export_cli_refuses_a_checkpoint_that_does_not_fit(tmp_path: Path) -> None:
    torch.save({"head.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    args = ["export", "--preset", "sbcformer-xs", "--out", str(tmp_path / "out"), "--no-latency"]
    result = runner.invoke(app, [*args, "--no-onnx", "--weights", str(tmp_path / "bad.pth")])
    assert result.exit_code == 2 and "414 missing" in result.output
    assert "head.weight (3,) ≠ (1000, 288)" in result.output

"""The dashboard: every view under AppTest on a tiny real study, the CLI command, and one run in a
real browser (Chromium through Playwright) that checks the Pareto chart and a trial's details."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from ci import missing, require_module
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from archlab.cli import app as cli_app
from archlab.dashboard.data import objective_label
from archlab.dashboard.launch import STORAGE_ENV, dashboard_command
from archlab.study.objectives import DEFAULT_OBJECTIVES
from archlab.study.storage import load_study

APP = Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_S = 120  # one AppTest run may build a model and count its MACs on a busy CPU
PAGES = [  # every page of the app
    "views/overview.py",
    "views/pareto.py",
    "views/trial.py",
    "views/compare.py",
    "views/health.py",
]

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def study_env(dashboard_study: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(STORAGE_ENV, dashboard_study.url)
    monkeypatch.setenv("ARCHLAB_HOME", str(dashboard_study.home))
    return dashboard_study


def _trials(study: Any) -> list[optuna.trial.FrozenTrial]:
    return load_study(study.name, study.url).get_trials(deepcopy=False)


def _estimate(study: Any) -> str:
    """The accuracy estimate the fixture study optimises (its first objective)."""
    return str(load_study(study.name, study.url).metric_names[0])


def _feasible(study: Any) -> list[optuna.trial.FrozenTrial]:
    return [
        t
        for t in _trials(study)
        if t.state.name == "COMPLETE" and t.system_attrs["constraints:latency"] <= 0
    ]


def _open(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S).run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(elements: Any) -> list[str]:
    return [str(e.value) for e in elements]


def _figure(at: AppTest, index: int = 0) -> dict[str, Any]:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


def _array(value: Any) -> list[Any]:
    """A trace's data array: plotly stores numeric ones base64-encoded (``dtype``, ``bdata``)."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return list(value)


def test_overview_lists_the_study_with_trials_per_state(study_env: Any) -> None:
    at = _open()
    rows = at.dataframe[0].value
    row = rows[rows["study"] == study_env.name].iloc[0]
    assert row["space"] == "tiny_plgvit" and row["family"] == "plgvit"
    assert row["trials"] == 4 and row["complete"] == 3 and row["fail"] == 1
    assert row["target_ms"] == pytest.approx(20.0)
    assert row["objectives"] == ", ".join(DEFAULT_OBJECTIVES)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row["last_complete"])  # to the second
    assert at.sidebar.selectbox[0].value == study_env.name
    assert any(m.label == "Trials" and m.value == "4" for m in at.metric)


def _presets(figure: dict[str, Any]) -> list[dict[str, Any]]:
    """The published variants' traces: stars on the axes, arrows for those beyond them."""
    return [t for t in figure["data"] if t.get("name", "").startswith("presets")]


def test_pareto_plots_every_measured_trial_and_the_measured_preset(study_env: Any) -> None:
    at = _open("views/pareto.py")
    figure = _figure(at)
    presets = _presets(figure)
    trials = [t for t in figure["data"] if t.get("mode") == "markers" and t not in presets]
    plotted = sorted(n for t in trials for n, *_ in t["customdata"])
    complete = [t.number for t in _trials(study_env) if t.state.name == "COMPLETE"]
    assert plotted == sorted(complete)  # the failed trial has no metrics to plot
    shown = [name for t in presets for name, _ in t["customdata"]]
    assert shown == ["lw_plgvit_r*†"]  # reconstructed, windows adapted to 64 px
    assert any("not plotted: 1 failed (no measurements)" in c for c in _texts(at.caption))
    assert [b.label for b in at.button] == ["Measure 4 published variant(s) on this CPU"]
    table = at.dataframe[0].value  # the presets' table
    assert table["published variant"].tolist() == ["lw_plgvit_r*†"]
    if _feasible(study_env):  # the table of what each extra millisecond buys
        gains = at.dataframe[1].value
        assert set(gains["trial"]) <= {t.number for t in _feasible(study_env)}
        assert "extra ms" in gains.columns
    else:
        assert any("the front is empty" in t for t in _texts(at.info))


def test_pareto_offers_memory_and_spread_axes_and_a_log_x(study_env: Any) -> None:
    at = _open("views/pareto.py")
    options = at.selectbox(key="pareto_x").options
    assert {"peak memory (bytes)", "latency IQR (ms)"} <= set(options)
    at.selectbox(key="pareto_y").set_value("peak_memory_bytes")
    at.toggle(key="pareto_log_x").set_value(True).run()
    assert not at.exception
    layout = _figure(at)["layout"]
    assert layout["xaxis"]["type"] == "log" and layout["yaxis"]["ticksuffix"] == "B"


def test_pareto_shows_the_selected_trial_beside_the_chart(study_env: Any) -> None:
    trial = next(t for t in _trials(study_env) if t.state.name == "COMPLETE")
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.session_state["selected_trial"] = trial.number
    at.run()
    at.switch_page("views/pareto.py").run()
    assert not at.exception
    assert any(f"Trial {trial.number}" in t for t in _texts(at.markdown))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["latency (ms, median)"] == f"{trial.user_attrs['latency_ms']:.2f} ms"
    assert metrics["peak memory (bytes)"].endswith("B")


def test_pareto_axes_and_colour_can_be_changed(study_env: Any) -> None:
    at = _open("views/pareto.py")
    at.selectbox(key="pareto_x").set_value("macs")
    at.selectbox(key="pareto_y").set_value("params")
    at.selectbox(key="pareto_colour").set_value("ffn").run()
    assert not at.exception
    figure = _figure(at)
    assert figure["layout"]["xaxis"]["title"]["text"] == "MACs"
    assert figure["layout"]["coloraxis"]["colorbar"]["ticktext"] == ["ccf", "ccf_plus"]
    assert "latency target is drawn only when latency is on an axis" in " ".join(_texts(at.caption))


def test_trial_page_shows_metrics_config_modules_and_downloads(study_env: Any) -> None:
    trial = next(t for t in _trials(study_env) if t.state.name == "COMPLETE")
    at = _open("views/trial.py")
    at.selectbox(key="trial_pick").set_value(trial.number).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["latency (ms, median)"] == f"{trial.user_attrs['latency_ms']:.2f} ms"
    assert metrics["latency IQR (ms)"] == f"{trial.user_attrs['latency_iqr_ms']:.2f} ms"
    assert metrics["Timed runs"] == str(trial.user_attrs["latency_runs"])
    estimate = _estimate(study_env)
    shown = float(metrics[objective_label(estimate)])  # to 3 or 4 significant digits
    assert shown == pytest.approx(trial.user_attrs[estimate], rel=5e-3)
    assert metrics["peak memory (bytes)"].endswith("B") and metrics["On the front"] in ("yes", "no")
    config = at.code[0].value
    assert "family: plgvit" in config
    for knob, value in trial.params.items():
        if knob.startswith("stages.") and knob.endswith(".dim"):
            assert f"dim: {value}" in config
    modules = at.dataframe[0].value
    assert {"stages.0", "stages.3", "head"} <= set(modules["module"])
    assert len(at.get("download_button")) == 2  # config and report; the export on request
    assert _figure(at)["data"][0]["y"][:1] == ["tokenizer"]  # the per-stage chart
    assert modules["params"].iloc[0].endswith("k")  # counts as the CLI writes them


def test_trial_page_shows_the_trained_accuracy_beside_the_estimates(
    study_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'trained.db'}"  # a copy: the shared study stays untrained
    optuna.copy_study(from_study_name=study_env.name, from_storage=study_env.url, to_storage=url)
    trial = next(t for t in _trials(study_env) if t.state.name == "COMPLETE")
    trained = {"accuracy": 0.88795, "accuracy_std": 0.00106, "budget": "b", "data": "d"}
    load_study(study_env.name, url).set_user_attr(f"trained:{trial.number}", trained)
    monkeypatch.setenv(STORAGE_ENV, url)
    at = _open("views/trial.py")
    at.selectbox(key="trial_pick").set_value(trial.number).run()
    assert not at.exception
    tiles = {m.label: m for m in at.metric}
    shown = tiles[objective_label("trained_accuracy")]
    assert shown.value == "0.8880" and "spread (SD) 0.0011" in shown.help
    assert objective_label(_estimate(study_env)) in tiles  # the estimate stays beside it


def test_pareto_on_trained_accuracy_shows_how_the_estimate_ranked_them(
    study_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'trained.db'}"  # a copy: the shared study stays untrained
    optuna.copy_study(from_study_name=study_env.name, from_storage=study_env.url, to_storage=url)
    study = load_study(study_env.name, url)
    estimate = _estimate(study_env)
    done = sorted(
        (t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: t.values[0]
    )
    for rank, trial in enumerate(done):  # accuracy in the estimate's order: ρ +1
        outcome = {"accuracy": 0.8 + 0.01 * rank, "accuracy_std": 0.001, "budget": "b", "data": "d"}
        study.set_user_attr(f"trained:{trial.number}", outcome)
    monkeypatch.setenv(STORAGE_ENV, url)
    at = _open("views/pareto.py")
    assert at.selectbox(key="pareto_y").value == "trained_accuracy"  # the default once trained
    labels = [e.label for e in at.expander]
    assert f"How {estimate} ranked the {len(done)} trained trials" in labels
    assert any(f"Spearman ρ +1.00 over {len(done)} trained trials" in c for c in _texts(at.caption))


def test_trial_page_times_stages_and_exports_on_request(study_env: Any) -> None:
    trial = next(t for t in _trials(study_env) if t.state.name == "COMPLETE")
    at = _open("views/trial.py")
    at.selectbox(key="trial_pick").set_value(trial.number).run()
    at.button(key="time_stages").click().run()
    assert not at.exception
    bars = {bar["name"]: bar for bar in _figure(at)["data"]}
    assert set(bars) == {"parameters", "MACs", "latency"}
    assert all(text.endswith(" ms") for text in bars["latency"]["text"])
    at.button(key="export_trial").click().run()
    assert not at.exception
    names = [b.proto.label for b in at.get("download_button")]
    assert "model.pt" in names
    if "model.onnx" not in names:  # some families' ops cannot be exported: the page says why
        assert any("No model.onnx for this trial" in t for t in _texts(at.warning))


def test_trial_page_shows_why_onnx_failed(study_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import archlab.report.export as export

    def fail(*args: Any, **kwargs: Any) -> None:
        raise export.ExportError("ONNX export failed (RuntimeError: unsupported op fft_rfft2)")

    monkeypatch.setattr(export, "_export_onnx", fail)
    trial = [t for t in _trials(study_env) if t.state.name == "COMPLETE"][-1]
    at = _open("views/trial.py")
    at.selectbox(key="trial_pick").set_value(trial.number).run()
    at.button(key="export_trial").click().run()
    assert not at.exception
    assert any("unsupported op fft_rfft2" in t for t in _texts(at.warning))
    names = [b.proto.label for b in at.get("download_button")]
    assert "model.pt" in names and "model.onnx" not in names


def test_trial_page_explains_a_failed_trial(study_env: Any) -> None:
    failed = next(t for t in _trials(study_env) if t.state.name == "FAIL")
    at = _open("views/trial.py")
    at.selectbox(key="trial_pick").set_value(failed.number).run()
    assert not at.exception
    assert "out of memory: simulated" in " ".join(_texts(at.warning))
    assert "family: plgvit" in at.code[0].value  # its config still rebuilds


def test_compare_shows_only_the_knobs_that_differ(study_env: Any) -> None:
    first, second = [t for t in _trials(study_env) if t.state.name == "COMPLETE"][:2]
    differ = sorted(k for k in first.params if first.params[k] != second.params[k])
    at = _open("views/compare.py")
    at.multiselect(key="compare_pick").set_value([first.number, second.number]).run()
    assert not at.exception
    metrics, diff = at.dataframe[0].value, at.dataframe[1].value if differ else None
    assert list(metrics.columns) == ["metric", f"trial {first.number}", f"trial {second.number}"]
    assert objective_label(_estimate(study_env)) in set(metrics["metric"])  # named as elsewhere
    if differ:
        assert sorted(diff["knob"]) == differ
    else:
        assert any("same value for every knob" in t for t in _texts(at.info))


def test_health_states_the_reference_point_and_too_few_trials_for_importance(
    study_env: Any,
) -> None:
    at = _open("views/health.py")
    captions = " ".join(_texts(at.caption))
    if _feasible(study_env):
        assert f"Reference point: {objective_label(_estimate(study_env))} = " in captions
        assert "latency (ms, median) = " in captions and "latency_ms" not in captions
    else:
        assert any("No feasible finished trial yet" in t for t in _texts(at.info))
    assert any("needs at least 5 complete trials; this study has 3" in t for t in _texts(at.info))
    assert at.multiselect(key="parallel_knobs").value  # the first knobs, more can be added
    states = next(
        f
        for f in (json.loads(c.proto.spec) for c in at.get("plotly_chart"))
        if f["data"][0].get("type") == "bar"
    )
    counts = dict(zip(_array(states["data"][0]["x"]), _array(states["data"][0]["y"])))
    assert counts["failed"] == 1 and sum(counts.values()) == 4


@pytest.mark.parametrize("page", ["views/overview.py", "views/pareto.py", "views/health.py"])
def test_live_refresh_reruns_the_page_without_error(study_env: Any, page: str) -> None:
    at = _open(page)
    at.sidebar.toggle(key="live").set_value(True).run()
    assert not at.exception and at.session_state["live"] is True


def test_measure_button_adds_the_missing_presets(
    study_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import archlab.search.references as references

    home = tmp_path / "studies"  # a copy: the other tests keep their one measured preset
    shutil.copytree(study_env.home, home)
    monkeypatch.setenv("ARCHLAB_HOME", str(home))
    fake = {
        "params": 1e6,
        "macs": 1e8,
        "latency_ms": 5.0,
        "latency_iqr_ms": 0.1,
        "latency_ci_rel": 0.01,
        "latency_runs": 10,
        _estimate(study_env): -1.5,  # the accuracy estimate the study optimises
    }
    monkeypatch.setattr(references, "evaluate_arch", lambda *a, **k: fake)
    at = _open("views/pareto.py")
    at.button(key="measure_refs").click().run()
    assert not at.exception and not at.button
    presets = _presets(_figure(at))
    assert sum(len(_array(t["x"])) for t in presets) == 5


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize(
    "storage, message",
    [
        ("nonsense", "is not a storage URL"),
        ("sqlite:////nonexistent/archlab.db", "no SQLite file at /nonexistent/archlab.db"),
    ],
)
def test_bad_storage_gives_a_message_not_a_traceback(
    page: str, storage: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STORAGE_ENV, storage)
    at = _open(page)
    assert any(message in t for t in _texts(at.error) + _texts(at.sidebar.error))


@pytest.mark.parametrize("page", PAGES)
def test_empty_storage_says_how_to_start(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    optuna.storages.RDBStorage(url)  # a valid storage without studies
    monkeypatch.setenv(STORAGE_ENV, url)
    at = _open(page)
    assert any("archlab search" in t for t in _texts(at.info))


def test_study_without_finished_trials_is_explained(
    tiny_space_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from archlab.search.loop import create_or_resume
    from archlab.study.settings import SearchSpec

    url = f"sqlite:///{tmp_path / 'new.db'}"
    create_or_resume(SearchSpec(space=str(tiny_space_path), storage=url, study_name="new"))
    monkeypatch.setenv(STORAGE_ENV, url)
    monkeypatch.setenv("ARCHLAB_HOME", str(tmp_path / "studies"))
    for page, message in [
        ("views/pareto.py", "has no finished trial with measurements yet"),
        ("views/trial.py", "has no trials yet"),
        ("views/compare.py", "comparing needs two"),
        ("views/health.py", "has no trials yet"),
    ]:
        at = _open(page)
        assert any(message in t for t in _texts(at.info)), page


def test_dashboard_command_rejects_a_bad_storage_without_traceback(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli_app, ["dashboard", "--storage", "nonsense"])
    assert result.exit_code == 2 and "is not a storage URL" in result.output
    missing = f"sqlite:///{tmp_path / 'missing.db'}"
    result = runner.invoke(cli_app, ["dashboard", "--storage", missing])
    assert result.exit_code == 2 and "no SQLite file" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "missing.db").exists()


def test_dashboard_command_runs_streamlit_headless_without_usage_statistics() -> None:
    command = dashboard_command(8601, "127.0.0.1")
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4] == str(APP)
    flags = dict(zip(command[5::2], command[6::2]))
    assert flags["--server.headless"] == "true" and flags["--server.port"] == "8601"
    assert flags["--browser.gatherUsageStats"] == "false"
    with pytest.raises(ValueError, match="port must be between 1 and 65535"):
        dashboard_command(70000)


# --- in a real browser -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(port: int, server: subprocess.Popen[bytes], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the dashboard exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"the dashboard did not answer on port {port} within {timeout_s} s")


@pytest.fixture
def dashboard_server(dashboard_study: Any) -> Iterator[str]:
    """``archlab dashboard`` on a free local port, serving the fixture study."""
    port = _free_port()
    env = {**os.environ, "ARCHLAB_HOME": str(dashboard_study.home)}
    command = [
        sys.executable,
        "-m",
        "archlab.cli",
        "dashboard",
        "--storage",
        dashboard_study.url,
        "--port",
        str(port),
        "--address",
        "127.0.0.1",
    ]
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_healthy(port, server)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()  # archlab dashboard stops its Streamlit server on SIGTERM
        server.wait(timeout=30)


def _browser(playwright: Any) -> Any:
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )


def _settled(page: Any) -> None:
    """Wait until Streamlit has finished running the script (its status widget is gone)."""
    page.wait_for_timeout(500)
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=90_000)


def _preset_latency(study: Any) -> float:
    from archlab.search.references import cached_references
    from archlab.study.record import load_record

    record = load_record(load_study(study.name, study.url))
    measured = cached_references(record, study.home / study.name).measured
    return float(measured[study.reference]["latency_ms"])


def _outside(urls: list[str]) -> list[str]:
    """The requested URLs that leave this machine (data: and blob: URLs stay in the page)."""
    local = {"127.0.0.1", "localhost", "[::1]"}
    return [
        u
        for u in urls
        if urllib.parse.urlsplit(u).scheme not in ("data", "blob")
        and urllib.parse.urlsplit(u).hostname not in local
    ]


def _check_fitted_axes(page: Any, study: Any, latencies: list[float]) -> None:
    """The x axis fits the trials; the preset is a star within it or an arrow on its edge."""
    layout, traces = page.evaluate(
        "() => { const gd = document.querySelector('.js-plotly-plot');"
        " return [gd.layout, gd.data.map(t => ({name: t.name, x: Array.from(t.x || [])}))]; }"
    )
    labels = [a["text"] for a in layout.get("annotations", [])]
    lo, hi = layout["xaxis"]["range"]
    assert lo <= min(latencies) and max(latencies) <= hi
    preset_ms = _preset_latency(study)
    span = max(latencies) - min(latencies)
    arrows = [t for t in traces if t["name"].startswith("presets beyond the axes")]
    # the latency target's line, when drawn, stretches the axis too: a preset short of it is
    # inside the axis however far it lies from the trials (how near the trials come to the
    # target depends on how fast this machine ran them)
    target_lines = [
        float(shape["x0"])
        for shape in layout.get("shapes", [])
        if shape.get("x0") is not None and shape.get("x0") == shape.get("x1")
    ]
    far = preset_ms > max(latencies) + 0.5 * span + 1e-9  # not worth stretching the axis for
    if far and not any(line >= preset_ms for line in target_lines):
        assert hi < preset_ms and len(arrows) == 1
        assert lo < arrows[0]["x"][0] < hi
        assert any(t.startswith(f"{preset_ms:.2f} ms") for t in labels), labels
    else:
        assert not arrows and hi >= preset_ms


def _check_hover(page: Any, point: Any) -> None:
    """Hovering a trial names the axes with their units, dark text on white."""
    box = point.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    label = page.locator(".hoverlayer .hovertext")
    label.first.wait_for(timeout=10_000)
    text = label.first.text_content()
    assert "latency (ms, median): " in text and " ms" in text and "latency_ms" not in text
    fill = label.first.locator("path").first.evaluate("e => getComputedStyle(e).fill")
    colour = label.first.locator("text").first.evaluate("e => getComputedStyle(e).fill")
    assert fill == "rgb(255, 255, 255)" and colour == "rgb(17, 17, 17)"


@pytest.mark.browser
def test_dashboard_in_chromium(dashboard_study: Any, dashboard_server: str) -> None:
    if not CHROMIUM.exists():
        missing("Chromium at /usr/bin/chromium", "apt-get install chromium chromium-driver")
    require_module("playwright", "pip install -e '.[test]'")
    from playwright.sync_api import sync_playwright

    trials = _trials(dashboard_study)
    measured = [t for t in trials if "latency_ms" in t.user_attrs]
    ARTIFACTS.mkdir(exist_ok=True)
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("request", lambda request: requested.append(request.url))
        page.goto(f"{dashboard_server}/pareto?study={dashboard_study.name}")
        chart = page.locator(".js-plotly-plot").first
        chart.wait_for(timeout=90_000)
        _settled(page)
        points = page.locator(".js-plotly-plot .scatterlayer .point")
        assert points.count() == len(measured) + 1  # the trials and one measured preset
        assert page.locator(".js-plotly-plot .scatterlayer .textpoint").count() <= 1  # no names
        _check_fitted_axes(page, dashboard_study, [t.user_attrs["latency_ms"] for t in measured])
        _check_hover(page, points.first)
        page.screenshot(path=str(ARTIFACTS / "dashboard_pareto.png"))

        # select a trial by clicking its point: the chart's drag layer receives the click
        box = points.first.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        heading = page.locator("h4").filter(has_text="Trial ")
        heading.first.wait_for(timeout=60_000)
        number = int(heading.first.inner_text().split()[1])
        trial = next(t for t in measured if t.number == number)
        _settled(page)
        link = page.get_by_role("link", name="Details & downloads")
        assert page.evaluate("() => window.scrollY") == 0
        bottom = link.bounding_box()
        assert bottom["y"] + bottom["height"] <= 900  # the summary is above the fold
        page.screenshot(path=str(ARTIFACTS / "dashboard_pareto_selected.png"))

        link.click()  # to the Trial page
        _settled(page)
        latency = f"{trial.user_attrs['latency_ms']:.2f} ms"
        page.get_by_text(latency, exact=True).first.wait_for(timeout=60_000)
        # the config and the module table come once the model is built and its MACs counted
        page.locator("code").filter(has_text="family: plgvit").first.wait_for(timeout=90_000)
        page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=90_000)
        _settled(page)
        page.screenshot(path=str(ARTIFACTS / "dashboard_trial.png"))
        page.get_by_role("button", name="Time each stage on this CPU").click()
        page.get_by_text("Latency per stage:").first.wait_for(timeout=90_000)
        _settled(page)
        page.get_by_text("Per stage").first.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "dashboard_trial_stages.png"))
        browser.close()
    assert requested and not _outside(requested), _outside(requested)

"""One trial: metrics with the latency spread, full config, per-stage and per-module breakdown."""

from __future__ import annotations

from typing import Any

import loaders
import pandas as pd
import streamlit as st
import yaml

from archlab.dashboard import data as dd
from archlab.dashboard import figures
from archlab.dashboard.front import front_2d
from archlab.dashboard.trial import on_front
from archlab.dashboard.units import fmt_metric
from archlab.report.export import ExportError
from archlab.report.tables import ModelReport, fmt_count, fmt_module_table
from archlab.study.storage import StorageError
from archlab.study.trials import TEST_ACCURACY, TEST_ACCURACY_STD

st.title("Trial")


def _label(data: dd.StudyData, number: int) -> str:
    row = data.row(number)
    text = f"trial {number} · {row['status']}"
    if pd.notna(row.get("latency_ms")):
        text += f" · {fmt_metric('latency_ms', row['latency_ms'])}"
    accuracy = data.accuracy_metric
    if accuracy and pd.notna(row.get(accuracy)):
        text += f" · {dd.objective_label(accuracy)} {fmt_metric(accuracy, row[accuracy])}"
    return text


def _pick(data: dd.StudyData) -> int:
    numbers = [int(n) for n in data.trials["number"]]
    wanted = st.session_state.get("selected_trial")
    if st.session_state.get("trial_pick") not in numbers:
        accuracy = data.accuracy_metric
        front = front_2d(data.trials, "latency_ms", accuracy) if accuracy else None
        first = int(front["number"].iloc[0]) if front is not None and len(front) else numbers[0]
        st.session_state["trial_pick"] = wanted if wanted in numbers else first
    number = st.selectbox("Trial", numbers, key="trial_pick", format_func=lambda n: _label(data, n))
    assert number is not None  # the study has trials, so the box has options
    st.session_state["selected_trial"] = number
    return int(number)


def _latency_row(data: dd.StudyData, row: pd.Series) -> None:
    cols = st.columns(4)
    target = data.target_ms
    delta = None if target is None else f"{row['latency_ms'] - target:+.2f} ms vs target"
    cols[0].metric(
        dd.objective_label("latency_ms"),
        fmt_metric("latency_ms", row["latency_ms"]),
        delta=delta,
        delta_color="inverse",
    )
    cols[1].metric(
        dd.objective_label("latency_iqr_ms"),
        fmt_metric("latency_iqr_ms", row["latency_iqr_ms"]),
        help="Interquartile range of the timed runs.",
    )
    cols[2].metric(
        "95% CI of the median",
        "–" if pd.isna(row.get("latency_ci_rel")) else f"±{100 * row['latency_ci_rel']:.1f}%",
        help="Half-width of the median's 95% confidence interval, relative.",
    )
    cols[3].metric(
        "Timed runs", dd.count_text(row.get("latency_runs")), help="after warm-up passes"
    )


def _tiles(items: list[tuple[str, str, str | None]]) -> None:
    """Metric tiles (label, value, help), four to a row."""
    for start in range(0, len(items), 4):
        for col, (label, value, why) in zip(st.columns(4), items[start : start + 4]):
            col.metric(label, value, help=why)


def _metrics(data: dd.StudyData, row: pd.Series) -> None:
    if pd.isna(row.get("latency_ms")):
        return
    _latency_row(data, row)
    shown = [m for m in dd.METRICS if m not in (*dd.COSTS, dd.TRAINED) and pd.notna(row.get(m))]
    front = on_front(data, int(row["number"]))
    tiles: list[tuple[str, str, str | None]] = [
        (dd.objective_label(m), fmt_metric(m, row[m]), None) for m in shown[:2]
    ]
    if pd.notna(row.get(dd.TRAINED)):  # archlab train: the real thing, never crowded out
        spread = row.get(f"{dd.TRAINED}_std")
        why = "Mean validation accuracy over the training seeds (archlab train)" + (
            f"; their spread (SD) {spread:.4f}." if pd.notna(spread) else "."
        )
        test, test_spread = row.get(TEST_ACCURACY), row.get(TEST_ACCURACY_STD)
        if pd.notna(test):  # archlab train --test: reported, never used to choose
            why += f" On the test split: {test:.4f}" + (
                f" ± {test_spread:.4f}." if pd.notna(test_spread) else "."
            )
        tiles.append((dd.objective_label(dd.TRAINED), f"{row[dd.TRAINED]:.4f}", why))
    tiles.append(
        (
            "On the front",
            "–" if front is None else "yes" if front else "no",
            "Among the feasible trials not beaten on both latency and the accuracy estimate.",
        )
    )
    tiles += [
        (dd.objective_label(m), fmt_metric(m, row.get(m)), why)
        for m, why in (
            ("params", None),
            ("macs", "fvcore with archlab's handlers"),
            ("peak_memory_bytes", "Weights, input and the activations' peak of one pass."),
        )
    ]
    _tiles(tiles)
    record = data.record
    if record is not None and pd.notna(row.get("duration_s")):
        st.caption(
            f"Measured on {record.cpu}, {record.settings.threads} thread(s), batch 1, "
            f"{dd.environment_text(record)}, torch {record.torch_version}; "
            f"trial took {row['duration_s']:.1f} s"
        )


def _stages(url: str, data: dd.StudyData, number: int, report: ModelReport) -> None:
    stages = report.stages if report.stages is not None else report.modules.iloc[:0]
    key = f"stage_timing_{data.name}_{number}"
    if st.session_state.get(key):
        with st.spinner("Timing each stage in context on this CPU…"):
            stages = loaders.stage_latency(url, data.name, number, data)
    stages = stages[(stages["params"] > 0) | (stages["macs"] > 0) | stages["latency_ms"].notna()]
    timed = stages["latency_ms"].notna().any()
    st.markdown("**Per stage** (share of parameters, MACs" + (" and latency)" if timed else ")"))
    if not timed:
        st.button(
            "Time each stage on this CPU",
            key="time_stages",
            icon=":material/timer:",
            on_click=lambda: st.session_state.update({key: True}),
            help="Hooks inside 10 whole forward passes at the study's resolution and threads, "
            "as `archlab report --breakdown` does. Avoid it while a search is timing trials.",
        )
    st.plotly_chart(figures.stage_figure(stages), key="stage_chart")
    if timed:
        st.caption(
            "Latency per stage: blocks timed in context on this CPU now, not in the search; "
            "the rest of the forward pass is what no stage accounts for."
        )


def _downloads(url: str, data: dd.StudyData, number: int, report: ModelReport | None) -> None:
    config = dd.trial_config(data, number)
    stem = dd.trial_file_stem(data, number)
    cols = st.columns([1, 1, 1.3, 1.3])
    cols[0].download_button(
        "Config (YAML)",
        yaml.safe_dump(config, sort_keys=False),
        file_name=f"{stem}.yaml",
        mime="application/x-yaml",
        icon=":material/download:",
    )
    cols[1].download_button(
        "Report (Markdown)",
        dd.trial_markdown(data, number, report),
        file_name=f"{stem}.md",
        mime="text/markdown",
        icon=":material/description:",
    )
    if data.row(number)["state"] == "COMPLETE":
        _export(url, data, number, stem, cols[2:])


def _export(url: str, data: dd.StudyData, number: int, stem: str, cols: list[Any]) -> None:
    """The export's button, then its model files as downloads (or why there is no ONNX file)."""
    key = f"export_{data.name}_{number}"
    if not st.session_state.get(key):
        cols[0].button(
            "Export model.pt, model.onnx",
            key="export_trial",
            icon=":material/deployed_code:",
            on_click=lambda: st.session_state.update({key: True}),
            help="As `archlab export` does: weights at initialisation with the study's seed "
            "(the search trains nothing) and an ONNX file checked against PyTorch.",
        )
        return
    try:
        with st.spinner("Exporting: weights, ONNX export and its check…"):
            made = loaders.trial_files(url, data.name, number)
    except (ExportError, StorageError) as err:
        st.error(f"Cannot export trial {number}: {err}")
        return
    for col, name in zip(cols, ("model.pt", "model.onnx")):
        if name in made.files:
            col.download_button(
                name,
                made.files[name],
                file_name=f"{stem}_{name}",
                mime="application/octet-stream",
                icon=":material/download:",
            )
    if made.onnx_failed or "model.onnx" not in made.files:
        st.warning(f"No model.onnx for this trial: {made.onnx_note}", icon=":material/warning:")
    else:
        st.caption(f"model.onnx: {made.onnx_note}")


def _modules(report: ModelReport) -> None:
    st.markdown(
        f"**Per module**: {fmt_count(report.params)} parameters, "
        f"{fmt_count(report.macs)} MACs (fvcore + handlers; thop counts "
        f"{fmt_count(report.thop_macs)})"
    )
    st.dataframe(
        fmt_module_table(report.modules),
        hide_index=True,
        column_config={
            "params": st.column_config.TextColumn("parameters"),
            "macs": st.column_config.TextColumn("MACs"),
            "params %": st.column_config.ProgressColumn(
                "parameters %", format="%.1f%%", min_value=0, max_value=100
            ),
            "MACs %": st.column_config.ProgressColumn(
                "MACs %", format="%.1f%%", min_value=0, max_value=100
            ),
        },
    )


def _report(url: str, data: dd.StudyData, number: int) -> ModelReport | None:
    if data.row(number)["state"] != "COMPLETE":
        return None
    with st.spinner("Building the model and counting MACs per module…"):
        try:
            return loaders.trial_report(url, data.name, number, data)
        except ValueError as err:
            st.error(f"Cannot build trial {number}'s model: {err}")
            return None


def _page() -> None:
    data = loaders.study_data()
    if data.trials.empty:
        st.info(f"Study {data.name!r} has no trials yet.")
        return
    number = _pick(data)
    row = data.row(number)
    if isinstance(row.get("reason"), str):
        st.warning(f"Trial {number} {row['status']}: {row['reason']}")
    _metrics(data, row)
    try:
        config = dd.trial_config(data, number)
    except (KeyError, ValueError) as err:
        st.error(f"Cannot rebuild trial {number}'s config: {err}")
        return
    url, _ = loaders.storage()
    report = _report(url, data, number)
    _downloads(url, data, number, report)
    left, right = st.columns(2)
    if report is not None:
        with left:
            _stages(url, data, number, report)
    with right if report is not None else left:
        st.markdown("**Full config** (`archlab.build_model` accepts it)")
        st.code(yaml.safe_dump(config, sort_keys=False), language="yaml", height=460)
    if report is not None:
        _modules(report)


_page()

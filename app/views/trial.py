"""One trial: metrics with the latency spread, full config, per-stage and per-module breakdown."""

from __future__ import annotations

import loaders
import pandas as pd
import streamlit as st
import yaml

from archlab.dashboard import data as dd
from archlab.dashboard import figures
from archlab.report.tables import ModelReport, fmt_count

st.title("Trial")


def _label(data: dd.StudyData, number: int) -> str:
    row = data.row(number)
    text = f"trial {number} · {row['status']}"
    if pd.notna(row.get("latency_ms")):
        text += f" · {row['latency_ms']:.2f} ms"
    accuracy = data.accuracy_metric
    if accuracy and pd.notna(row.get(accuracy)):
        text += f" · {accuracy} {row[accuracy]:.3g}"
    return text


def _pick(data: dd.StudyData) -> int:
    numbers = [int(n) for n in data.trials["number"]]
    wanted = st.session_state.get("selected_trial")
    if st.session_state.get("trial_pick") not in numbers:
        accuracy = data.accuracy_metric
        front = dd.front_2d(data.trials, "latency_ms", accuracy) if accuracy else []
        first = int(front["number"].iloc[0]) if len(front) else numbers[0]
        st.session_state["trial_pick"] = wanted if wanted in numbers else first
    number = st.selectbox("Trial", numbers, key="trial_pick", format_func=lambda n: _label(data, n))
    st.session_state["selected_trial"] = number
    return int(number)


def _metrics(data: dd.StudyData, row: pd.Series) -> None:
    if pd.isna(row.get("latency_ms")):
        return
    cols = st.columns(4)
    target = data.target_ms
    delta = None if target is None else f"{row['latency_ms'] - target:+.2f} ms vs target"
    cols[0].metric(
        "Latency (median)", f"{row['latency_ms']:.2f} ms", delta=delta, delta_color="inverse"
    )
    cols[1].metric(
        "Spread (IQR)",
        f"{row['latency_iqr_ms']:.2f} ms",
        help="Interquartile range of the timed runs.",
    )
    cols[2].metric(
        "95% CI of the median",
        f"±{100 * row['latency_ci_rel']:.1f}%",
        help="Half-width of the median's 95% confidence interval, relative.",
    )
    cols[3].metric("Timed runs", f"{row['latency_runs']:.0f}", help="after warm-up passes")
    shown = [
        (m, label)
        for m, (_, label) in dd.METRICS.items()
        if m not in ("latency_ms", "params", "macs") and pd.notna(row.get(m))
    ]
    cols = iter(st.columns(4))
    for metric, label in shown[:2]:
        name = label.removeprefix("accuracy estimate: ")
        next(cols).metric(name[0].upper() + name[1:], f"{row[metric]:.4g}", help=label)
    next(cols).metric("Parameters", fmt_count(row["params"]))
    next(cols).metric("MACs", fmt_count(row["macs"]), help="fvcore with archlab's handlers")
    record = data.record
    st.caption(
        f"Measured on {record.cpu}, {record.settings.threads} thread(s), batch 1, "
        f"{dd.environment_text(record)}, torch {record.torch_version}; "
        f"trial took {row['duration_s']:.1f} s"
        if record is not None and pd.notna(row.get("duration_s"))
        else ""
    )


def _stages(report: ModelReport) -> None:
    stages = report.stages if report.stages is not None else report.modules.iloc[:0]
    stages = stages[(stages["params"] > 0) | (stages["macs"] > 0)]
    st.markdown("**Per stage** (share of parameters and MACs)")
    st.plotly_chart(figures.stage_figure(stages), key="stage_chart")


def _modules(report: ModelReport) -> None:
    st.markdown(
        f"**Per module**: {fmt_count(report.params)} parameters, "
        f"{fmt_count(report.macs)} MACs (fvcore + handlers; thop counts "
        f"{fmt_count(report.thop_macs)})"
    )
    shown = report.modules.assign(
        params_share=100 * report.modules["params_share"],
        macs_share=100 * report.modules["macs_share"],
    )
    st.dataframe(
        shown,
        hide_index=True,
        column_config={
            "params": st.column_config.NumberColumn(format="compact"),
            "macs": st.column_config.NumberColumn("MACs", format="compact"),
            "params_share": st.column_config.ProgressColumn(
                "params %", format="%.1f%%", min_value=0, max_value=100
            ),
            "macs_share": st.column_config.ProgressColumn(
                "MACs %", format="%.1f%%", min_value=0, max_value=100
            ),
        },
    )


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
    report = None
    if row["state"] == "COMPLETE":
        url, _ = loaders.storage()
        with st.spinner("Building the model and counting MACs per module…"):
            try:
                report = loaders.trial_report(url, data.name, number, data)
            except ValueError as err:
                st.error(f"Cannot build trial {number}'s model: {err}")
    stem = dd.trial_file_stem(data, number)
    cols = st.columns(2)
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
    left, right = st.columns(2)
    if report is not None:
        with left:
            _stages(report)
    with right if report is not None else left:
        st.markdown("**Full config** (`archlab.build_model` accepts it)")
        st.code(yaml.safe_dump(config, sort_keys=False), language="yaml", height=460)
    if report is not None:
        _modules(report)


_page()

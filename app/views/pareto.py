"""Pareto explorer: any two metrics, coloured by any knob, with the front, target and presets."""

from __future__ import annotations

from typing import Any

import loaders
import pandas as pd
import streamlit as st

from archlab.dashboard import data as dd
from archlab.dashboard import figures
from archlab.report.tables import fmt_count
from archlab.search.references import References

st.title("Pareto explorer")


def _controls(data: dd.StudyData) -> tuple[str, str, str, bool]:
    metrics = [m for m in dd.METRICS if m in data.trials and data.trials[m].notna().any()]
    cols = st.columns([1, 1, 1, 1])
    x = cols[0].selectbox(
        "x axis",
        metrics,
        index=metrics.index("latency_ms"),
        key="pareto_x",
        format_func=dd.objective_label,
    )
    accuracy = dd.TRAINED if dd.TRAINED in metrics else data.accuracy_metric
    y_default = accuracy if accuracy in metrics and x != accuracy else metrics[0]
    y = cols[1].selectbox(
        "y axis",
        metrics,
        index=metrics.index(y_default),
        key="pareto_y",
        format_func=dd.objective_label,
    )
    colour = cols[2].selectbox("colour by", ["status", *data.knobs], key="pareto_colour")
    refs = cols[3].toggle(
        "published variants",
        value=True,
        key="pareto_refs",
        help="The family's presets, measured on this CPU like the trials.",
    )
    return x, y, colour, refs


def _picked(event: Any) -> int | None:
    """The trial number of the point selected on the chart (presets carry no number)."""
    selection = event.get("selection") if isinstance(event, dict) else None
    points = selection.get("points") if isinstance(selection, dict) else None
    for point in points or []:
        custom = point.get("customdata") if isinstance(point, dict) else None
        if custom and isinstance(custom[0], (int, float)):
            return int(custom[0])
    return None


def _reference_controls(data: dd.StudyData, refs: References) -> None:
    """Offer to measure the presets not measured yet; list those that cannot run."""
    if refs.missing:
        cols = st.columns([2, 3])
        clicked = cols[0].button(
            f"Measure {len(refs.missing)} published variant(s) on this CPU",
            key="measure_refs",
            icon=":material/speed:",
            help="Each preset of the family is counted and timed once with the study's settings "
            "and cached in the study's output folder.",
        )
        cols[1].caption(
            f"Not measured yet: {', '.join(refs.missing)}. Measuring takes CPU time: "
            "avoid it while a search is timing trials on this machine."
        )
        if clicked:
            loaders.measure_missing_references(data)
            st.rerun()
    if refs.skipped:
        with st.expander(f"{len(refs.skipped)} published variant(s) cannot run at this resolution"):
            for name, reason in refs.skipped.items():
                st.markdown(f"- **{name}**: {reason}")


def _selected_summary(data: dd.StudyData, number: int) -> None:
    row = data.row(number)
    st.markdown(f"#### Trial {number} ({row['status']})")
    cols = st.columns(4)
    cols[0].metric(
        "Latency (median)",
        f"{row['latency_ms']:.2f} ms",
        help=f"IQR {row['latency_iqr_ms']:.2f} ms over {row['latency_runs']:.0f} runs",
    )
    accuracy = data.accuracy_metric
    cols[1].metric(
        "Accuracy estimate" + (f" ({accuracy})" if accuracy else ""),
        f"{row[accuracy]:.3g}" if accuracy and pd.notna(row.get(accuracy)) else "–",
    )
    cols[2].metric("Parameters", fmt_count(row["params"]))
    cols[3].metric("MACs", fmt_count(row["macs"]))
    st.page_link(
        "views/trial.py",
        label=f"Config, module table and downloads of trial {number}",
        icon=":material/arrow_forward:",
    )


@st.fragment(run_every=loaders.refresh_every())
def _explorer() -> None:
    data = loaders.study_data()
    if data.measured.empty:
        st.info(
            f"Study {data.name!r} has no finished trial with measurements yet "
            f"({len(data.trials)} trial(s) so far). Turn on live refresh in the sidebar to "
            "watch a running search."
        )
        return
    x, y, colour, show_refs = _controls(data)
    refs = loaders.references(data) if show_refs and data.record and data.record.family else None
    front = dd.front_2d(data.trials, x, y)
    picked = _picked(st.session_state.get("pareto_chart"))  # the chart's selection, read first
    if picked is not None:
        st.session_state["selected_trial"] = picked
    fig, note = figures.pareto_figure(
        data.trials,
        x,
        y,
        front=front,
        colour=None if colour == "status" else colour,
        target_ms=data.target_ms,
        references=None if refs is None else dd.with_trained_references(refs.frame(), data),
        selected=st.session_state.get("selected_trial"),
        space=data.record.space_name if data.record else None,
    )
    st.plotly_chart(fig, on_select="rerun", selection_mode="points", key="pareto_chart")
    unplotted = data.trials[data.trials[x].isna() | data.trials[y].isna()]
    notes = [note] if note else []
    if len(unplotted):
        kinds = unplotted["status"].value_counts()
        notes.append(
            "not plotted (no measurements): " + ", ".join(f"{n} {s}" for s, n in kinds.items())
        )
    if refs is not None and refs.measured:
        notes.append(
            "★ published variants, measured here like the trials (* reconstructed "
            "config, † windows adapted to the study's resolution)"
        )
    if notes:
        st.caption(" · ".join(notes))
    if refs is not None:
        _reference_controls(data, refs)
    selected = st.session_state.get("selected_trial")
    measured = set(data.measured["number"])
    if selected in measured:
        _selected_summary(data, selected)
    _gains(front, x, y)


def _gains(front: pd.DataFrame, x: str, y: str) -> None:
    title = (
        "What each extra millisecond buys"
        if x == "latency_ms" or y == "latency_ms"
        else f"What each step along the front costs in {x}"
    )
    st.subheader(title)
    cost, gain = (y, x) if y == "latency_ms" else (x, y)
    table = dd.marginal_gains(front, cost, gain)
    if table.empty:
        st.info("No feasible trial yet: the front is empty.")
        return
    st.caption(
        f"The feasible front on these axes, cheapest first. Each row is one step along "
        f"it: the extra {cost} paid over the previous point and the {gain} it buys; the "
        "first row is where the front starts."
    )
    unit = "ms" if cost == "latency_ms" else cost
    shown = pd.DataFrame(
        {
            "trial": table["trial"],
            cost: table[cost].map(lambda v: f"{v:.4g}"),
            gain: table[gain].map(lambda v: f"{v:.4g}"),
            f"extra {cost}": table["extra cost"].map(
                lambda v: "start" if pd.isna(v) else f"+{v:.4g}"
            ),
            f"{gain} gained": table["gain"].map(lambda v: "start" if pd.isna(v) else f"{v:+.4g}"),
            f"{gain} per extra {unit}": table["gain per unit of cost"].map(
                lambda v: "–" if pd.isna(v) else f"{v:.4g}"
            ),
        }
    )
    st.dataframe(shown, hide_index=True)


_explorer()

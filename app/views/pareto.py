"""Pareto explorer: any two metrics, coloured by any knob, with the front, target and presets."""

from __future__ import annotations

from typing import Any

import loaders
import pandas as pd
import streamlit as st

from archlab.dashboard import data as dd
from archlab.dashboard import figures
from archlab.dashboard.front import front_2d, gains_table, marginal_gains
from archlab.dashboard.trained import estimate_vs_training
from archlab.dashboard.units import fmt_metric
from archlab.search.references import References

st.title("Pareto explorer")


def _controls(data: dd.StudyData) -> dict[str, Any]:
    metrics = [m for m in dd.METRICS if m in data.trials and data.trials[m].notna().any()]
    cols = st.columns([1.2, 1.2, 0.9, 0.7, 0.9, 0.6])
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
        "presets",
        value=True,
        key="pareto_refs",
        help="The family's published variants, measured on this CPU like the trials.",
    )
    fit = cols[4].toggle(
        "fit to trials",
        value=True,
        key="pareto_fit",
        help="Presets beyond the trials are drawn as arrows on the edge, with their values. "
        "Off: the axes take in every preset too.",
    )
    log_x = cols[5].toggle("log x", value=False, key="pareto_log_x")
    return {"x": x, "y": y, "colour": colour, "refs": refs, "fit": fit, "log_x": log_x}


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


def _selected_summary(data: dd.StudyData, number: int, front: pd.DataFrame, y: str) -> None:
    """The picked trial's numbers, beside the chart."""
    row = data.row(number)
    on_front = number in set(front["number"])
    st.markdown(f"#### Trial {number}")
    st.caption(
        f"{row['status']}"
        + (" · on the front of these axes" if on_front else " · not on the front")
    )
    accuracy = data.accuracy_metric
    shown = ["latency_ms", *([accuracy] if accuracy else []), "params", "macs", "peak_memory_bytes"]
    if y not in shown and y in row:
        shown.insert(1, y)
    for metric in shown:
        helptext = (
            f"IQR {fmt_metric('latency_iqr_ms', row.get('latency_iqr_ms'))} over "
            f"{dd.count_text(row.get('latency_runs'))} timed runs"
            if metric == "latency_ms"
            else None
        )
        st.metric(dd.objective_label(metric), fmt_metric(metric, row.get(metric)), help=helptext)
    st.page_link(
        "views/trial.py",
        label="Details & downloads",
        help=f"Trial {number}'s config, stages, modules and model files on the Trial page.",
        icon=":material/arrow_forward:",
    )


def _notes(data: dd.StudyData, x: str, y: str, note: str, refs: References | None) -> None:
    notes = [note] if note else []
    unplotted = dd.unplotted_note(data.trials, x, y)
    if unplotted:
        notes.append(unplotted)
    if refs is not None and refs.measured:
        notes.append(
            "★ presets: the family's published variants, measured here like the trials "
            "(* reconstructed config, † windows adapted to the study's resolution); ▸ arrows: "
            "presets beyond the axes, with their values. Hover a point for its name."
        )
        if dd.TRAINED in (x, y):
            notes.append(
                "Presets sit at their accuracy trained with the trials' recipe: trained for this "
                "study (archlab train --references), else archlab's own ground truth; the table "
                "below says which."
            )
    if notes:
        st.caption(" · ".join(notes))


def _presets(frame: pd.DataFrame, x: str, y: str) -> None:
    """The measured presets as a table (``frame``: with their trained accuracies)."""
    if frame.empty:
        return
    table = dd.preset_table(frame, [x, y, "params", "macs"])
    if dd.TRAINED in (x, y):
        table["trained accuracy from"] = [
            s if isinstance(s, str) else "not trained with this recipe"
            for s in frame[dd.TRAINED_SOURCE]
        ]
    with st.expander(f"Published variants ({len(frame)} measured)", expanded=False):
        st.dataframe(table, hide_index=True)


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
    c = _controls(data)
    x, y = c["x"], c["y"]
    refs = loaders.references(data) if c["refs"] and data.record and data.record.family else None
    ref_frame = None if refs is None else dd.with_trained_references(refs.frame(), data)
    front = front_2d(data.trials, x, y)
    picked = _picked(st.session_state.get("pareto_chart"))  # the chart's selection, read first
    if picked is not None:
        st.session_state["selected_trial"] = picked
    fig, note = figures.pareto_figure(
        data.trials,
        x,
        y,
        front=front,
        colour=None if c["colour"] == "status" else c["colour"],
        target_ms=data.target_ms,
        references=ref_frame,
        selected=st.session_state.get("selected_trial"),
        space=data.record.space_name if data.record else None,
        fit_trials=c["fit"],
        log_x=c["log_x"],
    )
    chart, side = st.columns([2.8, 1])
    with chart:
        st.plotly_chart(fig, on_select="rerun", selection_mode="points", key="pareto_chart")
    with side:
        selected = st.session_state.get("selected_trial")
        if selected is not None and selected in set(data.measured["number"]):
            _selected_summary(data, selected, front, y)
        else:
            st.info("Click a trial's point to see its numbers here.")
    _notes(data, x, y, note, refs)
    if refs is not None and ref_frame is not None:
        _presets(ref_frame, x, y)
        _reference_controls(data, refs)
    if dd.TRAINED in (x, y):
        _estimate_check(data)
    _gains(front, x, y)


def _estimate_check(data: dd.StudyData) -> None:
    """The search's estimate against the trained accuracy of the trials trained so far."""
    estimate = data.accuracy_metric
    check = estimate_vs_training(data.trials, estimate) if estimate else None
    if estimate is None or check is None:
        return
    with st.expander(f"How {estimate} ranked the {check.trials} trained trials", expanded=False):
        st.plotly_chart(check.figure, key="estimate_check")
        st.caption(
            f"Spearman ρ {check.spearman:+.2f} over {check.trials} trained trials. These are "
            "mostly front members, where the estimate and latency rise together, so this ρ says "
            "chiefly whether the larger archs trained better; how the estimate ranks the space's "
            "archs is the evidence on the axis label."
        )


def _gains(front: pd.DataFrame, x: str, y: str) -> None:
    latency = "latency_ms" in (x, y)
    cost, gain = (y, x) if y == "latency_ms" else (x, y)
    st.subheader(
        "What each extra millisecond buys"
        if latency
        else f"What each step along the front costs in {dd.objective_label(cost)}"
    )
    gains = marginal_gains(front, cost, gain)
    if gains.empty:
        st.info("No feasible trial yet: the front is empty.")
        return
    st.caption(
        "The feasible front on these axes, cheapest first (3 significant figures). Each row is "
        "one step along it: what it costs over the previous point and what it gains; the first "
        "row is where the front starts."
        + (
            " A step marked *within noise* is smaller than the latency spread (IQR) of the two "
            "trials it joins: their measured latencies cannot be told apart."
            if latency
            else ""
        )
    )
    st.dataframe(gains_table(gains, cost, gain), hide_index=True)


_explorer()

"""Compare trials side by side: their metrics, and only the knobs that differ."""

from __future__ import annotations

import loaders
import streamlit as st

from archlab.dashboard import data as dd
from archlab.dashboard.compare import better_marks, config_diff, metrics_table
from archlab.dashboard.front import front_2d

st.title("Compare trials")
_BETTER = "background-color: #d8f0d8; font-weight: bold"


def _default(data: dd.StudyData, numbers: list[int]) -> list[int]:
    accuracy = data.accuracy_metric
    front = front_2d(data.trials, "latency_ms", accuracy) if accuracy else None
    chosen = (
        [int(n) for n in front["number"]][:3]
        if front is not None and len(front) >= 2
        else numbers[:2]
    )
    selected = st.session_state.get("selected_trial")
    if selected in numbers and selected not in chosen:
        chosen = [selected, *chosen[:2]]
    return chosen


def _page() -> None:
    data = loaders.study_data()
    numbers = [int(n) for n in data.trials["number"]] if not data.trials.empty else []
    if len(numbers) < 2:
        st.info(f"Study {data.name!r} has {len(numbers)} trial(s); comparing needs two.")
        return
    if "compare_pick" not in st.session_state:
        st.session_state["compare_pick"] = _default(data, numbers)
    picked = st.multiselect(
        "Trials",
        numbers,
        key="compare_pick",
        format_func=lambda n: f"trial {n} ({data.row(n)['status']})",
    )
    if len(picked) < 2:
        st.info("Pick two or more trials.")
        return
    st.subheader("Metrics")
    st.caption(
        "**Bold on green**: the better value of each metric (lower latency, spread, size and "
        "memory; higher accuracy estimate). Ties are all marked."
    )
    table, marks = metrics_table(data, picked), better_marks(data, picked)
    st.dataframe(
        table.style.apply(lambda _: marks.replace({True: _BETTER, False: ""}), axis=None),
        hide_index=True,
        column_config={"metric": st.column_config.TextColumn(width="medium")},
    )
    st.subheader("Knobs that differ")
    diff = config_diff(data, picked)
    if diff.empty:
        st.info("These trials have the same value for every knob.")
    else:
        st.caption(f"{len(diff)} of {len(data.knobs)} knobs differ; the others are equal.")
        st.dataframe(diff.astype(str), hide_index=True)


_page()

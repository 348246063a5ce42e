"""Studies: every study in the storage, then the picked study's settings and headline numbers."""

from __future__ import annotations

import loaders
import streamlit as st

from archlab.dashboard import data as dd
from archlab.dashboard.front import front_2d
from archlab.dashboard.units import fmt_metric

st.title("Studies")
url, _ = loaders.storage()


@st.fragment(run_every=loaders.refresh_every())
def _studies() -> None:
    rows = loaders.study_rows(url)
    if rows.empty:
        st.info(
            f"No studies in {loaders.shown_url(url)} yet. Start one with "
            "`archlab search --space plgvit --target-latency 250ms`."
        )
        return
    st.dataframe(
        rows,
        hide_index=True,
        column_config={
            "target_ms": st.column_config.NumberColumn("target (ms)", format="%.0f"),
            "last_complete": st.column_config.TextColumn("last trial finished"),
        },
    )


def _summary(data: dd.StudyData) -> None:
    record, frame = data.record, data.trials
    st.subheader(f"Study {data.name}")
    if record is None:
        st.warning(
            "This study was not created by `archlab search` (it stores no archlab spec): "
            "its trials cannot be rebuilt into models."
        )
    if frame.empty:
        st.info("This study has no trials yet.")
        return
    statuses = frame["status"].value_counts()
    accuracy = data.accuracy_metric
    front = front_2d(frame, "latency_ms", accuracy) if accuracy else frame.iloc[:0]
    cols = st.columns(4)
    cols[0].metric("Trials", len(frame))
    cols[1].metric("Within the latency target", int(statuses.get("feasible", 0)))
    name = dd.objective_label(accuracy) if accuracy else "no accuracy estimate"
    cols[2].metric("On the front", len(front), help=f"{name} vs latency, feasible trials")
    best = frame.loc[frame["status"] == "feasible", accuracy].max() if accuracy else None
    cols[3].metric("Best within target", fmt_metric(accuracy or "", best), help=name)
    target = data.target_ms
    if record is None:
        return
    settings = record.settings
    st.markdown(
        f"**Space** `{record.space_name}` (family `{record.family}`) at "
        f"{dd.environment_text(record)} · **objectives** "
        f"{', '.join(f'{n} ({d})' for n, d in zip(data.metric_names, data.directions))} · "
        f"**latency target** {'–' if target is None else f'{target:g} ms'}  \n"
        f"**Measured on** {record.cpu}, {settings.threads} thread(s), torch "
        f"{record.torch_version} · **sampler** {settings.sampler} (seed {settings.seed})"
    )
    if record.space_yaml:
        with st.expander("Space file stored with the study"):
            st.code(record.space_yaml, language="yaml")


_studies()
if st.session_state.get("study"):
    _summary(loaders.study_data())

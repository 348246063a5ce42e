"""Study health: hypervolume over trials, trials per state, time per trial, knob importance."""

from __future__ import annotations

import loaders
import pandas as pd
import streamlit as st

from archlab.dashboard import data as dd
from archlab.dashboard import health as study_health
from archlab.dashboard import health_figures as figures

st.title("Study health")


def _hypervolume(url: str, data: dd.StudyData) -> None:
    st.subheader("Hypervolume over trials")
    hv = loaders.hypervolume(url, data.name, loaders.stamp(data), data)
    if hv is None:
        st.info("No feasible finished trial yet: no hypervolume.")
        return
    ref = ", ".join(f"{dd.objective_label(k)} = {v:.4g}" for k, v in hv.reference.items())
    st.caption(
        f"Feasible trials only. **Reference point: {ref}** ({hv.rule}). "
        "A flat curve means the front has stopped moving."
    )
    st.plotly_chart(figures.hypervolume_figure(hv.history), key="hv_chart")


def _states_and_time(data: dd.StudyData) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Trials per state")
        st.plotly_chart(figures.states_figure(study_health.state_counts(data)), key="state_chart")
    with right:
        st.subheader("Time per trial")
        durations = data.trials["duration_s"].dropna()
        if len(durations):
            st.caption(f"median {durations.median():.1f} s, total {durations.sum() / 60:.1f} min")
        st.plotly_chart(figures.duration_figure(data.trials), key="duration_chart")


def _importance(url: str, data: dd.StudyData) -> pd.Series | None:
    st.subheader("Knob importance")
    cols = st.columns(2)
    objective = cols[0].selectbox(
        "objective",
        range(len(data.metric_names)),
        key="imp_objective",
        format_func=lambda i: dd.objective_label(data.metric_names[i]),
    )
    evaluator = cols[1].selectbox("evaluator", list(study_health.EVALUATORS), key="imp_evaluator")
    if objective is None or evaluator is None:  # a study without objectives has nothing to rank
        st.info("This study records no objective values.")
        return None
    found, why = loaders.importance(url, data.name, loaders.stamp(data), objective, evaluator)
    if found is None:
        st.info(why)
        return None
    complete = int((data.trials["state"] == "COMPLETE").sum())
    warning = study_health.importance_warning(complete)
    if warning:
        st.warning(warning, icon=":material/warning:")
    st.caption(
        f"Optuna's {evaluator} importance of each knob for "
        f"{dd.objective_label(data.metric_names[objective])}, "
        f"over the {complete} complete trials (shares sum to 1)."
    )
    st.plotly_chart(figures.importance_figure(found), key="importance_chart")
    return found


def _parallel(data: dd.StudyData, importance: pd.Series | None) -> None:
    st.subheader("Knobs vs. objectives")
    done = data.trials[data.trials["state"] == "COMPLETE"]
    if len(done) < 2:
        st.info("Parallel coordinates need two complete trials.")
        return
    varied = [k for k in data.knobs if done[f"knob:{k}"].astype(str).nunique() > 1]
    first = study_health.top_knobs(importance, varied)
    knobs = st.multiselect(
        "knobs shown",
        varied,
        default=first,
        key="parallel_knobs",
        help="Add or remove axes; at first the most important knobs for the objective above.",
    )
    ranked = "by importance" if importance is not None else "in the space's order"
    st.caption(
        f"Complete trials; one line per trial, coloured by the last objective. At first the "
        f"{len(first)} top knobs {ranked} ({len(varied)} varied; knobs that never varied are "
        "left out). Drag on an axis to filter."
    )
    st.plotly_chart(figures.parallel_figure(done, knobs, data.metric_names), key="parallel_chart")


@st.fragment(run_every=loaders.refresh_every())
def _page() -> None:
    data = loaders.study_data()
    if data.trials.empty:
        st.info(f"Study {data.name!r} has no trials yet.")
        return
    url, _ = loaders.storage()
    _hypervolume(url, data)
    _states_and_time(data)
    _parallel(data, _importance(url, data))


_page()

"""Plotly figures of the Study health page: hypervolume, trials per state, time per trial, knob
importance and parallel coordinates. They take plain frames and read nothing."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from archlab.dashboard.data import objective_label
from archlab.dashboard.figures import STATUS_STYLE

__all__ = [
    "duration_figure",
    "hypervolume_figure",
    "importance_figure",
    "parallel_figure",
    "states_figure",
]


def hypervolume_figure(history: pd.DataFrame) -> go.Figure:
    """Hypervolume of the feasible front after each trial (a step: it never decreases)."""
    fig = go.Figure(
        go.Scatter(
            x=history["number"],
            y=history["hypervolume"],
            mode="lines+markers",
            line={"shape": "hv"},
            name="hypervolume",
        )
    )
    fig.update_layout(
        xaxis_title="trial",
        yaxis_title="hypervolume (product of objective units)",
        yaxis_rangemode="tozero",
        height=320,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    return fig


def states_figure(counts: pd.DataFrame) -> go.Figure:
    """Trials per status, named and coloured as in the Pareto explorer's legend."""
    colours = [STATUS_STYLE[s][1] for s in counts["status"]]
    fig = go.Figure(
        go.Bar(
            x=[STATUS_STYLE[s][2] for s in counts["status"]],
            y=counts["trials"],
            marker_color=colours,
            text=counts["trials"],
            textposition="outside",
            cliponaxis=False,
        )
    )
    fig.update_layout(
        yaxis_title="trials",
        yaxis_range=[0, 1.15 * max(int(counts["trials"].max()), 1)],
        height=320,
        margin={"l": 10, "r": 10, "t": 20, "b": 10},
    )
    return fig


def duration_figure(frame: pd.DataFrame) -> go.Figure:
    """Wall time of each trial (building, counting, NASWOT and timing), by status."""
    fig = go.Figure()
    for status, (_, colour, text) in STATUS_STYLE.items():
        part = frame[(frame["status"] == status) & frame["duration_s"].notna()]
        if not part.empty:
            fig.add_trace(
                go.Bar(x=part["number"], y=part["duration_s"], name=text, marker_color=colour)
            )
    fig.update_layout(
        xaxis_title="trial",
        yaxis_title="time (s)",
        height=300,
        margin={"l": 10, "r": 10, "t": 20, "b": 10},
        barmode="overlay",
    )
    return fig


def importance_figure(importance: pd.Series) -> go.Figure:
    fig = go.Figure(go.Bar(x=importance.to_numpy(), y=list(importance.index), orientation="h"))
    fig.update_layout(
        xaxis_title="importance (share)",
        yaxis={"autorange": "reversed"},
        height=80 + 26 * len(importance),
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
    )
    return fig


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _dimension(values: pd.Series, label: str, knob: bool) -> dict[str, Any]:
    if _is_numeric(values):
        dim = {"label": label, "values": values.astype(float)}
        choices = sorted(values.dropna().unique())
        if knob and len(choices) <= 8:  # a knob's few choices: tick those, not 1.2, 1.4 ...
            dim["tickvals"] = [float(v) for v in choices]
        return dim
    categories = sorted(values.astype(str).unique())
    codes = values.astype(str).map({c: i for i, c in enumerate(categories)})
    return {
        "label": label,
        "values": codes,
        "tickvals": list(range(len(categories))),
        "ticktext": categories,
    }


def parallel_figure(frame: pd.DataFrame, knobs: list[str], objectives: list[str]) -> go.Figure:
    """Parallel coordinates of knobs then objectives, coloured by the last objective."""
    dims = [_dimension(frame[f"knob:{k}"], k, knob=True) for k in knobs]
    dims += [
        _dimension(frame[f"objective:{o}"], objective_label(o), knob=False) for o in objectives
    ]
    colour = frame[f"objective:{objectives[-1]}"].astype(float)
    fig = go.Figure(
        go.Parcoords(
            dimensions=dims,
            line={
                "color": colour,
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": {"text": objective_label(objectives[-1])}},
            },
        )
    )
    fig.update_layout(height=420, margin={"l": 60, "r": 60, "t": 50, "b": 20})
    return fig

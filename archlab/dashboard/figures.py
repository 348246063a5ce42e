"""Plotly figures of the dashboard: the Pareto explorer, a trial's stage breakdown and study health.

Every function takes plain frames (from :mod:`archlab.dashboard.data`,
:mod:`archlab.search.references`,
:mod:`archlab.dashboard.health`) and returns a ``plotly.graph_objects.Figure``; nothing is read
here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from archlab.dashboard.data import METRICS, objective_label
from archlab.report.tables import fmt_count

__all__ = [
    "STATUS_STYLE",
    "duration_figure",
    "hypervolume_figure",
    "importance_figure",
    "parallel_figure",
    "pareto_figure",
    "stage_figure",
    "states_figure",
]

#: Marker of each trial status: (symbol, colour, legend text).
STATUS_STYLE: dict[str, tuple[str, str, str]] = {
    "feasible": ("circle", "#1f77b4", "within target"),
    "infeasible": ("circle-open", "#7f7f7f", "over latency target"),
    "pruned": ("triangle-down-open", "#ff7f0e", "pruned (impossible knobs)"),
    "failed": ("x-thin-open", "#d62728", "failed"),
    "running": ("circle-dot", "#bcbd22", "running"),
}
_FRONT_COLOUR = "#2ca02c"
_REFERENCE_COLOUR = "#9467bd"
_TARGET_SPAN = 3.0  # draw the target line only if it lies within this many data ranges
_PAD = 0.06  # share of the axis span left free beyond the outermost point or line
# Plotly dims unselected points to 20% opacity by default: open circles would vanish.
_SELECTION = {"selected": {"marker": {"size": 14}}, "unselected": {"marker": {"opacity": 0.5}}}


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _colour_axis(frame: pd.DataFrame, colour: str) -> tuple[pd.Series, dict[str, Any]]:
    """Marker colours for a knob: numbers on a continuous scale, other values as categories."""
    values = frame[f"knob:{colour}"]
    if _is_numeric(values):
        return values, {"colorscale": "Viridis", "colorbar": {"title": {"text": colour}}}
    categories = sorted(values.dropna().astype(str).unique())
    codes = values.astype(str).map({c: i for i, c in enumerate(categories)})
    palette = qualitative.Set2
    n = max(len(categories), 1)
    scale = []
    for i in range(n):  # one flat band per category
        c = palette[i % len(palette)]
        scale += [[i / n, c], [(i + 1) / n, c]]
    bar = {
        "title": {"text": colour},
        "tickvals": [i + 0.5 for i in range(n)],
        "ticktext": categories,
    }
    return codes + 0.5, {"colorscale": scale, "cmin": 0, "cmax": n, "colorbar": bar}


def _hover(x: str, y: str) -> str:
    return (
        "trial %{customdata[0]} (%{customdata[1]})<br>"
        f"{x}: %{{x:.4g}}<br>{y}: %{{y:.4g}}<br>"
        "params %{customdata[2]}, MACs %{customdata[3]}<extra></extra>"
    )


def _trial_traces(
    frame: pd.DataFrame, x: str, y: str, colour: str | None
) -> tuple[list[go.Scatter], dict[str, Any] | None]:
    traces = []
    marker_colour: dict[str, Any] = {}
    if colour and f"knob:{colour}" in frame:
        values, axis = _colour_axis(frame, colour)
        marker_colour = {"values": values, "axis": axis}
    for status, (symbol, default_colour, text) in STATUS_STYLE.items():
        part = frame[(frame["status"] == status) & frame[x].notna() & frame[y].notna()]
        if part.empty:
            continue
        marker: dict[str, Any] = {"symbol": symbol, "size": 10, "line": {"width": 1.5}}
        if marker_colour and status in ("feasible", "infeasible"):
            marker.update(color=marker_colour["values"][part.index], coloraxis="coloraxis")
        else:
            marker.update(color=default_colour)
        custom = list(
            zip(
                part["number"],
                part["status"],
                part["params"].map(fmt_count),
                part["macs"].map(fmt_count),
            )
        )
        traces.append(
            go.Scatter(
                x=part[x],
                y=part[y],
                mode="markers",
                name=f"{text} ({len(part)})",
                marker=marker,
                customdata=custom,
                hovertemplate=_hover(x, y),
                **_SELECTION,
            )
        )
    return traces, marker_colour.get("axis")


def _front_trace(front: pd.DataFrame, x: str, y: str) -> go.Scatter:
    shape = "vh" if METRICS.get(x, ("minimize",))[0] == "maximize" else "hv"
    return go.Scatter(
        x=front[x],
        y=front[y],
        mode="lines",
        line={"shape": shape, "color": _FRONT_COLOUR, "width": 2},
        name=f"Pareto front ({len(front)})",
        hoverinfo="skip",
    )


def _reference_trace(references: pd.DataFrame, x: str, y: str) -> go.Scatter:
    refs = references.dropna(subset=[x, y])
    labels = [
        p + ("*" if r else "") + ("†" if a else "")
        for p, r, a in zip(refs["preset"], refs["reconstructed"], refs["adapted"])
    ]
    return go.Scatter(
        x=refs[x],
        y=refs[y],
        mode="markers+text",
        text=labels,
        textposition="top center",
        textfont={"size": 11, "color": _REFERENCE_COLOUR},
        marker={
            "symbol": "star",
            "size": 15,
            "color": _REFERENCE_COLOUR,
            "line": {"width": 1, "color": "white"},
        },
        name=f"published variants ({len(refs)})",
        customdata=list(
            zip(refs["preset"], refs["params"].map(fmt_count), refs["macs"].map(fmt_count))
        ),
        hovertemplate=(
            f"preset %{{customdata[0]}}<br>{x}: %{{x:.4g}}<br>{y}: %{{y:.4g}}<br>"
            "params %{customdata[1]}, MACs %{customdata[2]}<extra></extra>"
        ),
        selected={"marker": {"opacity": 1}},
        unselected={"marker": {"opacity": 0.6}, "textfont": {"color": _REFERENCE_COLOUR}},
    )


def _target_line(fig: go.Figure, frame: pd.DataFrame, x: str, y: str, target_ms: float) -> str:
    """Draw the latency target on the latency axis; returns a note when it is off the chart."""
    axis = "x" if x == "latency_ms" else "y" if y == "latency_ms" else None
    if axis is None:
        return "the latency target is drawn only when latency is on an axis"
    values = frame["latency_ms"].dropna()
    lo, hi = (values.min(), values.max()) if len(values) else (target_ms, target_ms)
    if len(values) and target_ms > hi + _TARGET_SPAN * max(hi - lo, 0.1 * hi):
        return f"the latency target ({target_ms:.0f} ms) is far right of every trial"
    style = {
        "line_dash": "dash",
        "line_color": "#d62728",
        "annotation_text": f"target {target_ms:g} ms",
        "annotation_font_color": "#d62728",
    }
    if axis == "x":
        fig.add_vline(x=target_ms, annotation_position="top right", **style)
    else:
        fig.add_hline(y=target_ms, annotation_position="bottom right", **style)
    _pad_axis(fig, axis, target_ms)
    return ""


def _pad_axis(fig: go.Figure, axis: str, line_at: float) -> None:
    """Fix the latency axis' range so the target line never sits on its edge."""
    values = [line_at]
    for trace in fig.data:
        data = getattr(trace, axis)
        if data is not None:
            values += [float(v) for v in data if v is not None and v == v]
    lo, hi = min(values), max(values)
    pad = _PAD * (hi - lo) if hi > lo else 0.5
    fig.update_layout({f"{axis}axis_range": [lo - pad, hi + pad]})


def pareto_figure(
    frame: pd.DataFrame,
    x: str,
    y: str,
    *,
    front: pd.DataFrame | None = None,
    colour: str | None = None,
    target_ms: float | None = None,
    references: pd.DataFrame | None = None,
    selected: int | None = None,
    space: str | None = None,
) -> tuple[go.Figure, str]:
    """The Pareto explorer: trials by status, the front as a step line, target and presets.

    Returns:
        The figure and a note for the page (empty, or why the target line is missing).
    """
    traces, axis = _trial_traces(frame, x, y, colour)
    fig = go.Figure()
    if front is not None and len(front) > 1:
        fig.add_trace(_front_trace(front, x, y))
    for trace in traces:
        fig.add_trace(trace)
    if references is not None and not references.empty and {x, y} <= set(references):
        fig.add_trace(_reference_trace(references, x, y))
    note = "" if target_ms is None else _target_line(fig, frame, x, y, target_ms)
    if selected is not None and selected in set(frame["number"]):
        row = frame[frame["number"] == selected].iloc[0]
        if pd.notna(row[x]) and pd.notna(row[y]):
            fig.add_annotation(
                x=row[x],
                y=row[y],
                text=f"trial {selected}",
                showarrow=True,
                arrowhead=2,
                ax=30,
                ay=-30,
                font={"color": "#d62728"},
            )
    fig.update_layout(
        xaxis_title=objective_label(x, space),
        yaxis_title=objective_label(y, space),
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        height=520,
        clickmode="event+select",
    )
    if axis:
        fig.update_layout(coloraxis=axis)
    return fig, note


def stage_figure(stages: pd.DataFrame) -> go.Figure:
    """Share of parameters and MACs per stage (``archlab.report.breakdown.stage_table``), grouped
    bars."""
    fig = go.Figure()
    for column, label, colour in (
        ("params_share", "parameters", "#1f77b4"),
        ("macs_share", "MACs", "#ff7f0e"),
    ):
        raw = stages[column.removesuffix("_share")]
        fig.add_trace(
            go.Bar(
                y=stages["stage"],
                x=100 * stages[column].astype(float),
                orientation="h",
                name=label,
                marker_color=colour,
                text=[fmt_count(v) for v in raw],
                textposition="outside",
                hovertemplate="%{y}: %{x:.1f}%<extra>" + label + "</extra>",
            )
        )
    top = 100 * stages[["params_share", "macs_share"]].astype(float).to_numpy().max(initial=0)
    fig.update_layout(
        barmode="group",
        xaxis_title="share of the model (%)",
        xaxis_range=[0, top * 1.3 + 1],
        yaxis={"autorange": "reversed"},
        height=120 + 44 * len(stages),
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        legend={"orientation": "h", "yanchor": "top", "y": -0.12, "x": 0},
    )
    return fig


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
    dims += [_dimension(frame[f"objective:{o}"], o, knob=False) for o in objectives]
    colour = frame[f"objective:{objectives[-1]}"].astype(float)
    fig = go.Figure(
        go.Parcoords(
            dimensions=dims,
            line={
                "color": colour,
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": {"text": objectives[-1]}},
            },
        )
    )
    fig.update_layout(height=420, margin={"l": 60, "r": 60, "t": 50, "b": 20})
    return fig

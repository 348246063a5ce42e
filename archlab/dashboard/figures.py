"""Plotly figures of the Pareto explorer and of a trial's stage breakdown.

Every function takes plain frames (from :mod:`archlab.dashboard.data`,
:mod:`archlab.search.references`) and returns a ``plotly.graph_objects.Figure``; nothing is read
here. The study health figures are in :mod:`archlab.dashboard.health_figures`.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from archlab.dashboard.axes import (
    OffScale,
    categories,
    category_text,
    fitted_range,
    is_categorical,
    near,
    off_scale,
    with_gutters,
)
from archlab.dashboard.data import (
    ACCURACY_METRICS,
    METRICS,
    TRAINED,
    TRAINED_SOURCE,
    objective_label,
    preset_label,
)
from archlab.dashboard.units import fmt_metric, tick_style
from archlab.report.tables import fmt_count

__all__ = ["OFF_SCALE_TRACE", "PRESETS_TRACE", "STATUS_STYLE", "pareto_figure", "stage_figure"]

#: Marker of each trial status: (symbol, colour, legend text).
STATUS_STYLE: dict[str, tuple[str, str, str]] = {
    "feasible": ("circle", "#1f77b4", "within target"),
    "infeasible": ("circle-open", "#7f7f7f", "over latency target"),
    "pruned": ("triangle-down-open", "#ff7f0e", "pruned (impossible knobs)"),
    "failed": ("x-thin-open", "#d62728", "failed"),
    "running": ("circle-dot", "#bcbd22", "running"),
}
#: Names of the published variants' traces (on the chart, and arrows for those off it).
PRESETS_TRACE, OFF_SCALE_TRACE = "presets", "presets beyond the axes"
_FRONT_COLOUR = "#2ca02c"
_REFERENCE_COLOUR = "#9467bd"
_TARGET_SPAN = 3.0  # draw the target line only if it lies within this many data ranges
_HOVER_LABEL = {"bgcolor": "white", "bordercolor": "#444", "font": {"color": "#111", "size": 13}}
# Plotly dims unselected points to 20% opacity by default: open circles would vanish.
_SELECTION = {"selected": {"marker": {"size": 14}}, "unselected": {"marker": {"opacity": 0.5}}}


def _colour_axis(frame: pd.DataFrame, colour: str) -> tuple[pd.Series, dict[str, Any]]:
    """Marker colours for a knob: many numbers on a continuous scale, few values as categories."""
    values = frame[f"knob:{colour}"]
    if not is_categorical(values):
        return values, {"colorscale": "Viridis", "colorbar": {"title": {"text": colour}}}
    names = categories(values)
    codes = values.map(lambda v: names.index(category_text(v)) if pd.notna(v) else None)
    palette = qualitative.Set2 if len(names) <= len(qualitative.Set2) else qualitative.Alphabet
    n = max(len(names), 1)
    scale = []
    for i in range(n):  # one flat band per category
        c = palette[i % len(palette)]
        scale += [[i / n, c], [(i + 1) / n, c]]
    bar = {"title": {"text": colour}, "tickvals": [i + 0.5 for i in range(n)], "ticktext": names}
    return codes + 0.5, {"colorscale": scale, "cmin": 0, "cmax": n, "colorbar": bar}


def _hover_lines(row: pd.Series, metrics: list[str]) -> list[str]:
    """'name: value' for each metric the row has, named as on the axes."""
    return [
        f"{objective_label(m)}: {fmt_metric(m, row.get(m))}"
        for m in dict.fromkeys(metrics)
        if m in row and pd.notna(row.get(m))
    ]


def _trial_hover(row: pd.Series, x: str, y: str) -> str:
    head = f"<b>trial {int(row['number'])}</b> ({STATUS_STYLE[row['status']][2]})"
    accuracy = [TRAINED, *ACCURACY_METRICS]  # those the trial has: the trained one and estimates
    lines = _hover_lines(row, [x, y, *accuracy, "latency_ms", "params", "macs"])
    return "<br>".join([head, *lines])


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
        hover = [_trial_hover(row, x, y) for _, row in part.iterrows()]
        traces.append(
            go.Scatter(
                x=part[x],
                y=part[y],
                mode="markers",
                name=f"{text} ({len(part)})",
                marker=marker,
                customdata=list(zip(part["number"], part["status"], hover)),
                hovertemplate="%{customdata[2]}<extra></extra>",
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


def _preset_hover(row: pd.Series, x: str, y: str) -> str:
    lines = _hover_lines(row, [x, y, "latency_ms", "params", "macs"])
    source = row.get(TRAINED_SOURCE) if TRAINED in (x, y) else None
    if isinstance(source, str):
        lines.append(f"trained accuracy: {source}")
    return "<br>".join([f"<b>published variant {preset_label(row)}</b>", *lines])


def _named(refs: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """The presets that have both metrics, with their marked names in a ``name`` column."""
    refs = refs.dropna(subset=[x, y])
    return refs.assign(name=[preset_label(r) for _, r in refs.iterrows()])


def _reference_traces(
    refs: pd.DataFrame,
    x: str,
    y: str,
    ranges: tuple[tuple[float, float], tuple[float, float]] | None,
    log_x: bool,
) -> tuple[list[go.Scatter], list[OffScale]]:
    """Stars for the presets within the axes, edge arrows for the others (and where those are)."""
    hover = {r["name"]: _preset_hover(r, x, y) for _, r in refs.iterrows()}
    away = off_scale(refs, x, y, *ranges, x_log=log_x) if ranges else []
    gone = {m.name for m in away}
    shown = refs[~refs["name"].isin(gone)]
    style = {"color": _REFERENCE_COLOUR, "line": {"width": 1, "color": "white"}}
    traces = []
    if len(shown):
        traces.append(
            go.Scatter(
                x=shown[x],
                y=shown[y],
                mode="markers",
                marker={"symbol": "star", "size": 15, **style},
                name=f"{PRESETS_TRACE} ({len(shown)})",
                customdata=[[n, hover[n]] for n in shown["name"]],
                hovertemplate="%{customdata[1]}<extra></extra>",
                selected={"marker": {"opacity": 1}},
                unselected={"marker": {"opacity": 0.6}},
            )
        )
    if away:
        traces.append(
            go.Scatter(
                x=[m.x for m in away],
                y=[m.y for m in away],
                mode="markers",
                marker={"symbol": [m.symbol for m in away], "size": 13, **style},
                name=f"{OFF_SCALE_TRACE} ({len(away)})",
                customdata=[[m.name, hover[m.name]] for m in away],
                hovertemplate="%{customdata[1]}<br>(beyond the axes)<extra></extra>",
                cliponaxis=False,
                selected={"marker": {"opacity": 1}},
                unselected={"marker": {"opacity": 0.8}},
            )
        )
    return traces, away


def _label_off_scale(fig: go.Figure, away: list[OffScale], log_x: bool) -> None:
    """Each off-scale marker's values on a white label, readable over the points it covers."""
    for m in away:
        xanchor, yanchor, xshift, yshift = m.anchor
        fig.add_annotation(
            x=math.log10(m.x) if log_x else m.x,  # annotations on a log axis take log units
            y=m.y,
            text=m.text,
            showarrow=False,
            xanchor=xanchor,
            yanchor=yanchor,
            xshift=xshift,
            yshift=yshift,
            font={"color": _REFERENCE_COLOUR, "size": 12},
            bgcolor="rgba(255, 255, 255, 0.85)",
        )


def _target_at(frame: pd.DataFrame, target_ms: float) -> tuple[bool, str]:
    """Whether the target line is near enough to the trials to draw, and a note when not."""
    values = frame["latency_ms"].dropna()
    if not len(values):
        return True, ""
    lo, hi = values.min(), values.max()
    if target_ms > hi + _TARGET_SPAN * max(hi - lo, 0.1 * hi):
        return False, f"the latency target ({target_ms:.0f} ms) is far right of every trial"
    return True, ""


def _draw_target(fig: go.Figure, axis: str, target_ms: float) -> None:
    style = {
        "line_dash": "dash",
        "line_color": "#d62728",
        "annotation_text": f"target {target_ms:g} ms",
        "annotation_font_color": "#d62728",
    }
    if axis == "x":
        fig.add_vline(x=target_ms, annotation_position="bottom left", **style)
    else:
        fig.add_hline(y=target_ms, annotation_position="bottom right", **style)


def _ranges(
    frame: pd.DataFrame,
    x: str,
    y: str,
    extra: dict[str, list[float]],
    log_x: bool,
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The axes fitted to the plotted trials plus ``extra`` values per axis."""
    plotted = frame[frame[x].notna() & frame[y].notna()]
    xr = fitted_range([*plotted[x], *extra.get("x", [])], log=log_x)
    yr = fitted_range([*plotted[y], *extra.get("y", [])])
    return None if xr is None or yr is None else (xr, yr)


def _mark_selected(fig: go.Figure, frame: pd.DataFrame, x: str, y: str, selected: int) -> None:
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
    fit_trials: bool = True,
    log_x: bool = False,
) -> tuple[go.Figure, str]:
    """The Pareto explorer: trials by status, the front as a step line, target and presets.

    Args:
        fit_trials: fit the axes to the trials (and a nearby target line); presets beyond them
            are drawn as arrows on the edge, with their values. False: fit everything.
        log_x: a logarithmic x axis.

    Returns:
        The figure and a note for the page: why the target line is missing, and how far an
        accuracy estimate on an axis agrees with training in ``space`` (empty if neither).
    """
    traces, axis = _trial_traces(frame, x, y, colour)
    fig = go.Figure()
    if front is not None and len(front) > 1:
        fig.add_trace(_front_trace(front, x, y))
    fig.add_traces(traces)
    note, extra = _target(fig, frame, x, y, target_ms)
    refs = references if references is not None and {x, y} <= set(references) else None
    if refs is not None:
        _add_preset_values(extra, frame, refs, x, y, fit_trials, log_x)
    ranges = _ranges(frame, x, y, extra, log_x)
    if refs is not None and not refs.empty:
        refs = _named(refs, x, y)
        if ranges is not None:  # a strip beyond the trials for the presets off the axes
            ranges = with_gutters(refs, x, y, *ranges, x_log=log_x)
        preset_traces, away = _reference_traces(refs, x, y, ranges, log_x)
        fig.add_traces(preset_traces)
        _label_off_scale(fig, away, log_x)
    if selected is not None and selected in set(frame["number"]):
        _mark_selected(fig, frame, x, y, selected)
    _layout(fig, x, y, log_x)
    if ranges is not None:
        fig.update_layout(xaxis_range=list(ranges[0]), yaxis_range=list(ranges[1]))
    if axis:
        fig.update_layout(coloraxis=axis)
    return fig, " · ".join(n for n in [note, *_evidence(x, y, space)] if n)


def _target(
    fig: go.Figure, frame: pd.DataFrame, x: str, y: str, target_ms: float | None
) -> tuple[str, dict[str, list[float]]]:
    """Draw the latency target when latency is on an axis and the line is near the trials.

    Returns:
        A note when it is not drawn, and the values the axes must take in (the line's).
    """
    latency_axis = "x" if x == "latency_ms" else "y" if y == "latency_ms" else None
    if target_ms is None:
        return "", {}
    if latency_axis is None:
        return "the latency target is drawn only when latency is on an axis", {}
    close, note = _target_at(frame, target_ms)
    if not close:
        return note, {}
    _draw_target(fig, latency_axis, target_ms)
    return "", {latency_axis: [target_ms]}


def _add_preset_values(
    extra: dict[str, list[float]],
    frame: pd.DataFrame,
    refs: pd.DataFrame,
    x: str,
    y: str,
    fit_trials: bool,
    log_x: bool,
) -> None:
    """Add to ``extra`` the preset values the axes take in: all, or only those near the trials."""
    plotted = frame[frame[x].notna() & frame[y].notna()]
    for axis_name, metric in (("x", x), ("y", y)):
        wanted = list(refs[metric].dropna().astype(float))
        if fit_trials:
            log = log_x and axis_name == "x"
            wanted = near(wanted, plotted[metric].astype(float), log=log)
        extra[axis_name] = [*extra.get(axis_name, []), *wanted]


def _layout(fig: go.Figure, x: str, y: str, log_x: bool) -> None:
    fig.update_layout(
        xaxis={"title": objective_label(x), **tick_style(x), "type": "log" if log_x else "linear"},
        yaxis={"title": objective_label(y), **tick_style(y)},
        # below the x title: above the plot it ran under plotly's toolbar
        legend={"orientation": "h", "yanchor": "top", "y": -0.14, "x": 0},
        margin={"l": 10, "r": 10, "t": 34, "b": 10},  # the top: plotly's toolbar
        height=500,
        clickmode="event+select",
        hoverlabel=_HOVER_LABEL,
    )


def _evidence(x: str, y: str, space: str | None) -> list[str]:
    """How far each axis' accuracy estimate agrees with training in this space: too long for
    an axis title, so the page states it under the chart."""
    return [
        objective_label(m, space)
        for m in dict.fromkeys((x, y))
        if objective_label(m, space) != objective_label(m)
    ]


def stage_figure(stages: pd.DataFrame) -> go.Figure:
    """Share of parameters, MACs and (when timed) latency per stage
    (``archlab.report.breakdown.stage_table``), grouped bars."""
    fig = go.Figure()
    bars = [("params_share", "parameters", "#1f77b4"), ("macs_share", "MACs", "#ff7f0e")]
    if "latency_share" in stages and stages["latency_share"].notna().any():
        bars.append(("latency_share", "latency", "#2ca02c"))
    for column, label, colour in bars:
        raw = stages[column.removesuffix("_share") if column != "latency_share" else "latency_ms"]
        text = [
            fmt_count(v) if column != "latency_share" else fmt_metric("latency_ms", v) for v in raw
        ]
        fig.add_trace(
            go.Bar(
                y=stages["stage"],
                x=100 * stages[column].astype(float),
                orientation="h",
                name=label,
                marker_color=colour,
                text=text,
                textposition="outside",
                hovertemplate="%{y}: %{x:.1f}%<extra>" + label + "</extra>",
            )
        )
    shares = stages[[c for c, _, _ in bars]].astype(float).to_numpy()
    top = 100 * pd.Series(shares.ravel()).max(skipna=True) if shares.size else 0.0
    fig.update_layout(
        barmode="group",
        xaxis_title="share of the model (%)",
        xaxis_range=[0, (0 if pd.isna(top) else top) * 1.35 + 1],
        yaxis={"autorange": "reversed"},
        height=120 + 22 * len(bars) * len(stages),
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        legend={"orientation": "h", "yanchor": "top", "y": -0.12, "x": 0},
    )
    return fig

"""Where the Pareto explorer's axes end, and what it does with points beyond them.

The axes fit the trials (and the latency target when it is near them): a published variant ten
times slower than every trial would otherwise squash the whole search into one corner. Points
off the fitted range get a strip beyond the trials on that side (:func:`with_gutters`) and are
drawn there as arrows labelled with their values, as :func:`off_scale` places them, so that the
labels never cover a trial. Knobs with few values are coloured as categories
(:func:`is_categorical`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from archlab.dashboard.units import fmt_metric

__all__ = [
    "OffScale",
    "PAD",
    "categories",
    "category_text",
    "fitted_range",
    "is_categorical",
    "near",
    "off_scale",
    "with_gutters",
]

PAD = 0.06  # share of the span left free beyond the outermost point or line
NEAR = 0.5  # presets within this share of the trials' span beyond them stay on the axes
MAX_CATEGORIES = 8  # a knob with at most this many distinct values is coloured as categories
GUTTER = 0.16  # share of the span added on a side for the markers of points beyond it
_INSET = 0.015  # an off-scale marker sits this share of the span inside the edge
_GAP = 0.1  # least distance between two off-scale markers on one edge (share of the span)
# (x side, y side) → marker symbol, arrow after the values, and the label's anchor: (xanchor,
# yanchor, xshift px, yshift px) from the marker, keeping the label in that side's strip.
_SIDES: dict[tuple[int, int], tuple[str, str, tuple[str, str, int, int]]] = {
    (1, 0): ("triangle-right", "→", ("right", "bottom", 6, 9)),
    (-1, 0): ("triangle-left", "←", ("left", "bottom", -6, 9)),
    (0, 1): ("triangle-up", "↑", ("left", "middle", 9, 0)),
    (0, -1): ("triangle-down", "↓", ("left", "middle", 9, 0)),
    (1, 1): ("triangle-ne", "↗", ("right", "top", 6, -9)),
    (-1, 1): ("triangle-nw", "↖", ("left", "top", -6, -9)),
    (1, -1): ("triangle-se", "↘", ("right", "bottom", 6, 9)),
    (-1, -1): ("triangle-sw", "↙", ("left", "bottom", -6, 9)),
}


@dataclass(frozen=True)
class OffScale:
    """A point beyond the axes, drawn on the edge it lies beyond."""

    name: str
    x: float  # where the marker sits (data units), just inside the plot
    y: float
    symbol: str  # a triangle pointing towards the true value
    text: str  # the value(s) off the plot, one a line, with an arrow: '355.12 ms →'
    anchor: tuple[str, str, int, int]  # the label's xanchor, yanchor, xshift, yshift


def fitted_range(values: Iterable[float], *, log: bool = False) -> tuple[float, float] | None:
    """The padded range of ``values`` (in log10 units for a log axis, as plotly wants it).

    Returns None when no usable value is left (none, or none positive on a log axis).
    """
    usable = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if log:
        usable = [math.log10(v) for v in usable if v > 0]
    if not usable:
        return None
    lo, hi = min(usable), max(usable)
    pad = PAD * (hi - lo) if hi > lo else (0.05 if log else max(0.05 * abs(hi), 0.5))
    return lo - pad, hi + pad


def near(
    values: Iterable[float], fitted: Iterable[float], *, share: float = NEAR, log: bool = False
) -> list[float]:
    """The ``values`` that lie within ``share`` of the span of ``fitted`` beyond its ends: worth
    stretching the axis for (a preset just beside the trials), unlike values far off."""
    scale = (lambda v: math.log10(v)) if log else (lambda v: v)  # noqa: E731
    base = [scale(v) for v in fitted if not math.isnan(v) and (v > 0 or not log)]
    if not base:
        return []
    lo, hi = min(base), max(base)
    reach = share * (hi - lo if hi > lo else max(abs(hi), 1e-9))
    return [
        v
        for v in values
        if not math.isnan(v) and (v > 0 or not log) and lo - reach <= scale(v) <= hi + reach
    ]


def _sides(
    points: pd.DataFrame,
    x: str,
    y: str,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    x_log: bool,
) -> list[tuple[int, int]]:
    """For each row of ``points``: (-1, 0 or 1 on x, the same on y), 0 meaning within range."""
    out = []
    for px, py in zip(points[x].astype(float), points[y].astype(float)):
        ax = math.log10(px) if x_log and px > 0 else px
        out.append((_side(ax, *x_range), _side(py, *y_range)))
    return out


def with_gutters(
    points: pd.DataFrame,
    x: str,
    y: str,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    *,
    x_log: bool = False,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The ranges widened by a strip on each side that some of ``points`` lie beyond."""
    sides = _sides(points.dropna(subset=[x, y]), x, y, x_range, y_range, x_log)
    widened = []
    for axis, (lo, hi) in enumerate((x_range, y_range)):
        strip = GUTTER * (hi - lo)
        below = any(s[axis] < 0 for s in sides)
        above = any(s[axis] > 0 for s in sides)
        widened.append((lo - strip * below, hi + strip * above))
    return widened[0], widened[1]


def _side(value: float, lo: float, hi: float) -> int:
    return -1 if value < lo else 1 if value > hi else 0


def _clamp(value: float, lo: float, hi: float) -> float:
    inset = _INSET * (hi - lo)
    return min(max(value, lo + inset), hi - inset)


def _spread(positions: list[float], lo: float, hi: float) -> list[float]:
    """Move sorted positions apart to at least the gap, staying within [lo, hi]."""
    gap = _GAP * (hi - lo)
    out = list(positions)
    for i in range(1, len(out)):
        out[i] = max(out[i], out[i - 1] + gap)
    overshoot = out[-1] - (hi - _INSET * (hi - lo)) if out else 0.0
    return [p - overshoot for p in out] if overshoot > 0 else out


def off_scale(
    points: pd.DataFrame,
    x: str,
    y: str,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    *,
    x_log: bool = False,
) -> list[OffScale]:
    """Markers for the rows of ``points`` (columns ``name``, ``x``, ``y``) beyond the ranges.

    ``x_range`` is in log10 units when ``x_log``. Markers on the same edge are spread so that
    their labels do not overlap.
    """
    placed: dict[tuple[int, int], list[tuple[float, float, str, str]]] = {}
    rows = points.dropna(subset=[x, y])
    sides_of = _sides(rows, x, y, x_range, y_range, x_log)
    for name, px, py, sides in zip(rows["name"], rows[x], rows[y], sides_of):
        if sides == (0, 0):
            continue
        ax = math.log10(px) if x_log and px > 0 else float(px)
        values = [fmt_metric(m, v) for m, v, s in ((x, px, sides[0]), (y, py, sides[1])) if s]
        at = (_clamp(ax, *x_range), _clamp(float(py), *y_range))
        placed.setdefault(sides, []).append((*at, str(name), "<br>".join(values)))
    markers = []
    for sides, found in placed.items():
        along = 1 if sides[0] else 0  # markers on a side edge spread along y, others along x
        found.sort(key=lambda r: r[1] if along else r[0])
        spread = _spread([r[1] if along else r[0] for r in found], *(y_range if along else x_range))
        symbol, arrow, anchor = _SIDES[sides]
        for (mx, my, name, text), moved in zip(found, spread):
            mx, my = (mx, moved) if along else (moved, my)
            shown_x = 10**mx if x_log else mx
            markers.append(OffScale(name, shown_x, my, symbol, f"{text} {arrow}", anchor))
    return markers


def is_categorical(values: pd.Series, max_categories: int = MAX_CATEGORIES) -> bool:
    """Whether to colour by ``values`` as categories: text, or numbers with few distinct values."""
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    return not numeric or values.dropna().nunique() <= max_categories


def categories(values: pd.Series) -> list[str]:
    """The distinct values as text, in numeric order for numbers ('2' before '10')."""
    distinct = values.dropna().unique()
    try:
        ordered = sorted(distinct, key=float)
    except (TypeError, ValueError):
        ordered = sorted(distinct, key=str)
    return [category_text(v) for v in ordered]


def category_text(value: object) -> str:
    """A category's label: 4.0 → '4', 'ccf' → 'ccf'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)

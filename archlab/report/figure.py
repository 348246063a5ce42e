"""The per-stage figure of ``archlab report --figure``: stacked bars of MACs, params and latency.

Each bar is one quantity split into the model's stages (shares of the whole, so the three bars can
be compared at a glance: a stage with a larger latency share than MAC share runs below the model's
average arithmetic rate). Totals are printed above the bars. Uses matplotlib's object API only, so
no display or pyplot state is involved.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from archlab.report.tables import fmt_count

__all__ = ["FIGURE_SUFFIXES", "save_stage_figure", "stage_figure"]

FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def _bars(stages: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(label, share column, total text) for each quantity present."""
    bars = [
        ("MACs", "macs_share", f"{fmt_count(stages['macs'].sum())} MACs"),
        ("params", "params_share", f"{fmt_count(stages['params'].sum())} params"),
    ]
    latency = stages["latency_ms"].dropna()
    if len(latency):
        bars.append(("latency\n(in context)", "latency_share", f"{latency.sum():.1f} ms"))
    return bars


def stage_figure(stages: pd.DataFrame, title: str) -> Figure:
    """Stacked bars (one per quantity) of each stage's share, from :func:`stage_table`."""
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.add_subplot()
    bars = _bars(stages)
    bottoms = [0.0] * len(bars)
    for _, row in stages.iterrows():
        shares = [max(0.0, float(row[col] or 0.0)) * 100 for _, col, _ in bars]
        ax.bar([b[0] for b in bars], shares, bottom=bottoms, label=row["stage"], width=0.6)
        bottoms = [b + s for b, s in zip(bottoms, shares)]
    for i, (_, _, total) in enumerate(bars):
        ax.annotate(
            total,
            (i, bottoms[i]),
            ha="center",
            va="bottom",
            fontsize=9,
            xytext=(0, 3),
            textcoords="offset points",
        )
    ax.set_ylabel("share of the whole model (%)")
    ax.set_ylim(0, max(bottoms + [100.0]) * 1.08)
    ax.set_title(title, fontsize=10)
    ax.legend(title="stage", fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def save_stage_figure(stages: pd.DataFrame, title: str, path: Path) -> Path:
    """Draw and save the figure; the format follows the suffix (.png, .svg or .pdf).

    Raises:
        ValueError: an unsupported suffix.
    """
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise ValueError(f"--figure {path}: use one of {list(FIGURE_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    stage_figure(stages, title).savefig(path, dpi=150)
    return path

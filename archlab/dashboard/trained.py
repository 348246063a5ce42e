"""How a study's accuracy estimate ranked the trials that were then trained for real.

Once ``archlab train`` has trained some of a study's trials, the estimate the search optimised can
be read against their trained accuracy: a scatter of the two and Spearman's ρ over those trials.
The trained trials are usually the feasible front, where the estimate and latency rise together by
construction, so this ρ says mostly whether the larger archs trained better; how the estimate ranks
a space's archs at random is the evidence on the axis label (docs/accuracy.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from archlab.dashboard.data import TRAINED, objective_label
from archlab.estimate.rank_stats import spearman

__all__ = ["EstimateCheck", "estimate_vs_training"]

MIN_TRIALS = 3  # fewer trained trials give no rank correlation worth a figure


@dataclass(frozen=True)
class EstimateCheck:
    figure: go.Figure
    spearman: float  # over the trained trials that have the estimate
    trials: int


def estimate_vs_training(trials: pd.DataFrame, estimate: str) -> EstimateCheck | None:
    """The scatter of ``estimate`` against trained accuracy over the trials that have both, with
    their Spearman ρ; None with fewer than :data:`MIN_TRIALS` such trials."""
    if estimate not in trials or TRAINED not in trials:
        return None
    both = trials.dropna(subset=[estimate, TRAINED])
    if len(both) < MIN_TRIALS:
        return None
    rho = spearman(both[estimate].to_numpy(float), both[TRAINED].to_numpy(float))
    spread = both.get(f"{TRAINED}_std")
    fig = go.Figure(
        go.Scatter(
            x=both[estimate],
            y=both[TRAINED],
            mode="markers",
            marker={"size": 9},
            error_y=None if spread is None else {"type": "data", "array": spread.fillna(0)},
            customdata=np.asarray(both["number"]),
            hovertemplate="trial %{customdata}<br>%{x:.4g} → %{y:.4f}<extra></extra>",
            name="trained trials",
        )
    )
    fig.update_layout(
        xaxis_title=objective_label(estimate),
        yaxis_title="trained accuracy (± SD over seeds)",
        height=320,
        margin={"l": 60, "r": 20, "t": 20, "b": 50},
        showlegend=False,
    )
    return EstimateCheck(fig, rho, len(both))

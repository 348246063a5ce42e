"""The Pareto front on any two metrics, and what each step along it buys.

A step in latency smaller than the latency spread of the two trials it joins (their larger IQR)
is marked as within noise: the search cannot tell those two latencies apart.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from archlab.dashboard.data import METRICS, objective_label
from archlab.dashboard.units import sig, within_noise

__all__ = ["front_2d", "gains_table", "marginal_gains"]

_NOISE = "latency_iqr_ms"


def _minimised(values: pd.Series, metric: str) -> pd.Series:
    return -values if METRICS.get(metric, ("minimize",))[0] == "maximize" else values


def front_2d(frame: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Feasible trials not dominated on the two metrics ``x`` and ``y``, sorted by ``x``.

    Directions come from :data:`~archlab.dashboard.data.METRICS`. Trials with equal values on
    both axes are kept once.
    """
    if frame.empty:
        return frame
    pool = frame[(frame["status"] == "feasible") & frame[x].notna() & frame[y].notna()]
    mx, my = _minimised(pool[x], x), _minimised(pool[y], y)
    order = pd.DataFrame({"mx": mx, "my": my}).sort_values(["mx", "my"], kind="stable").index
    keep, best = [], math.inf
    for idx in order:
        if my[idx] < best:
            keep.append(idx)
            best = my[idx]
    return pool.loc[keep].sort_values(x, kind="stable").reset_index(drop=True)


def marginal_gains(front: pd.DataFrame, cost: str, gain: str) -> pd.DataFrame:
    """Walk the front from the cheapest point: what each step of extra ``cost`` buys in ``gain``.

    Returns:
        One row per front trial: its values, the step from the previous cheaper point, the gain
        per unit of extra cost (NaN for the cheapest point) and, when the cost is latency, the
        step's noise (the larger latency IQR of its two trials) and whether it is within it.
    """
    columns = ["trial", cost, gain, "extra cost", "gain", "gain per unit of cost"]
    if front.empty:
        return pd.DataFrame(columns=[*columns, "noise", "within noise"])
    ordered = front.iloc[_minimised(front[cost], cost).argsort(kind="stable")]
    steps = ordered[cost].diff().abs()
    gains = _minimised(ordered[gain], gain).diff() * -1
    out = pd.DataFrame(
        {
            "trial": ordered["number"].astype(int).to_numpy(),
            cost: ordered[cost].to_numpy(),
            gain: ordered[gain].to_numpy(),
            "extra cost": steps.to_numpy(),
            "gain": gains.to_numpy(),
            "gain per unit of cost": (gains / steps.where(steps > 0)).to_numpy(),
        }
    )
    noise = np.full(len(out), np.nan)
    if cost == "latency_ms" and _NOISE in ordered:
        spread = ordered[_NOISE].astype(float).to_numpy()
        noise[1:] = np.fmax(spread[1:], spread[:-1])
    out["noise"] = noise
    out["within noise"] = [within_noise(s, n) for s, n in zip(out["extra cost"], noise)]
    return out


def gains_table(gains: pd.DataFrame, cost: str, gain: str) -> pd.DataFrame:
    """A :func:`marginal_gains` table for people: 3 significant figures, the metrics' names, and
    steps within the latency noise said so."""
    unit = "ms" if cost == "latency_ms" else objective_label(cost)
    cost_name, gain_name = objective_label(cost), objective_label(gain)
    quiet = gains["within noise"].astype(bool)
    shown = {
        "trial": gains["trial"],
        cost_name: gains[cost].map(sig),
        gain_name: gains[gain].map(sig),
        f"extra {unit}": gains["extra cost"].map(lambda v: "start" if pd.isna(v) else f"+{sig(v)}"),
        "gained": gains["gain"].map(_signed),
        f"gained per extra {unit}": [
            "–" if q else sig(v) for v, q in zip(gains["gain per unit of cost"], quiet)
        ],
    }
    if cost == "latency_ms":
        shown["latency step"] = [
            "start" if i == 0 else "–" if pd.isna(n) else "within noise" if q else "measurable"
            for i, (n, q) in enumerate(zip(gains["noise"], quiet))
        ]
    return pd.DataFrame(shown)


def _signed(value: float) -> str:
    return "start" if pd.isna(value) else ("+" if value >= 0 else "") + sig(value)

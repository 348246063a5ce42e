"""Trials side by side: their metrics, the better value of each, and the knobs that differ."""

from __future__ import annotations

import pandas as pd

from archlab.dashboard.data import COSTS, METRICS, StudyData, objective_label
from archlab.dashboard.units import fmt_metric

__all__ = ["better_marks", "compared_metrics", "config_diff", "metrics_table"]

_CI = "latency_ci_rel"
_DURATION = "duration_s"
_LABELS = {_CI: "95% CI of the median", _DURATION: "trial time (s)"}


def compared_metrics(data: StudyData) -> list[str]:
    """The metrics compared, in table order: latency and its spread, the estimates any trial
    carries, then sizes, memory and the trial's own time."""
    estimates = [
        m for m in METRICS if m not in COSTS and m in data.trials and data.trials[m].notna().any()
    ]
    sizes = [m for m in ("params", "macs", "peak_memory_bytes") if m in data.trials]
    return ["latency_ms", "latency_iqr_ms", _CI, *estimates, *sizes, _DURATION]


def _cell(metric: str, value: object) -> str:
    if metric == _CI:
        return "–" if pd.isna(value) else f"±{100 * float(value):.1f}%"  # type: ignore[arg-type]
    if metric == _DURATION:
        return "–" if pd.isna(value) else f"{float(value):.1f}"  # type: ignore[arg-type]
    return fmt_metric(metric, value)


def metrics_table(data: StudyData, numbers: list[int]) -> pd.DataFrame:
    """Status and metrics of the given trials side by side, formatted for people."""
    metrics = compared_metrics(data)
    labels = ["status", *(_LABELS.get(m) or objective_label(m) for m in metrics)]
    columns = {}
    for n in numbers:
        row = data.row(n)
        columns[f"trial {n}"] = [row["status"], *(_cell(m, row.get(m)) for m in metrics)]
    return pd.DataFrame({"metric": labels, **columns})


def better_marks(data: StudyData, numbers: list[int]) -> pd.DataFrame:
    """Which cell of :func:`metrics_table` holds the better value of its row (ties: all of them).

    Rows without a direction (status, the CI, the trial's time) or with fewer than two values
    mark nothing.
    """
    metrics = compared_metrics(data)
    marks = pd.DataFrame(False, index=range(len(metrics) + 1), columns=["metric"])
    for n in numbers:
        marks[f"trial {n}"] = False
    for i, metric in enumerate(metrics, start=1):
        if metric not in METRICS:
            continue
        values = pd.Series({n: data.row(n).get(metric) for n in numbers}, dtype=float).dropna()
        if len(values) < 2 or values.nunique() < 2:
            continue
        best = values.max() if METRICS[metric][0] == "maximize" else values.min()
        for n in values.index[values == best]:
            marks.loc[i, f"trial {n}"] = True
    return marks


def config_diff(data: StudyData, numbers: list[int]) -> pd.DataFrame:
    """The knobs whose values differ between the given trials (one column per trial)."""
    missing = [n for n in numbers if n not in data.arch]
    if missing:
        raise KeyError(f"no trial(s) {missing} in study {data.name!r}")
    rows = []
    for knob in data.knobs:
        values = [data.arch[n].get(knob) for n in numbers]
        if len({repr(v) for v in values}) > 1:
            rows.append({"knob": knob, **{f"trial {n}": v for n, v in zip(numbers, values)}})
    # object columns: an int knob stays 64, not 64.0 beside a missing value
    return pd.DataFrame(rows, columns=["knob", *[f"trial {n}" for n in numbers]], dtype=object)

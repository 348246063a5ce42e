"""How the dashboard writes numbers: one convention for every page, the same as the CLI's.

Counts (parameters, MACs) and bytes use :func:`archlab.report.tables.fmt_count` (``4.80k``,
``2.50G``, ``12.3MB``; powers of 1000, as ``--max-memory`` reads them); latencies are in ms;
estimates and ratios keep a few significant figures. Plotly's own axis ticks follow the same
letters when the axis is given :func:`tick_style`.
"""

from __future__ import annotations

import math
from typing import Any

from archlab.report.tables import fmt_count

__all__ = ["fmt_bytes", "fmt_metric", "sig", "tick_style", "within_noise"]

_COUNTS = ("params", "macs")
_BYTES = ("peak_memory_bytes",)
_MILLISECONDS = ("latency_ms", "latency_iqr_ms")


def sig(value: float | None, digits: int = 3) -> str:
    """``value`` to ``digits`` significant figures, without exponent in the usual range.

    Example:
        >>> sig(0.0034013), sig(2.7361), sig(1234.5), sig(-0.3823, 2)
        ('0.00340', '2.74', '1230', '-0.38')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value == 0:
        return "0"
    rounded = float(f"{value:.{digits - 1}e}")  # 9.996 → 10.0: the magnitude may change
    magnitude = math.floor(math.log10(abs(rounded)))
    if magnitude < -4 or magnitude >= 6:
        return f"{value:.{digits - 1}e}"
    return f"{rounded:.{max(digits - 1 - magnitude, 0)}f}"


def fmt_bytes(value: float | None) -> str:
    """1234567 → '1.23MB' (powers of 1000)."""
    return fmt_count(value, "B")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_metric(metric: str, value: Any) -> str:
    """A metric's value as every page shows it: '4.37 ms', '167.66k', '2.50G', '12.3MB', '35.3'."""
    if _missing(value):
        return "–"
    if metric in _COUNTS:
        return fmt_count(float(value))
    if metric in _BYTES:
        return fmt_bytes(float(value))
    if metric in _MILLISECONDS:
        return f"{float(value):.2f} ms"
    return sig(float(value), 4 if abs(float(value)) >= 10 else 3)


def tick_style(metric: str) -> dict[str, Any]:
    """Plotly axis settings that write the metric's ticks like :func:`fmt_metric` does."""
    if metric in _COUNTS:
        return {"exponentformat": "SI"}  # 2.5G, not plotly's default 2.5B
    if metric in _BYTES:
        return {"exponentformat": "SI", "ticksuffix": "B"}
    return {}


def within_noise(step: float | None, noise: float | None) -> bool:
    """Whether a step in latency is smaller than the measurements' spread (so not a real step)."""
    if _missing(step) or _missing(noise):
        return False
    return abs(float(step)) < float(noise)  # type: ignore[arg-type]

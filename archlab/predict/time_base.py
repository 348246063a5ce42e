"""How fast the machine runs now, relative to when a device profile was made.

A profile's block table and calibration are in the time base of the minutes it was measured in. On
a shared VM the same model can run 20-30% slower a few minutes later with no other process of ours
running (the host's other tenants), so a prediction can be off by a factor common to every model.
Timing some of the profile's calibration models (its anchors) again, interleaved with the models
being measured, gives that factor: the geometric mean of ``now / then`` over the anchors. Dividing a
measurement by it puts it on the profile's time base, where predicted and measured figures compare.

It only means something on the machine and setup the profile was made on.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from archlab.predict.profile import Anchor

__all__ = ["TimeBase", "compare_to_profile", "pick_anchors"]

DEFAULT_ANCHORS = 8


@dataclass(frozen=True)
class TimeBase:
    """``factor`` = now / then (above 1: the machine runs slower now than at profiling time)."""

    factor: float
    ci_rel: float  # relative half-width of the factor's 95% confidence interval
    anchors: int

    def to_profile_time(self, measured_ms: float) -> float:
        """A latency measured now, in the time base of the profile."""
        return measured_ms / self.factor


def compare_to_profile(then_ms: Sequence[float], now_ms: Sequence[float]) -> TimeBase:
    """The time-base factor from the anchors' latencies at profiling time and now.

    Raises:
        ValueError: no anchors, lengths differ, or a latency is not positive.
    """
    if not then_ms or len(then_ms) != len(now_ms):
        raise ValueError(f"need matching anchor latencies; got {len(then_ms)} and {len(now_ms)}")
    if min(*then_ms, *now_ms) <= 0:
        raise ValueError("anchor latencies must be positive")
    logs = [math.log(n / t) for t, n in zip(then_ms, now_ms)]
    mean = statistics.fmean(logs)
    half = 1.96 * statistics.stdev(logs) / math.sqrt(len(logs)) if len(logs) > 1 else math.inf
    return TimeBase(math.exp(mean), math.expm1(half), len(logs))


def pick_anchors(anchors: Sequence[Anchor], k: int = DEFAULT_ANCHORS) -> list[Anchor]:
    """``k`` anchors spread evenly over the range of their latencies (all if there are fewer)."""
    ranked = sorted(anchors, key=lambda a: a.ms)
    if len(ranked) <= k:
        return ranked
    return (
        [ranked[round(i * (len(ranked) - 1) / (k - 1))] for i in range(k)] if k > 1 else ranked[:1]
    )

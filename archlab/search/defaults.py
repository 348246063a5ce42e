"""What a new search optimises when not told: the accuracy estimate the shipped evidence picks for
its space (:func:`archlab.estimate.evidence.default_estimate`), and latency."""

from __future__ import annotations

from archlab.estimate.evidence import default_estimate
from archlab.study.objectives import DEFAULT_OBJECTIVES, OBJECTIVES

__all__ = ["default_objectives"]


def default_objectives(space: str) -> tuple[str, ...]:
    """The objectives of a new study of ``space`` (a space's name, as in ``archlab spaces``)."""
    estimate = default_estimate(space)
    if estimate not in OBJECTIVES:  # evidence naming an estimate this version cannot optimise
        estimate = DEFAULT_OBJECTIVES[0]
    return (estimate, *DEFAULT_OBJECTIVES[1:])

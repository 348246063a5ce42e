"""Scoring accuracy estimates against a ground truth: per space, and pooled over spaces.

Per space, an estimate is scored with :func:`archlab.estimate.rank_stats.agreement` (Spearman ρ and
Kendall τ with percentile-bootstrap 95 % intervals, top-20 % recall) against the ground-truth
accuracy of the same archs. Higher must mean better on both sides: the proxies and the size
baselines (``params``, ``macs``: "bigger predicts better") all are. Archs whose estimate or truth is
missing (NaN) are left out; ±inf scores (a proxy that over- or underflowed) rank at the ends.

Pooling over spaces: accuracies of different spaces are not on one scale (one space's archs may all
beat another's), and neither are most proxies, so raw values are not pooled. Instead, within each
space, estimate and truth are each replaced by their rank normalised to (0, 1),
``(rank − ½) / n`` (ties share their mean rank), and the normalised pairs of all spaces are scored
together as one set. The pooled figures thus ask "does the estimate order archs within their space
as training does?", every arch counting once (a space with more archs weighs more); the bootstrap
resamples archs over the pooled set, not per space.

Picking the best of several estimates on the same archs flatters the winner. :func:`held_out_pick`
measures by how much: it picks on one random half of the archs and scores the pick on the other.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from archlab.estimate.rank_stats import Agreement, agreement, spearman

__all__ = ["HeldOutPick", "held_out_pick", "pooled_agreement", "rank_normalise", "score_estimates"]


def _pairs(estimate: ArrayLike, truth: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(estimate, dtype=float), np.asarray(truth, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"estimate and truth differ in length: {x.shape} vs {y.shape}")
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep]


def rank_normalise(values: ArrayLike) -> np.ndarray:
    """``(rank − ½) / n`` of every value (mean ranks for ties; ±inf rank at the ends)."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return x
    return (stats.rankdata(x) - 0.5) / len(x)


def score_estimates(
    estimates: Mapping[str, ArrayLike], truth: ArrayLike, seed: int = 0
) -> dict[str, Agreement]:
    """Each estimate (one value per arch, aligned with ``truth``) scored against ``truth``."""
    return {
        name: agreement(*_pairs(values, truth), seed=seed) for name, values in estimates.items()
    }


def pooled_agreement(spaces: Sequence[tuple[ArrayLike, ArrayLike]], seed: int = 0) -> Agreement:
    """One estimate scored over several spaces at once: ``spaces`` holds its (estimate, truth) per
    space; both are rank-normalised within their space, then pooled (see the module docstring)."""
    xs, ys = [], []
    for estimate, truth in spaces:
        x, y = _pairs(estimate, truth)
        xs.append(rank_normalise(x))
        ys.append(rank_normalise(y))
    x = np.concatenate(xs) if xs else np.array([])
    y = np.concatenate(ys) if ys else np.array([])
    return agreement(x, y, seed=seed)


@dataclass(frozen=True)
class HeldOutPick:
    """How choosing the best-ranking estimate fares on archs it was not chosen on."""

    picks: dict[str, float]  # share of the halvings in which each estimate was the pick
    picked_rho: float  # mean Spearman ρ of the pick on the half it was picked on
    held_out_rho: float  # mean Spearman ρ of the pick on the other half
    rounds: int


def held_out_pick(
    estimates: Mapping[str, ArrayLike], truth: ArrayLike, rounds: int = 1000, seed: int = 0
) -> HeldOutPick:
    """Split the archs into random halves ``rounds`` times; each time pick the estimate with the
    best ρ on one half and score it on the other. A pick that holds out keeps its ρ and is
    nearly always the same estimate; a pick made by noise loses its ρ and changes between
    halvings. Archs missing any estimate or the truth are left out."""
    names = list(estimates)
    columns = np.array([np.asarray(estimates[n], dtype=float) for n in names])
    y = np.asarray(truth, dtype=float)
    keep = ~(np.isnan(columns).any(axis=0) | np.isnan(y))
    columns, y = columns[:, keep], y[keep]
    if not names or len(y) < 6:
        raise ValueError(f"need estimates and at least 6 archs to halve, got {len(y)}")
    rng = random.Random(seed)
    picked: Counter[str] = Counter()
    on_pick, held = [], []
    order = list(range(len(y)))
    for _ in range(rounds):
        rng.shuffle(order)
        a, b = order[: len(order) // 2], order[len(order) // 2 :]
        rhos = [spearman(columns[i, a], y[a]) for i in range(len(names))]
        best = max(range(len(names)), key=lambda i: -np.inf if np.isnan(rhos[i]) else rhos[i])
        picked[names[best]] += 1
        on_pick.append(rhos[best])
        held.append(spearman(columns[best, b], y[b]))
    return HeldOutPick(
        picks={n: picked[n] / rounds for n in names},
        picked_rho=float(np.nanmean(on_pick)),
        held_out_rho=float(np.nanmean(held)),
        rounds=rounds,
    )

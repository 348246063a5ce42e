"""Rank agreement between two scorings of the same architectures, with bootstrap intervals.

Spearman's ρ and Kendall's τ answer "does this estimate order architectures as training does?";
top-k recall answers "does its best fifth contain training's best fifth?", which is what a search
that keeps the front needs. Intervals resample architectures with replacement (percentile
bootstrap, 95 % by default), so they show how much a figure over 30 archs can move.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "Agreement",
    "AgreementOutlook",
    "SeedNoise",
    "agreement",
    "agreement_outlook",
    "arch_qualities",
    "attainable_correlation",
    "bootstrap_interval",
    "fresh_archs",
    "kendall",
    "noise_for_agreement",
    "seed_noise",
    "simulated_agreement",
    "spearman",
    "top_recall",
]


def _finite(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs where both are not NaN; ±inf rank at the ends (a proxy that over- or underflowed)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep]


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (ties share their mean rank); NaN if either side is constant."""
    x, y = _finite(x, y)
    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(stats.spearmanr(x, y).statistic)


def kendall(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's τ-b; NaN if either side is constant."""
    x, y = _finite(x, y)
    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(stats.kendalltau(x, y).statistic)


def top_recall(estimate: np.ndarray, truth: np.ndarray, share: float = 0.2) -> float:
    """The share of the truth's best ``share`` of archs that the estimate's best ``share`` holds."""
    estimate, truth = _finite(estimate, truth)
    k = max(1, round(len(truth) * share))
    if len(truth) == 0:
        return math.nan
    best_truth = set(np.argsort(-truth, kind="stable")[:k].tolist())
    best_estimate = set(np.argsort(-estimate, kind="stable")[:k].tolist())
    return len(best_truth & best_estimate) / k


def bootstrap_interval(
    statistic: object,
    x: np.ndarray,
    y: np.ndarray,
    n: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(x, y)`` over archs drawn with replacement."""
    x, y = _finite(x, y)
    if len(x) < 3:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        idx = rng.integers(0, len(x), len(x))
        value = statistic(x[idx], y[idx])  # type: ignore[operator]
        if not math.isnan(value):
            values.append(value)
    if not values:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class Agreement:
    """How well one scoring ranks archs like another, over ``n`` archs."""

    n: int
    spearman: float
    spearman_ci: tuple[float, float]
    kendall: float
    kendall_ci: tuple[float, float]
    top20_recall: float


def agreement(estimate: np.ndarray, truth: np.ndarray, seed: int = 0) -> Agreement:
    """Spearman and Kendall with bootstrap 95 % intervals, and top-20 % recall."""
    x, y = _finite(estimate, truth)
    return Agreement(
        n=len(x),
        spearman=spearman(x, y),
        spearman_ci=bootstrap_interval(spearman, x, y, seed=seed),
        kendall=kendall(x, y),
        kendall_ci=bootstrap_interval(kendall, x, y, seed=seed),
        top20_recall=top_recall(x, y),
    )


def attainable_correlation(seed_agreement: float, seeds: int) -> float:
    """The correlation a perfect estimate would reach against the mean over ``seeds`` runs.

    Each run is taken as the arch's true quality plus independent noise, so two runs correlate at
    the share of variance the archs hold (``seed_agreement``, r). Averaging k runs raises that
    share to k·r / (1 + (k − 1)·r) (the Spearman–Brown formula), and the true quality correlates
    with the average at its square root (Spearman's correction for attenuation). For ranks this
    holds approximately. So an estimate scored against a two-seed mean can exceed the agreement of
    two single runs: that agreement is not its ceiling, this is.
    """
    if not 0 < seed_agreement <= 1:
        return math.nan
    if seeds < 1:
        raise ValueError(f"seeds must be ≥ 1, got {seeds}")
    mean_reliability = seeds * seed_agreement / (1 + (seeds - 1) * seed_agreement)
    return math.sqrt(mean_reliability)


@dataclass(frozen=True)
class SeedNoise:
    """One-way variance components of archs trained with two seeds (as fractions, not %)."""

    n: int
    noise_sd: float  # SD of one run around its arch's own accuracy
    spread_sd: float  # SD of the archs' own accuracies, the noise taken out (0 if it exceeds)
    icc: float  # the share of one run's variance that is the arch's: spread² / (spread² + noise²)


def seed_noise(first: np.ndarray, second: np.ndarray) -> SeedNoise:
    """Split two seeds' accuracies of the same archs into the archs' spread and each run's noise.

    A run's accuracy is taken as the arch's own plus independent noise of that run, so the seed
    difference has variance 2·noise² and the two-seed mean has spread² + noise²/2. The ICC is
    what the agreement of two single runs estimates (as a Pearson correlation); it needs far fewer
    archs to read than a rank correlation, because it comes from the differences directly.
    """
    a, b = _finite(first, second)
    if len(a) < 3:
        raise ValueError(f"need at least 3 archs with both seeds, got {len(a)}")
    noise = float(np.var(a - b, ddof=1)) / 2
    spread = max(float(np.var((a + b) / 2, ddof=1)) - noise / 2, 0.0)
    icc = spread / (spread + noise) if spread + noise > 0 else math.nan
    return SeedNoise(len(a), math.sqrt(noise), math.sqrt(spread), icc)


def arch_qualities(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Each arch's own accuracy as well as two seeds tell it: the two-seed mean, pulled toward the
    grand mean by the share of its spread that is the archs' and not the noise (a one-way
    random-effects estimate). Two seeds' means alone would overstate how far apart the archs are."""
    a, b = _finite(first, second)
    split = seed_noise(a, b)
    means = (a + b) / 2
    spread = split.spread_sd**2
    shrink = math.sqrt(spread / (spread + split.noise_sd**2 / 2)) if spread > 0 else 0.0
    return means.mean() + shrink * (means - means.mean())


def fresh_archs(spread_sd: float, n: int, draws: int = 4000, seed: int = 0) -> np.ndarray:
    """``draws`` sets of ``n`` archs whose own accuracies are normal with the given spread."""
    return np.random.default_rng(seed).normal(scale=spread_sd, size=(draws, n))


def simulated_agreement(
    quality: np.ndarray, noise_sd: float, draws: int = 4000, seed: int = 0
) -> np.ndarray:
    """Spearman ρ between two simulated runs of every arch, one value per draw.

    Each run is the arch's own accuracy (``quality``: one set of archs, shape (n,), or one set per
    draw, shape (draws, n)) plus independent normal noise of ``noise_sd``. The same seed gives the
    same standard-normal draws, so the result falls steadily as ``noise_sd`` grows.
    """
    quality = np.asarray(quality, dtype=float)
    n = quality.shape[-1]
    if quality.ndim == 2:
        draws = quality.shape[0]
    z = np.random.default_rng(seed + 1).standard_normal((2, draws, n))
    ranks = stats.rankdata(quality + noise_sd * z, axis=2)
    ranks -= ranks.mean(axis=2, keepdims=True)
    a, b = ranks
    with np.errstate(invalid="ignore"):  # a run that ties every arch ranks nothing: NaN
        return np.sum(a * b, axis=1) / np.sqrt(np.sum(a * a, axis=1) * np.sum(b * b, axis=1))


@dataclass(frozen=True)
class AgreementOutlook:
    """Where the seed agreement of two single runs falls, drawn many times over the same archs."""

    median: float
    low: float  # 5th percentile
    high: float  # 95th percentile
    chance: float  # the share of draws at or above the target


def agreement_outlook(
    quality: np.ndarray, noise_sd: float, target: float = 0.9, draws: int = 4000, seed: int = 0
) -> AgreementOutlook:
    """The spread of the seed agreement that archs of this quality and runs of this noise give,
    and the chance that one measurement of it reaches ``target``: a goal on ρ over 30 archs is a
    goal on one draw of a noisy figure."""
    rho = simulated_agreement(quality, noise_sd, draws, seed)
    low, median, high = np.percentile(rho, [5, 50, 95])
    return AgreementOutlook(float(median), float(low), float(high), float(np.mean(rho >= target)))


def noise_for_agreement(
    quality: np.ndarray, target: float = 0.9, chance: float = 0.5, draws: int = 2000, seed: int = 0
) -> float:
    """The largest noise SD per run at which two runs reach ρ ≥ ``target`` in at least ``chance``
    of the draws (bisection; 0 if even noiseless runs do not, e.g. archs of equal accuracy)."""
    quality = np.asarray(quality, dtype=float)
    if not 0 < chance < 1:
        raise ValueError(f"chance must lie strictly between 0 and 1, got {chance}")

    def reaches(noise_sd: float) -> bool:
        rho = simulated_agreement(quality, noise_sd, draws, seed)
        return bool(np.mean(rho >= target) >= chance)

    if not reaches(0.0):
        return 0.0
    low, high = 0.0, 10 * float(np.std(quality)) + 1e-12
    while reaches(high):
        high *= 2
    for _ in range(20):
        middle = (low + high) / 2
        low, high = (middle, high) if reaches(middle) else (low, middle)
    return low

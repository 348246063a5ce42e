"""The measured evidence behind the accuracy axis, shipped with archlab and shown with every front.

``evidence.json`` (beside this module, written by ``bench/evidence.py`` from the committed
ground-truth and estimate tables in ``bench/results/``) holds, per space, how well each accuracy
estimate ranks architectures like real training does: Spearman ρ and Kendall τ with 95 % bootstrap
intervals, top-20 % recall, the seconds per arch it costs, the ground truth's own seed agreement,
how many archs and seeds it rests on, its budget and data set, and the date. ``archlab spaces
--format json`` carries it per space; the dashboard names the estimate and its ρ on the axis.

The default estimate follows stated rules. Pooled over all spaces (:func:`choose_default`): once
the ground truth holds at least :data:`MIN_ARCHS` archs, the estimate with the best pooled ρ among
those that fit a search (at most :data:`FITS_A_SEARCH_S` seconds per arch on one core: the
training-free ones and the training speed of a few steps, ``tse_1_64``), provided it beats the
parameter count; otherwise the cheapest short training that does. Before that, no default is
claimed and searches keep NASWOT. A space with a ground truth of its own (at least
:data:`MIN_ARCHS` archs) may override it (:func:`choose_space_default`): its best estimate that
fits a search, if that one ranks its archs better than chance (95 % interval above zero) and better
than the parameter count; a space without such an estimate keeps the pooled default. A model
fitted on the space's ground truth (:data:`FITTED`) replaces that choice only on trained fronts
(:class:`FrontCheck`): in at least :data:`MIN_FRONT_CHECKS` pairs of searches that differ only in
the accuracy estimate and the seed, the fronts of both trained with the ground-truth recipe, the
fitted model's trained front dominates more than the choice's every time.
:func:`default_estimate` answers for a space.

It also keeps the reference models of the ground truth (the presets and a plain CNN, trained with
the same recipe), by name: :func:`reference_accuracy` gives a preset's figures to a study trained
with that recipe.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "EVIDENCE_PATH",
    "FALLBACK_DEFAULT",
    "FITS_A_SEARCH_S",
    "FITTED",
    "EstimateScore",
    "Evidence",
    "FrontCheck",
    "SpaceEvidence",
    "TrainedFront",
    "axis_suffix",
    "choose_default",
    "choose_space_default",
    "search_candidates",
    "default_estimate",
    "evidence_sentence",
    "evidence_from_dict",
    "load_evidence",
    "reference_accuracy",
    "trained_reference",
]

EVIDENCE_PATH = Path(__file__).with_name("evidence.json")
FITS_A_SEARCH_S = 10.0  # seconds per arch on one core an estimate may cost to run inside a search
MIN_ARCHS = 30  # archs with a ground truth before the evidence may pick a default
FALLBACK_DEFAULT = "naswot"  # the searches' accuracy objective until the evidence picks one
# Estimates that train the arch on the training split (seed 2) and read no probe batch, each the
# ground truth's recipe cut to 1/n of its steps: name → n. Short training reads the validation
# accuracy (cheapest first); the training speed reads minus the mean training loss.
SHORT_TRAINING = {"train_1_8": 8, "train_1_4": 4}
TRAINING_SPEED = {"tse_1_64": 64}
TRAINED_ESTIMATES = (*SHORT_TRAINING, *TRAINING_SPEED)
BASELINE = "params"
# Cost measures scored as estimates for reference: never chosen as the accuracy objective, since a
# search already has them (or their cousin, latency) on its cost side.
BASELINES = ("params", "macs")
# Models fitted on a space's own ground truth (archlab.estimate.surrogate), scored by leave-one-out.
# That score describes archs drawn at random, and a search that maximises a fitted model is pushed
# towards the corners of the space, where it has the fewest archs: so such a model becomes a
# space's default only through trained fronts (FrontCheck), never through its rho.
FITTED = ("knob_ridge",)
MIN_FRONT_CHECKS = 2  # paired searches (different seeds) a fitted model must win to be a default


@dataclass(frozen=True)
class EstimateScore:
    """How one estimate ranks the archs of a space (or of all spaces, pooled)."""

    spearman: float
    spearman_ci: tuple[float, float]
    kendall: float
    kendall_ci: tuple[float, float]
    top20_recall: float
    seconds_per_arch: float
    archs: int


@dataclass(frozen=True)
class TrainedFront:
    """One search's feasible front, each member trained with the ground-truth recipe."""

    study: str
    members: int
    best: float  # the best trained accuracy (mean over seeds) among the members
    best_ratio: float  # that member's latency ÷ the preset's, timed side by side
    # Area dominated in (latency ÷ the preset's, from 0 to the target) × (accuracy above the
    # lowest trained accuracy of the check): archlab.study.hypervolume.hypervolume.
    hypervolume: float


@dataclass(frozen=True)
class FrontCheck:
    """Searches of one space that differ only in their accuracy estimate (same target, seed and
    number of trials), their fronts trained: which estimate's front is better, measured."""

    target_ms: float
    search_seed: int
    search_trials: int
    preset: str  # the space's preset the latencies are measured against
    preset_accuracy: float
    fronts: dict[str, TrainedFront]

    def beats(self, estimate: str, other: str) -> bool | None:
        """Whether ``estimate``'s trained front dominates more than ``other``'s (None: the check
        has not both)."""
        if estimate not in self.fronts or other not in self.fronts:
            return None
        return self.fronts[estimate].hypervolume > self.fronts[other].hypervolume


@dataclass(frozen=True)
class SpaceEvidence:
    """The evidence for one space (or ``pooled``)."""

    archs: int  # random archs with a ground truth
    seeds: int  # ground-truth seeds per arch
    budget: str  # the ground truth's training budget, e.g. 1000x64@32px
    data: str
    probes: str  # the estimates' settings: probe data, resolution, batch, seed
    seed_agreement: EstimateScore | None  # seed 0 vs seed 1 of the ground truth
    estimates: dict[str, EstimateScore] = field(default_factory=dict)
    front_checks: tuple[FrontCheck, ...] = ()

    def front_record(self, estimate: str, other: str) -> tuple[int, int]:
        """In how many of the front checks that pit ``estimate`` against ``other`` it won, of
        how many."""
        results = [r for c in self.front_checks if (r := c.beats(estimate, other)) is not None]
        return sum(results), len(results)


@dataclass(frozen=True)
class Evidence:
    measured: str  # date of the tables it was computed from
    spaces: dict[str, SpaceEvidence]
    pooled: SpaceEvidence | None
    default: str | None  # the estimate the pooled rule picks (see choose_default)
    rule: str
    # Spaces whose own evidence overrides the pooled default (see choose_space_default).
    space_defaults: dict[str, str] = field(default_factory=dict)
    space_rule: str = ""
    # The ground truth's reference models by name: kind, accuracy, accuracy_std, accuracies,
    # seeds, budget, data, code (bench/evidence.py).
    references: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _num(value: Any) -> float:
    """A stored figure; null (not measured, or undefined) reads as NaN."""
    return math.nan if value is None else float(value)


def _score(data: dict[str, Any] | None) -> EstimateScore | None:
    if not data:
        return None
    return EstimateScore(
        spearman=_num(data["spearman"]),
        spearman_ci=(_num(data["spearman_ci"][0]), _num(data["spearman_ci"][1])),
        kendall=_num(data["kendall"]),
        kendall_ci=(_num(data["kendall_ci"][0]), _num(data["kendall_ci"][1])),
        top20_recall=_num(data["top20_recall"]),
        seconds_per_arch=_num(data["seconds_per_arch"]),
        archs=int(data["archs"]),
    )


def _space(data: dict[str, Any] | None) -> SpaceEvidence | None:
    if not data:
        return None
    return SpaceEvidence(
        archs=int(data["archs"]),
        seeds=int(data["seeds"]),
        budget=str(data["budget"]),
        data=str(data["data"]),
        probes=str(data.get("probes", "")),
        seed_agreement=_score(data.get("seed_agreement")),
        estimates={k: s for k, v in data["estimates"].items() if (s := _score(v)) is not None},
        front_checks=tuple(_front_check(c) for c in data.get("front_checks", ())),
    )


def _front_check(data: dict[str, Any]) -> FrontCheck:
    return FrontCheck(
        target_ms=float(data["target_ms"]),
        search_seed=int(data["search_seed"]),
        search_trials=int(data["search_trials"]),
        preset=str(data["preset"]),
        preset_accuracy=float(data["preset_accuracy"]),
        fronts={
            name: TrainedFront(
                study=str(f["study"]), members=int(f["members"]), best=float(f["best"]),
                best_ratio=_num(f["best_ratio"]), hypervolume=float(f["hypervolume"]),
            )
            for name, f in data["fronts"].items()
        },
    )  # fmt: skip


def load_evidence(path: Path = EVIDENCE_PATH) -> Evidence | None:
    """The shipped evidence, or None where none was measured yet.

    Raises:
        ValueError: the file exists but is malformed.
    """
    if not path.exists():
        return None
    try:
        return evidence_from_dict(json.loads(path.read_text()))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: malformed accuracy evidence ({err})") from None


def evidence_from_dict(raw: dict[str, Any]) -> Evidence:
    """Evidence from its JSON form (as ``bench/evidence.py`` writes it)."""
    spaces = {k: s for k, v in raw["spaces"].items() if (s := _space(v)) is not None}
    return Evidence(
        raw["measured"], spaces, _space(raw.get("pooled")), raw.get("default"), raw["rule"],
        {str(k): str(v) for k, v in raw.get("space_defaults", {}).items()},
        str(raw.get("space_rule", "")),
        {str(k): dict(v) for k, v in raw.get("references", {}).items()},
    )  # fmt: skip


def reference_accuracy(
    evidence: Evidence | None, name: str, budget: str, data: str
) -> dict[str, Any] | None:
    """The ground truth's training outcome of reference model ``name`` if it was trained with
    ``budget`` on ``data`` (what a study's own trained archs were), else None."""
    found = evidence.references.get(name) if evidence is not None else None
    if found is None or found.get("budget") != budget or found.get("data") != data:
        return None
    return found


def trained_reference(
    name: str,
    own: Mapping[str, Any],
    recipes: Collection[tuple[str, str]],
    evidence: Evidence | None,
) -> tuple[float, str] | None:
    """A reference model's accuracy trained like a study's archs, and where it comes from.

    ``own``: the study's reference training (``archlab train --references``), which comes first;
    else the ground truth's figure, if all the study's trained archs used one recipe
    (``recipes``: their (budget, data)) and the ground truth trained ``name`` with it.
    """
    if "accuracy" in own.get(name, {}):
        return float(own[name]["accuracy"]), "trained for this study (archlab train --references)"
    if len(recipes) != 1:
        return None
    ((budget, data),) = recipes
    shipped = reference_accuracy(evidence, name, budget, data)
    if shipped is None:
        return None
    seeds = ", ".join(str(s) for s in shipped["seeds"])
    return float(shipped["accuracy"]), f"archlab's ground truth, same recipe, seeds {seeds}"


def _finite_or_low(value: float) -> float:
    return -math.inf if math.isnan(value) else value


def choose_default(pooled: SpaceEvidence) -> tuple[str | None, str]:
    """The default estimate by the rule in the module docstring, and the rule as text."""
    rule = (
        f"with at least {MIN_ARCHS} archs of ground truth: the best pooled Spearman rho among "
        f"estimates (not {', '.join(BASELINES)} or models fitted on the ground truth; "
        "training-free or a few training steps) costing at most "
        f"{FITS_A_SEARCH_S:g} s per arch on one core, if above {BASELINE}'s; else the cheapest "
        "short training above it"
    )
    if pooled.archs < MIN_ARCHS:
        return None, rule
    scores = pooled.estimates
    floor = scores[BASELINE].spearman if BASELINE in scores else -math.inf
    free = search_candidates(scores)
    if free:
        best = max(free, key=lambda n: _finite_or_low(free[n].spearman))
        if free[best].spearman > floor:
            return best, rule
    for name in SHORT_TRAINING:
        if name in scores and scores[name].spearman > floor:
            return name, rule
    return None, rule


def search_candidates(scores: dict[str, EstimateScore]) -> dict[str, EstimateScore]:
    """The estimates cheap enough to run inside a search that a default may be: the training-free
    ones and the training speed of a few steps (short training, baselines and fitted models left
    out)."""
    return {
        name: s
        for name, s in scores.items()
        if name not in (*SHORT_TRAINING, *BASELINES, *FITTED)
        and s.seconds_per_arch <= FITS_A_SEARCH_S
    }


def choose_space_default(
    entry: SpaceEvidence, pooled_default: str | None = None
) -> tuple[str | None, str]:
    """A space's own default estimate by the rule in the module docstring (None: keep the pooled
    one, ``pooled_default``), and the rule as text."""
    rule = (
        f"a space with at least {MIN_ARCHS} archs of its own ground truth: its best estimate "
        f"(training-free or a few training steps) costing at most {FITS_A_SEARCH_S:g} s per arch, "
        "if its 95 % interval lies "
        f"above zero and its rho above {BASELINE}'s, else the pooled default; replaced by a model "
        f"fitted on that ground truth once, in at least {MIN_FRONT_CHECKS} pairs of searches "
        "differing only in estimate and seed, its trained front dominated more every time"
    )
    if entry.archs < MIN_ARCHS:
        return None, rule
    own = _own_pick(entry)
    current = _rival(entry, pooled_default)
    for fitted in FITTED:
        wins, checks = entry.front_record(fitted, current)
        if fitted in entry.estimates and checks >= MIN_FRONT_CHECKS and wins == checks:
            return fitted, rule
    return own, rule


def _rival(entry: SpaceEvidence, pooled_default: str | None) -> str:
    """The estimate a fitted model has to beat on trained fronts: the space's own pick, else the
    pooled default, else the fallback."""
    return _own_pick(entry) or pooled_default or FALLBACK_DEFAULT


def _own_pick(entry: SpaceEvidence) -> str | None:
    """The space's best estimate that fits a search if it ranks better than chance and params."""
    free = search_candidates(entry.estimates)
    best = max(free, key=lambda n: _finite_or_low(free[n].spearman), default=None)
    if best is None:
        return None
    floor = entry.estimates[BASELINE].spearman if BASELINE in entry.estimates else -math.inf
    score = free[best]
    if score.spearman_ci[0] > 0 and score.spearman > _finite_or_low(floor):
        return best
    return None


def default_estimate(space: str, evidence: Evidence | None = None) -> str:
    """The accuracy estimate a new search of ``space`` optimises: the space's own choice, else the
    pooled one, else :data:`FALLBACK_DEFAULT` (the shipped evidence unless ``evidence`` given)."""
    evidence = evidence if evidence is not None else load_evidence()
    if evidence is None:
        return FALLBACK_DEFAULT
    return evidence.space_defaults.get(space) or evidence.default or FALLBACK_DEFAULT


def _scored(
    metric: str, space: str, evidence: Evidence | None
) -> tuple[SpaceEvidence | None, EstimateScore | None]:
    """A space's evidence and the estimate's score in it (the shipped evidence by default)."""
    evidence = evidence if evidence is not None else load_evidence()
    entry = evidence.spaces.get(space) if evidence else None
    return entry, entry.estimates.get(metric) if entry else None


def axis_suffix(metric: str, space: str, evidence: Evidence | None = None) -> str:
    """What the accuracy axis says of its evidence, e.g. ``(ρ 0.71 vs training on fashion-mnist,
    30 archs)``, or that it has none yet."""
    evidence = evidence if evidence is not None else load_evidence()
    entry, score = _scored(metric, space, evidence)
    if entry is None or score is None:
        pooled = _pooled_elsewhere(metric, space, evidence)
        if pooled is None:
            return "(not yet validated against training)"
        return f"(not validated on {space}; ρ {pooled[0].spearman:.2f} pooled over {pooled[1]})"
    if metric in FITTED:
        return (
            f"(ρ {score.spearman:.2f} leave-one-out vs training on {entry.data}, "
            f"{score.archs} archs)"
        )
    if metric in TRAINED_ESTIMATES:
        return f"(ρ {score.spearman:.2f} vs training on {entry.data}, {score.archs} archs)"
    return (
        f"(ρ {score.spearman:.2f} vs training on {entry.data}, {score.archs} archs, "
        f"{entry.probes} probes)"
    )


def evidence_sentence(metric: str, space: str, evidence: Evidence | None = None) -> str:
    """One line on how far an accuracy estimate can be trusted on a space, e.g. "grad_norm on
    plgvit: ρ +0.41 [+0.08, +0.69] against training on fashion-mnist (30 archs); two training
    runs agree at ρ +0.80"; where its interval includes zero, it says so and names the estimate
    measured best on that space."""
    evidence = evidence if evidence is not None else load_evidence()
    entry, score = _scored(metric, space, evidence)
    if entry is None or score is None:
        line = f"{metric} on {space}: not yet validated against training"
        pooled = _pooled_elsewhere(metric, space, evidence)
        if pooled is None:
            return line
        low, high = pooled[0].spearman_ci
        return (
            f"{line} on this space; pooled over {pooled[1]}: Spearman ρ "
            f"{pooled[0].spearman:+.2f} [95 % CI {low:+.2f}, {high:+.2f}] "
            f"({pooled[0].archs} archs; {pooled[2]})"
        )
    low, high = score.spearman_ci
    how = (
        f"{score.archs} archs, each predicted by the model fitted on the others; random archs, "
        "not the corners a search pushes it to"
        if metric in FITTED
        else f"{score.archs} archs"
    )
    line = (
        f"{metric} on {space}: Spearman ρ {score.spearman:+.2f} [95 % CI {low:+.2f}, {high:+.2f}] "
        f"against training on {entry.data} ({how})"
    )
    if entry.seed_agreement is not None:
        line += f"; two training runs agree at ρ {entry.seed_agreement.spearman:+.2f}"
    if metric in FITTED:
        line += _front_sentence(metric, space, entry, evidence)
    else:
        line += _against_fitted(metric, entry)
    if not low > 0:
        line += f". Its interval includes zero: it does not rank {space} archs reliably"
        best = (_best(entry.estimates, ()), _best(entry.estimates, SHORT_TRAINING))  # any, cheap
        named = [n for n in dict.fromkeys(best) if n is not None and n != metric]
        if named:
            shown = "; ".join(f"{n}, ρ {entry.estimates[n].spearman:+.2f}" for n in named)
            line += f" (best measured here: {shown})"
    return line


def _front_sentence(
    metric: str, space: str, entry: SpaceEvidence, evidence: Evidence | None
) -> str:
    """How the fitted model's trained fronts fared against those of the estimate it would
    replace, if any were trained."""
    rival = _rival(entry, evidence.default if evidence else None)
    wins, checks = entry.front_record(metric, rival)
    if not checks:
        return f"; no trained front has checked it against {rival} yet"
    return f"; its trained front beat {rival}'s in {wins} of {checks} paired searches"


def _against_fitted(metric: str, entry: SpaceEvidence) -> str:
    """How an estimate's trained fronts fared against a fitted model's, if they were checked."""
    for fitted in FITTED:
        wins, checks = entry.front_record(metric, fitted)
        if checks:
            return f"; its trained front beat {fitted}'s in {wins} of {checks} paired searches"
    return ""


def _pooled_elsewhere(
    metric: str, space: str, evidence: Evidence | None
) -> tuple[EstimateScore, str, str] | None:
    """For a space without its own ground truth: the estimate's pooled score over the spaces that
    have one, the names of those spaces, and how far they disagree (``per space −0.09 to +0.73``).
    None when nothing was pooled, or ``space`` itself is part of the pool."""
    if evidence is None or evidence.pooled is None or space in evidence.spaces or metric in FITTED:
        return None
    pooled = evidence.pooled.estimates.get(metric)
    scored = {
        n: e.estimates[metric].spearman for n, e in evidence.spaces.items() if metric in e.estimates
    }
    if pooled is None or not scored:
        return None
    spread = (
        f"per space {min(scored.values()):+.2f} to {max(scored.values()):+.2f}"
        if len(scored) > 1
        else "one space"
    )
    return pooled, ", ".join(sorted(scored)), spread


def _best(scores: dict[str, EstimateScore], leave_out: Collection[str]) -> str | None:
    """The estimate with the best ρ, leaving out ``leave_out`` (the short trainings, to name the
    best one a search can afford)."""
    kept = [n for n in scores if n not in leave_out and n != BASELINE]
    return max(kept, key=lambda n: _finite_or_low(scores[n].spearman), default=None)

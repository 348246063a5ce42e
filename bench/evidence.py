"""Score every accuracy estimate against the committed ground truth and ship the result.

Reads ``bench/results/ground_truth_<space>.csv`` (``bench/ground_truth.py``) and
``bench/results/estimates_<space>.csv`` (``bench/proxy_correlation.py``) for every space that has
both, with the leave-one-out predictions of the model fitted on the ground truth
(``fitted_<space>.csv``, ``bench/accuracy_surrogate.py``) where there are some; an arch's truth
is its mean validation accuracy over the ground-truth seeds, and only archs trained with every
seed count. Prints, per space and pooled (ranks normalised within each space),
each estimate's Spearman ρ and Kendall τ with 95 % bootstrap intervals, top-20 % recall and median
seconds per arch (pooled: each estimate over the spaces where it was measured), beside the ground
truth's own seed agreement and the correlation a perfect estimate would attain against the mean
of the seeds (:func:`archlab.estimate.rank_stats.attainable_correlation`); then applies the
default-estimate rules (:func:`archlab.estimate.evidence.choose_default`, pooled, and
:func:`~archlab.estimate.evidence.choose_space_default`, per space) and writes
``archlab/estimate/evidence.json``, which archlab ships and shows with every accuracy axis.

It also scores two rank votes fixed in advance, neither of which a search can use: the mean
within-space rank of NASWOT, synflow and grad_norm (close kin of the three estimates Abdelfattah et
al., ICLR 2021, voted with), and of every training-free estimate. They show whether combining
estimates recovers a ranking that no single one gives.

Trained fronts (``front_checks.csv``, ``bench/front_vs_preset.py --write``) are grouped into checks:
two searches of one space with the same target, seed and trial count but different accuracy
estimates (three such searches make three checks, one per pair). Each front gets its best trained
accuracy and the area it dominates (:func:`archlab.study.hypervolume.hypervolume`): latency as a
ratio to the preset's, timed side by side, from 0 to the target (as a ratio to the median of the
preset's latencies the pair's rows hold); accuracy above the lowest trained accuracy of the pair.
A model fitted on the ground truth becomes a space's default only through these checks.

The reference models of every ground truth (the presets and the plain CNN, trained with the same
recipe) go into ``references``, by name: the dashboard plots a study's presets at these accuracies
when the study was trained with the same recipe and has no reference training of its own. A model
in several tables (the recipe is deterministic for a seed) is taken from the one with most seeds.

Run: ``.venv/bin/python bench/evidence.py`` (seconds). ``--no-write`` only prints.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import itertools
import json
import math
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from archlab.estimate.evidence import (
    EVIDENCE_PATH,
    FITTED,
    choose_default,
    choose_space_default,
    evidence_from_dict,
    search_candidates,
)
from archlab.estimate.ground_truth import (
    random_arch_truth,
    read_rows,
    reference_outcomes,
    seed_agreement,
)
from archlab.estimate.rank_stats import Agreement, attainable_correlation
from archlab.estimate.score import (
    held_out_pick,
    pooled_agreement,
    rank_normalise,
    score_estimates,
)
from archlab.estimate.training import GROUND_TRUTH
from archlab.study.hypervolume import hypervolume

RESULTS = Path(__file__).resolve().parent / "results"
NOT_ESTIMATES = {"arch", "settings"}
VOTES = {
    "vote(naswot, synflow, grad_norm)": ("naswot", "synflow", "grad_norm"),
    "vote(all training-free)": ("naswot", "synflow", "grad_norm", "zico", "swap", "meco"),
}


def _probes(path: Path) -> str:
    with path.open(newline="") as f:
        settings = {row.get("settings", "") for row in csv.DictReader(f)}
    return ";".join(sorted(s for s in settings if s)) or "unknown"


def _estimates(path: Path) -> dict[str, dict[str, float]]:
    """arch JSON → {estimate or ``<estimate>_s`` (its seconds): value}."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for row in rows:
        out[row["arch"]] = {
            k: float(v) if v not in ("", None) else math.nan
            for k, v in row.items()
            if k not in NOT_ESTIMATES
        }
    return out


def _score_dict(a: Agreement, seconds: float) -> dict[str, Any]:
    def plain(v: float) -> float | None:
        return None if math.isnan(v) else v

    return {
        "spearman": plain(a.spearman), "spearman_ci": [plain(v) for v in a.spearman_ci],
        "kendall": plain(a.kendall), "kendall_ci": [plain(v) for v in a.kendall_ci],
        "top20_recall": plain(a.top20_recall),
        "seconds_per_arch": None if math.isnan(seconds) else seconds, "archs": a.n,
    }  # fmt: skip


def _space(space: str) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray]]] | None:
    truth_path, est_path = RESULTS / f"ground_truth_{space}.csv", RESULTS / f"estimates_{space}.csv"
    if not (truth_path.exists() and est_path.exists()):
        return None
    budget = GROUND_TRUTH.budget_label()
    rows = [r for r in read_rows(truth_path) if r["budget"] == budget and r["kind"] == "random"]
    n_seeds = max(Counter(r["arch"] for r in rows).values(), default=0)
    truth = random_arch_truth(rows, budget)
    estimates = _estimates(est_path)
    fitted = RESULTS / f"fitted_{space}.csv"  # bench/accuracy_surrogate.py: leave-one-out
    if fitted.exists():
        for arch, values in _estimates(fitted).items():
            estimates.setdefault(arch, {}).update(values)
    archs = [a for a in truth if a in estimates]
    if len(archs) < 3:
        return None
    names = [k for k in estimates[archs[0]] if not k.endswith("_s")]
    y = np.array([truth[a] for a in archs])
    columns = {n: np.array([estimates[a].get(n, math.nan) for a in archs]) for n in names}
    names = [n for n in names if np.sum(~np.isnan(columns[n])) >= 3]  # estimates not run: left out
    scores = score_estimates(columns, y)
    seconds = {n: _median([estimates[a].get(f"{n}_s", math.nan) for a in archs]) for n in names}
    ceiling = seed_agreement(rows, budget, (0, 1)) if n_seeds >= 2 else None
    entry = {
        "archs": len(archs), "seeds": n_seeds, "budget": budget, "data": str(GROUND_TRUTH.data),
        "probes": _probes(est_path),
        "seed_agreement": _score_dict(ceiling, math.nan) if ceiling else None,
        "estimates": {n: _score_dict(scores[n], seconds[n]) for n in names},
    }  # fmt: skip
    return entry, {n: (columns[n], y) for n in names}


def _references(spaces: list[str]) -> dict[str, dict[str, Any]]:
    """The reference models' trained accuracies over every ground-truth table (see the module
    docstring); a model whose tables disagree is printed."""
    found: dict[str, dict[str, Any]] = {}
    budget = GROUND_TRUTH.budget_label()
    for space in spaces:
        for name, outcome in reference_outcomes(
            read_rows(RESULTS / f"ground_truth_{space}.csv"), budget
        ).items():
            outcome = {**outcome, "data": str(GROUND_TRUTH.data), "table": space}
            known = found.get(name)
            if known is not None:
                mine, theirs = _by_seed(outcome), _by_seed(known)
                if any(mine[s] != theirs[s] for s in mine.keys() & theirs.keys()):
                    print(f"reference {name}: {known['table']} and {space} disagree "
                          f"({theirs} vs {mine})")  # fmt: skip
            if known is None or len(outcome["seeds"]) > len(known["seeds"]):
                found[name] = outcome
    return found


def _by_seed(outcome: dict[str, Any]) -> dict[int, float]:
    return dict(zip(outcome["seeds"], outcome["accuracies"]))


def _front_checks(space: str) -> list[dict[str, Any]]:
    """The space's trained fronts, grouped into checks (see the module docstring): every pair of
    estimates among the searches with the same target, seed and trial count."""
    path = RESULTS / "front_checks.csv"
    if not path.exists():
        return []
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["space"] == space]
    groups: dict[tuple[str, str, str], dict[str, list[dict[str, str]]]] = {}
    for row in rows:
        key = (row["target_ms"], row["search_seed"], row["search_trials"])
        groups.setdefault(key, {}).setdefault(row["estimate"], []).append(row)
    return [
        _front_check(float(target), int(seed), int(trials), {n: fronts[n] for n in pair})
        for (target, seed, trials), fronts in sorted(groups.items())
        for pair in itertools.combinations(sorted(fronts), 2)
    ]


def _front_check(
    target: float, seed: int, trials: int, fronts: dict[str, list[dict[str, str]]]
) -> dict[str, Any]:
    """One pair of trained fronts scored together. The preset's median latency and the accuracy
    floor come from the pair's own rows, so a third search with the same seed changes nothing."""
    members = [row for front in fronts.values() for row in front]
    preset_ms = statistics.median(float(r["preset_ms"]) for r in members)
    floor = min(float(r["accuracy"]) for r in members)
    scored = {}
    for estimate, front in fronts.items():
        ratios = [float(r["ratio_to_preset"] or float(r["latency_ms"]) / preset_ms) for r in front]
        accs = [float(r["accuracy"]) for r in front]
        best = max(range(len(front)), key=lambda i: accs[i])
        scored[estimate] = {
            "study": front[0]["study"], "members": len(front), "best": accs[best],
            "best_ratio": ratios[best],
            "hypervolume": hypervolume(
                [(r, -a) for r, a in zip(ratios, accs)], (target / preset_ms, -floor)
            ),
        }  # fmt: skip
    return {
        "target_ms": target, "search_seed": seed, "search_trials": trials,
        "preset": members[0]["preset"],
        "preset_accuracy": float(members[0]["preset_accuracy"]), "fronts": scored,
    }  # fmt: skip


def _print_front_checks(space: str, checks: list[dict[str, Any]]) -> None:
    for check in checks:
        print(
            f"{space}: trained fronts, target {check['target_ms']:g} ms, search seed "
            f"{check['search_seed']}, {check['search_trials']} trials; {check['preset']} "
            f"{check['preset_accuracy']:.4f}"
        )
        for name, front in check["fronts"].items():
            print(
                f"  {name:<12} {front['members']} members, best {front['best']:.4f} at "
                f"{front['best_ratio']:.2f} x, area {1000 * front['hypervolume']:.3f} "
                f"(x 1e-3; study {front['study']})"
            )


def _median(values: list[float]) -> float:
    """The median of the values that were measured (NaN if none was)."""
    finite = [v for v in values if not math.isnan(v)]
    return statistics.median(finite) if finite else math.nan


def _f(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _print(name: str, entry: dict[str, Any]) -> None:
    print(f"\n{name}: {entry['archs']} archs × {entry['seeds']} seeds at {entry['budget']}")
    ceiling = entry.get("seed_agreement")
    if ceiling:
        lo, hi = ceiling["spearman_ci"]
        print(f"  ground truth, seed 0 vs 1: ρ {ceiling['spearman']:+.3f} [{lo:+.3f}, {hi:+.3f}]")
        attainable = attainable_correlation(ceiling["spearman"], entry["seeds"])
        print(
            f"  a perfect estimate would reach about ρ {attainable:+.2f} against the mean of "
            f"{entry['seeds']} seeds (Spearman–Brown; an approximation for ranks)"
        )
    print(f"  {'estimate':<11} {'ρ':>7} {'95% CI':>17} {'τ':>7} {'top-20%':>8} {'s/arch':>8}")
    ordered = sorted(entry["estimates"].items(), key=lambda kv: -(kv[1]["spearman"] or -9))
    for est, s in ordered:
        lo, hi = s["spearman_ci"]
        print(
            f"  {est:<11} {_f(s['spearman'], '+7.3f')} [{_f(lo, '+.3f')}, {_f(hi, '+.3f')}] "
            f"{_f(s['kendall'], '+7.3f')} {_f(s['top20_recall'], '8.2f')} "
            f"{_f(s['seconds_per_arch'], '8.2f')}  (n {s['archs']})"
        )


def _print_held_out(
    space: str, entry: dict[str, Any], pairs: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    """Does picking this space's best estimate that fits a search hold out on archs it was not
    picked on? (The per-space rule picks the best of several on the same archs.)"""
    parsed = evidence_from_dict({"measured": "", "spaces": {space: entry}, "rule": ""})
    names = sorted(search_candidates(parsed.spaces[space].estimates))
    if not names:
        return
    check = held_out_pick({n: pairs[n][0] for n in names}, pairs[names[0]][1])
    shares = sorted(check.picks.items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{n} {share:.0%}" for n, share in shares if share >= 0.005)
    print(
        f"  best estimate fitting a search, picked on half the archs ({check.rounds} halvings): "
        f"{shown}; its ρ {check.picked_rho:+.2f} there, {check.held_out_rho:+.2f} on the other half"
    )


def _print_votes(pairs: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]) -> None:
    """Each vote (mean within-space rank of its estimates) scored per space and pooled."""
    print("\nrank votes (reported only; a search cannot use them):")
    for vote, members in VOTES.items():
        per_space = {}
        for space, columns in pairs.items():
            if all(m in columns for m in members):
                y = columns[members[0]][1]
                ranks = [rank_normalise(columns[m][0]) for m in members]
                per_space[space] = (np.mean(ranks, axis=0), y)
        if not per_space:
            continue
        parts = [
            f"{s} {score_estimates({'v': v[0]}, v[1])['v'].spearman:+.2f}"
            for s, v in per_space.items()
        ]
        pooled = pooled_agreement(list(per_space.values()))
        lo, hi = pooled.spearman_ci
        print(f"  {vote}: {', '.join(parts)}; pooled {pooled.spearman:+.2f} [{lo:+.2f}, {hi:+.2f}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", help="comma-separated (default: every space with both tables)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    names = args.spaces.split(",") if args.spaces else sorted(
        p.stem.removeprefix("ground_truth_") for p in RESULTS.glob("ground_truth_*.csv")
    )  # fmt: skip
    spaces, pairs = {}, {}
    for space in names:
        found = _space(space)
        if found is None:
            print(f"{space}: no ground truth and estimates for 3 or more common archs yet")
            continue
        spaces[space], pairs[space] = found
        spaces[space]["front_checks"] = _front_checks(space)
        _print(space, spaces[space])
        _print_held_out(space, spaces[space], pairs[space])
        _print_front_checks(space, spaces[space]["front_checks"])
    if not spaces:
        return
    # Each estimate is pooled over the spaces where it was measured (its n says over how many).
    # A model fitted on one space's ground truth says nothing of another space: not pooled.
    estimates = sorted(set().union(*(set(p) for p in pairs.values())) - set(FITTED))
    pooled_scores = {
        n: pooled_agreement([pairs[s][n] for s in spaces if n in pairs[s]]) for n in estimates
    }
    pooled = {
        "archs": sum(e["archs"] for e in spaces.values()),
        "seeds": min(e["seeds"] for e in spaces.values()),
        "budget": GROUND_TRUTH.budget_label(), "data": str(GROUND_TRUTH.data),
        "probes": ";".join(sorted({e["probes"] for e in spaces.values()})),
        "seed_agreement": None,
        "estimates": {
            n: _score_dict(a, _median([e["estimates"][n]["seconds_per_arch"] or math.nan
                                       for e in spaces.values() if n in e["estimates"]]))
            for n, a in pooled_scores.items()
        },
    }  # fmt: skip
    _print("pooled", pooled)
    _print_votes(pairs)
    evidence: dict[str, Any] = {
        "measured": datetime.date.today().isoformat(),
        "spaces": spaces,
        "pooled": pooled,
        "default": None,
        "rule": "",
        "references": _references(names),
    }
    parsed = evidence_from_dict(evidence)
    assert parsed.pooled is not None
    pooled_default, evidence["rule"] = choose_default(parsed.pooled)
    evidence["default"] = pooled_default
    print(f"\ndefault estimate by the rule ({evidence['rule']}): {pooled_default}")
    own = {
        name: choose_space_default(entry, pooled_default) for name, entry in parsed.spaces.items()
    }
    evidence["space_defaults"] = {name: pick for name, (pick, _) in own.items() if pick}
    evidence["space_rule"] = next(iter(own.values()))[1]
    print(f"per space ({evidence['space_rule']}):")
    for name in parsed.spaces:
        pick = evidence["space_defaults"].get(name)
        print(f"  {name}: {pick}" if pick else f"  {name}: {evidence['default']} (pooled default)")
    if not args.no_write:
        EVIDENCE_PATH.write_text(json.dumps(evidence, indent=1, allow_nan=False) + "\n")
        print(f"wrote {EVIDENCE_PATH}")


if __name__ == "__main__":
    main()

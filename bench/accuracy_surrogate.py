"""Can a model fitted on a space's ground truth rank that space's other archs?

No training-free estimate ranks `hybrid`'s archs better than chance, and on `plgvit` only weakly.
The ground truth itself is data: 30 to 45 archs per space with their trained accuracy. This
script asks whether a small regression fitted on some of them ranks the rest, which is what a
predictor-based search would rely on. The models (the first two fixed before any result on
`mobileformer` was seen):

* ``knobs``: ridge regression on the arch's knobs (numbers standardised, choices one-hot; the
  ridge penalty chosen by an inner leave-one-out), nothing else: archlab's own fit,
  :func:`archlab.estimate.surrogate.fit_knob_ridge`, made from the training archs of each fold;
* ``knobs+estimates``: the same with the training-free estimates, ``params`` and ``macs`` added
  (each rank-normalised over the space's archs; no accuracy enters that step);
* ``knobs+tse_1_64``: the knobs with one more column, the rank-normalised training speed of 15
  steps (``tse_1_64``, the cheap estimate that ranks four of the five spaces, at +0.16 to +0.56).
  Added after both parts had been scored alone and before this model was run: the one question it
  answers is whether a knob model and a measured training signal carry different information. It
  becomes no default by its cross-validated ρ; like ``knob_ridge``, it would have to win trained
  fronts first.

* ``knobs (GP)``: a Gaussian process on the knobs model's columns (:func:`fit_knob_gp`; a linear
  kernel plus a squared-exponential one plus noise). Added once the knobs model had nearly
  levelled off with more archs on ``plgvit``: does a model in which knobs may interact, and
  effects bend, rank better than a straight line? Not shipped; its permutation test is skipped
  (each fit takes about 100 times the ridge's).

Scored by repeated 5-fold cross-validation: in each repeat every arch is predicted by a model
fitted without it, and Spearman ρ is taken between those predictions and the ground truth (the
mean over seeds). Printed: the median ρ over repeats with its 5–95 % range (how much the split
matters), and a permutation test (the same procedure on shuffled accuracies, to show the ρ is not
an artefact of fitting 30 points), beside the best single estimate's ρ and the ground truth's
seed agreement. The knobs that weigh most in the model fitted on all archs are listed, and a
learning curve: the knobs model's ρ with 2, 3, 5 and 10 folds, i.e. fitted on half, two thirds,
four fifths and nine tenths of the archs (does more ground truth help?).

``--write`` ships the ``knobs`` model: fitted on all archs of every space with at least 30, into
``archlab/estimate/surrogates.json`` (what a search optimises as ``knob_ridge``), and its
leave-one-out predictions (each arch predicted by a model fitted on the others) into
``bench/results/fitted_<space>.csv``, which ``bench/evidence.py`` scores beside the other estimates.

``--held-out`` scores the shipped model on what it has never seen: the archs added to a space's
ground truth after the model was fitted (those missing from ``fitted_<space>.csv``), against their
mean accuracy over seeds, beside the other estimates of ``estimates_<space>.csv`` on the same archs
and the two seeds' own agreement there. It then applies the readings fixed before the new archs
were trained: whether the held-out ρ lies inside the model's leave-one-out interval, and whether
the held-out ρ's own interval contains the leave-one-out figure (:func:`leave_one_out_check`).
The Gaussian process is fitted then on the archs the shipped model saw and scored beside it, with
the paired bootstrap interval of the difference of their ρ. Run it before ``--write`` refits the
model on them; ``--held-out REV`` takes the model and its archs as committed at git revision REV
instead, and ``--data-at REV2`` the ground truth and estimates as committed at REV2 (the new archs
are those of REV2 then, so the figure does not change as the ground truth grows).

Run: ``.venv/bin/python bench/accuracy_surrogate.py [--spaces plgvit,hybrid] [--repeats 50]
[--permutations 200] [--write | --held-out [REV] [--data-at REV2]]`` (a minute or two).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import math
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from scipy.stats import rankdata, spearmanr
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, DotProduct, WhiteKernel
from sklearn.gaussian_process.kernels import ConstantKernel as Scale
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold

from archlab.estimate.evidence import MIN_ARCHS
from archlab.estimate.ground_truth import (
    paired_accuracies,
    parse_rows,
    random_arch_truth,
    seed_agreement,
)
from archlab.estimate.rank_stats import Agreement, agreement, bootstrap_interval, spearman
from archlab.estimate.score import score_estimates
from archlab.estimate.surrogate import (
    ALPHAS,
    FITTED_ESTIMATE,
    SURROGATES_PATH,
    KnobRidge,
    encode,
    fit_knob_ridge,
    leave_one_out,
)
from archlab.estimate.training import GROUND_TRUTH

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ESTIMATES = ("naswot", "synflow", "grad_norm", "zico", "swap", "meco", "params", "macs")
TRAINING_SPEED = ("tse_1_64",)
SHIPPED = f"{FITTED_ESTIMATE} (shipped)"
GP_CANDIDATE = "knob_gp (fitted now)"  # its name in the held-out table
GP_MODEL = "knobs (GP)"  # its name in the cross-validation table


def _text_at(path: Path, revision: str) -> str | None:
    """A file's text in the working tree (``revision`` empty) or as committed at git ``revision``;
    None where it does not exist (or git is missing)."""
    if not revision:
        return path.read_text() if path.exists() else None
    relative = path.resolve().relative_to(ROOT).as_posix()
    try:
        shown = subprocess.run(
            ["git", "show", f"{revision}:{relative}"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:  # no git here
        return None
    return shown.stdout if shown.returncode == 0 else None


def _truth(space: str, revision: str = "") -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
    """The archs with every seed, their mean accuracy and the CSV's rows (at git ``revision``)."""
    budget = GROUND_TRUTH.budget_label()
    text = _text_at(RESULTS / f"ground_truth_{space}.csv", revision)
    rows = parse_rows(text) if text else []
    truth = random_arch_truth(rows, budget)
    archs = sorted(truth)
    return archs, np.array([truth[a] for a in archs]), rows


def _estimate_rows(space: str, revision: str = "") -> dict[str, dict[str, float]]:
    """``estimates_<space>.csv`` (at git ``revision``) as numbers by arch (the seconds and
    settings columns left out)."""
    text = _text_at(RESULTS / f"estimates_{space}.csv", revision)
    out: dict[str, dict[str, float]] = {}
    for row in csv.DictReader(io.StringIO(text or "", newline="")):
        out[row["arch"]] = {
            k: float(v) for k, v in row.items()
            if k not in ("arch", "settings") and not k.endswith("_s") and v
        }  # fmt: skip
    return out


def _estimate_matrix(
    space: str, archs: list[str], names: tuple[str, ...] = ESTIMATES
) -> np.ndarray | None:
    """The ``names`` columns of ``estimates_<space>.csv`` for ``archs``, each rank-normalised;
    None if any is missing."""
    by_arch = _estimate_rows(space)
    if not all(a in by_arch and all(e in by_arch[a] for e in names) for a in archs):
        return None
    raw = np.array([[by_arch[a][e] for e in names] for a in archs])
    return np.column_stack([rankdata(c) / len(c) for c in raw.T])


FitPredict = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _knobs_model(archs: list[dict[str, Any]]) -> FitPredict:
    """archlab's own fit (:func:`archlab.estimate.surrogate.fit_knob_ridge`): columns made from
    the training archs only."""

    def fit_predict(train: np.ndarray, test: np.ndarray, y: np.ndarray) -> np.ndarray:
        model = fit_knob_ridge([archs[i] for i in train], list(y[train]))
        return model.predict([archs[i] for i in test])

    return fit_predict


def fit_knob_gp(
    archs: list[dict[str, Any]], accuracy: np.ndarray
) -> Callable[[list[dict[str, Any]]], np.ndarray]:
    """A Gaussian process on the same standardised knob columns as ``knob_ridge``: a linear kernel
    plus a squared-exponential one (knobs that interact, effects that bend) plus noise, every
    hyperparameter by marginal likelihood. Returns the fitted model's predictor."""
    x, columns = encode(archs)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    kernel = (
        Scale(1.0) * DotProduct(sigma_0=1.0)
        + Scale(1.0) * RBF(length_scale=math.sqrt(x.shape[1]))
        + WhiteKernel(1.0)
    )
    gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=3, random_state=0)
    with warnings.catch_warnings():  # a hyperparameter at its bound is a fit, not an error
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit((x - mean) / scale, accuracy)

    def predict(new: list[dict[str, Any]]) -> np.ndarray:
        z, _ = encode(new, columns)
        return np.asarray(gp.predict((z - mean) / scale), dtype=float)

    return predict


def _gp_model(archs: list[dict[str, Any]]) -> FitPredict:
    def fit_predict(train: np.ndarray, test: np.ndarray, y: np.ndarray) -> np.ndarray:
        return fit_knob_gp([archs[i] for i in train], y[train])([archs[i] for i in test])

    return fit_predict


def _matrix_model(x: np.ndarray) -> FitPredict:
    """Ridge on the columns of ``x``, standardised on the training archs."""

    def fit_predict(train: np.ndarray, test: np.ndarray, y: np.ndarray) -> np.ndarray:
        mean, sd = x[train].mean(axis=0), x[train].std(axis=0)
        sd[sd == 0] = 1.0
        model = RidgeCV(alphas=ALPHAS).fit((x[train] - mean) / sd, y[train])
        return np.asarray(model.predict((x[test] - mean) / sd))

    return fit_predict


def cross_validated_rho(
    fit_predict: FitPredict, y: np.ndarray, repeats: int, seed: int = 0, folds: int = 5
) -> np.ndarray:
    """Spearman ρ of out-of-fold predictions with ``y``, one per repeat of k-fold CV."""
    rhos = []
    for r in range(repeats):
        predicted = np.empty_like(y)
        for train, test in KFold(folds, shuffle=True, random_state=seed + r).split(y):
            predicted[test] = fit_predict(train, test, y)
        rhos.append(float(spearmanr(predicted, y).statistic))
    return np.array(rhos)


def _permutation_p(fit_predict: FitPredict, y: np.ndarray, observed: float, n: int) -> float:
    """Share of shuffled accuracies whose cross-validated ρ (5 repeats) reaches ``observed``."""
    rng = np.random.default_rng(0)
    hits = sum(
        float(np.median(cross_validated_rho(fit_predict, rng.permutation(y), 5, 1000 + i)))
        >= observed
        for i in range(n)
    )
    return (hits + 1) / (n + 1)


def _write_fitted(space: str, archs: list[str], y: np.ndarray) -> dict[str, Any]:
    """Leave-one-out predictions to ``fitted_<space>.csv``; the model on all archs, as JSON."""
    configs = [json.loads(a) for a in archs]
    predicted = leave_one_out(configs, list(y))
    model = fit_knob_ridge(configs, list(y))
    start = time.perf_counter()
    model.predict(configs)
    seconds = (time.perf_counter() - start) / len(configs)
    path = RESULTS / f"fitted_{space}.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arch", FITTED_ESTIMATE, f"{FITTED_ESTIMATE}_s"])
        for arch, value in zip(archs, predicted):
            writer.writerow([arch, f"{value:.6f}", f"{seconds:.2e}"])
    rho = float(spearmanr(predicted, y).statistic)
    print(f"  wrote {path.name}: leave-one-out ρ {rho:+.2f}")
    return {
        "model": model.to_dict(),
        "ground_truth": f"bench/results/ground_truth_{space}.csv",
        "leave_one_out_spearman": rho,
    }


Fit = Callable[[list[dict[str, Any]], np.ndarray], Callable[[list[dict[str, Any]]], np.ndarray]]


def held_out_predictions(
    archs: list[str],
    y: np.ndarray,
    fitted: set[str],
    model: KnobRidge,
    estimates: dict[str, dict[str, float]],
    candidates: dict[str, Fit] | None = None,
) -> dict[str, np.ndarray]:
    """On the archs outside ``fitted`` (those the shipped ``model`` was fitted on): its
    predictions, every estimate computed for all of them (one missing for any new arch is left
    out), and each candidate model fitted now on the fitted archs (so on the data the shipped one
    saw). Empty with fewer than 3 new archs."""
    new = [i for i, a in enumerate(archs) if a not in fitted]
    if len(new) < 3:
        return {}
    old = [i for i, a in enumerate(archs) if a in fitted]
    configs = [json.loads(a) for a in archs]
    columns = {SHIPPED: model.predict([configs[i] for i in new])}
    for name, fit in (candidates or {}).items():
        columns[name] = fit([configs[i] for i in old], y[old])([configs[i] for i in new])
    names = {name for a in archs for name in estimates.get(a, {})}
    for name in sorted(names):
        values = [estimates.get(archs[i], {}).get(name) for i in new]
        if all(v is not None and not math.isnan(v) for v in values):
            columns[name] = np.array(values, dtype=float)
    return columns


def paired_rho_difference(
    first: np.ndarray, second: np.ndarray, truth: np.ndarray
) -> tuple[float, float, float]:
    """Spearman ρ of ``first`` minus that of ``second`` against ``truth``, with a 95 % bootstrap
    interval over archs drawn with replacement (both scored on the same draw)."""

    def difference(drawn: np.ndarray, drawn_truth: np.ndarray) -> float:
        idx = drawn.astype(int)  # the bootstrap draws arch indices; both are scored on them
        return spearman(first[idx], drawn_truth) - spearman(second[idx], drawn_truth)

    low, high = bootstrap_interval(difference, np.arange(len(truth), dtype=float), truth)
    return spearman(first, truth) - spearman(second, truth), low, high


class HeldOutReading(NamedTuple):
    """The two readings of a held-out check, both fixed before new archs are trained."""

    leave_one_out: Agreement  # the shipped model's, over the archs it was fitted on
    inside: bool  # the held-out ρ lies inside the leave-one-out 95 % interval
    consistent: bool  # the held-out ρ's own 95 % interval contains the leave-one-out ρ


def leave_one_out_check(
    loo: dict[str, float], truth: dict[str, float], held_out: Agreement
) -> HeldOutReading:
    """Read the shipped model's score on new archs (``held_out``) against its leave-one-out ρ
    over the archs it was fitted on (``loo``: each arch's prediction by a model fitted without it).

    ``inside`` is the strict reading (used up to 45 ``hybrid`` archs): the held-out ρ must fall in
    the leave-one-out interval. A ρ over 12 to 15 new archs spreads far wider than one over 45, so
    it can fail by chance on either side; ``consistent`` (added after that happened, on the
    favourable side) asks only whether the held-out set, at its size, contradicts the figure.
    Archs are taken in ``truth``'s order, the ground truth's, so the interval is the one
    ``bench/evidence.py`` publishes."""
    fitted = [a for a in truth if a in loo]
    score = agreement(np.array([loo[a] for a in fitted]), np.array([truth[a] for a in fitted]))
    low, high = score.spearman_ci
    held_low, held_high = held_out.spearman_ci
    return HeldOutReading(
        leave_one_out=score,
        inside=bool(low <= held_out.spearman <= high),
        consistent=bool(held_low <= score.spearman <= held_high),
    )


def _shipped(space: str, revision: str) -> tuple[KnobRidge, dict[str, float]] | None:
    """The model shipped for ``space`` and its leave-one-out prediction of each arch it was fitted
    on: as in the working tree, or as committed at git ``revision`` (a figure taken before a refit
    can be taken again)."""
    document = _text_at(SURROGATES_PATH, revision)
    fitted = _text_at(RESULTS / f"fitted_{space}.csv", revision)
    model = json.loads(document)["spaces"].get(space) if document else None
    if model is None or fitted is None:
        return None
    loo = {r["arch"]: float(r[FITTED_ESTIMATE]) for r in csv.DictReader(io.StringIO(fitted))}
    return KnobRidge.from_dict(model["model"]), loo


def _print_held_out(
    space: str,
    archs: list[str],
    y: np.ndarray,
    rows: list[dict[str, Any]],
    revision: str,
    data_revision: str,
) -> None:
    shipped = _shipped(space, revision)
    if shipped is None:
        print(f"{space}: no shipped model" + (f" at {revision}" if revision else ""))
        return
    model, loo = shipped
    fitted = set(loo)
    candidates: dict[str, Fit] = {GP_CANDIDATE: fit_knob_gp}
    estimates = _estimate_rows(space, data_revision)
    predictions = held_out_predictions(archs, y, fitted, model, estimates, candidates)
    new = [a for a in archs if a not in fitted]
    print(f"\n{space}: {len(new)} archs the shipped model was not fitted on "
          f"(it was fitted on {len(fitted)})")  # fmt: skip
    if not predictions:
        print("  3 or more needed")
        return
    truth = np.array([y[i] for i, a in enumerate(archs) if a not in fitted])
    pairs = paired_accuracies(rows, GROUND_TRUTH.budget_label(), (0, 1))
    seeds = np.array([pairs[a] for a in new if a in pairs])
    if len(seeds) >= 3:
        a = agreement(seeds[:, 0], seeds[:, 1])
        print(f"  seed 0 vs 1 on them: ρ {a.spearman:+.2f} [{a.spearman_ci[0]:+.2f}, "
              f"{a.spearman_ci[1]:+.2f}]")  # fmt: skip
    scores = score_estimates(predictions, truth)
    for name, s in sorted(scores.items(), key=lambda kv: -kv[1].spearman):
        print(f"  {name:<26} ρ {s.spearman:+.2f} [{s.spearman_ci[0]:+.2f}, {s.spearman_ci[1]:+.2f}]"
              f"  τ {s.kendall:+.2f}  top-20 % recall {s.top20_recall:.2f}")  # fmt: skip
    for name in candidates:
        d, low, high = paired_rho_difference(predictions[name], predictions[SHIPPED], truth)
        print(f"  {name} minus {SHIPPED}: ρ {d:+.2f} [{low:+.2f}, {high:+.2f}] (paired bootstrap)")
    truth_in_order = random_arch_truth(rows, GROUND_TRUTH.budget_label())
    held_out = scores[SHIPPED]
    reading = leave_one_out_check(loo, truth_in_order, held_out)
    score = reading.leave_one_out
    low, high = score.spearman_ci
    held_low, held_high = held_out.spearman_ci
    print(f"  the shipped model's leave-one-out ρ on its {score.n} archs: {score.spearman:+.2f} "
          f"[{low:+.2f}, {high:+.2f}]")  # fmt: skip
    print(f"    held out {held_out.spearman:+.2f} inside that interval: "
          f"{'yes' if reading.inside else 'no'}")  # fmt: skip
    print(f"    the held-out interval [{held_low:+.2f}, {held_high:+.2f}] contains "
          f"{score.spearman:+.2f}: {'yes' if reading.consistent else 'no'}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", help="comma-separated (default: every space with ground truth)")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--permutations", type=int, default=200)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="ship the knobs model (see above)")
    mode.add_argument(
        "--held-out",
        nargs="?",
        const="",
        metavar="REV",
        help="score the shipped model (or the one committed at git REV) on archs it was not "
        "fitted on",
    )
    parser.add_argument(
        "--data-at",
        default="",
        metavar="REV",
        help="with --held-out: the ground truth and estimates as committed at git REV (a held-out "
        "figure stays the same as the ground truth grows)",
    )
    args = parser.parse_args()
    if args.data_at and args.held_out is None:
        parser.error("--data-at applies only with --held-out")
    spaces = args.spaces.split(",") if args.spaces else sorted(
        p.stem.removeprefix("ground_truth_") for p in RESULTS.glob("ground_truth_*.csv")
    )  # fmt: skip
    shipped: dict[str, Any] = {}
    for space in spaces:
        archs, y, rows = _truth(space, args.data_at)
        if len(archs) < 10:
            print(f"{space}: {len(archs)} archs with every seed; 10 or more needed")
            continue
        if args.held_out is not None:
            _print_held_out(space, archs, y, rows, args.held_out, args.data_at)
            continue
        configs = [json.loads(a) for a in archs]
        knobs, _ = encode(configs)
        estimates = _estimate_matrix(space, archs)
        ceiling = seed_agreement(rows, GROUND_TRUTH.budget_label(), (0, 1))
        print(
            f"\n{space}: {len(archs)} archs, {knobs.shape[1]} knob columns; ground truth seed 0 vs "
            f"1: ρ {ceiling.spearman:+.2f}"
        )
        if estimates is not None:
            single = {
                e: float(spearmanr(estimates[:, i], y).statistic) for i, e in enumerate(ESTIMATES)
            }
            best = max(single, key=lambda e: single[e])
            print(f"  best single estimate on all archs (picked after the fact): {best} "
                  f"{single[best]:+.2f}")  # fmt: skip
        models = {"knobs": _knobs_model(configs), GP_MODEL: _gp_model(configs)}
        if estimates is not None:
            models["knobs+estimates"] = _matrix_model(np.hstack([knobs, estimates]))
        speed = _estimate_matrix(space, archs, TRAINING_SPEED)
        if speed is not None:
            models["knobs+tse_1_64"] = _matrix_model(np.hstack([knobs, speed]))
            print(f"  tse_1_64 alone on all archs: {spearmanr(speed[:, 0], y).statistic:+.2f}")
        for model, fit_predict in models.items():
            rhos = cross_validated_rho(fit_predict, y, args.repeats)
            median = float(np.median(rhos))
            lo, hi = np.percentile(rhos, [5, 95])
            p = (
                _permutation_p(fit_predict, y, median, args.permutations)
                if args.permutations and model != GP_MODEL  # its fits take 100 times longer
                else math.nan
            )
            print(
                f"  {model:<16} cross-validated ρ {median:+.2f} (5–95 % over {args.repeats} "
                f"splits {lo:+.2f} to {hi:+.2f}); permutation p "
                + ("–" if math.isnan(p) else f"{p:.3f}")
            )
        heaviest = fit_knob_ridge(configs, list(y)).weights()[:4]
        shown = ", ".join(f"{name} {w * 100:+.2f}" for name, w in heaviest)
        print(f"  heaviest knobs fitted on all archs (accuracy points per SD): {shown}")
        curve = []
        for folds in (2, 3, 5, 10):
            rhos = cross_validated_rho(models["knobs"], y, args.repeats, folds=folds)
            rho = float(np.median(rhos))
            curve.append(f"{len(y) - math.ceil(len(y) / folds)} archs {rho:+.2f}")
        print(f"  knobs model fitted on: {', '.join(curve)}")
        if args.write and len(archs) >= MIN_ARCHS:
            shipped[space] = _write_fitted(space, archs, y)
    if args.write:
        kept = json.loads(SURROGATES_PATH.read_text())["spaces"] if SURROGATES_PATH.exists() else {}
        document = {
            "measured": datetime.date.today().isoformat(),
            "fit": "ridge on the knobs (archlab.estimate.surrogate.fit_knob_ridge), all archs with "
            "every ground-truth seed, their mean validation accuracy",
            "spaces": {**kept, **shipped},
        }
        SURROGATES_PATH.write_text(json.dumps(document, indent=1) + "\n")
        print(f"wrote {SURROGATES_PATH} ({', '.join(sorted(document['spaces']))})")


if __name__ == "__main__":
    main()

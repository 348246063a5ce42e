"""Do NSGA-II and TPE find better fronts than random search for the same number of trials?

Runs each sampler of ``archlab search`` (same settings: NSGA-II and NSGA-III with population 24,
multivariate TPE, random; model-based samplers start from the space's smallest and largest archs as
a new ``archlab search`` study does, unless ``--no-corners``) on a space for ``--seeds`` seeds and
``--trials`` trials, on cheap objectives that need no latency measurement (default: the NASWOT
estimate at 64 px, maximised, against parameters, minimised; ``--objectives`` picks others, e.g.
``naswot,macs``). Each arch is evaluated once and cached, so every sampler sees exactly the same
objective function.

Hypervolume uses one reference point per space for all runs: per objective, the worst value any
run found, moved out by 10% of the observed range
(:func:`archlab.study.hypervolume.nadir_reference`).
Printed: the mean (± std over seeds) hypervolume of each sampler after 25, 50, 100, 200 and 300
trials, as a ratio to random search's at 300 trials of the same seed, and whether the default
sampler reaches random search's 300-trial hypervolume within 100 trials, per seed. Pruned trials
(impossible knob combinations) and archs that cannot run at 64 px are counted.

Run: ``.venv/bin/python bench/search_efficiency.py`` (plgvit, 3 seeds × 3 samplers × 300 trials).
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from typing import Any

import numpy as np
import optuna
import torch

from archlab.estimate.estimates import ESTIMATES, estimate_accuracy
from archlab.measurement.flops import count_macs, count_params
from archlab.search.loop import make_sampler, seed_corners
from archlab.space import SearchSpace, load_space
from archlab.study.hypervolume import hypervolume, nadir_reference, to_minimization
from archlab.study.objectives import get_objectives
from archlab.study.settings import SearchSpec, resolve_sampler

CHECKPOINTS = (25, 50, 100, 200)  # trial counts at which hypervolumes are compared (+ the last)
CHEAP = ("naswot", "synflow", "grad_norm", "params", "macs")


class Evaluator:
    """Cheap metrics of an arch, computed once per arch and cached."""

    def __init__(self, space: SearchSpace, metrics: list[str], resolution: int) -> None:
        self.space, self.metrics, self.resolution = space, metrics, resolution
        self.cache: dict[tuple[Any, ...], dict[str, float]] = {}
        self.seconds = 0.0

    def __call__(self, arch: dict[str, Any]) -> dict[str, float]:
        key = tuple(sorted(arch.items()))
        if key not in self.cache:
            start = time.perf_counter()
            self.cache[key] = self._evaluate(arch)
            self.seconds += time.perf_counter() - start
        return self.cache[key]

    def _evaluate(self, arch: dict[str, Any]) -> dict[str, float]:
        out: dict[str, float] = {}
        estimates = [m for m in self.metrics if m in ESTIMATES]
        out.update(estimate_accuracy(self.space, arch, estimates, resolution=self.resolution))
        if "params" in self.metrics or "macs" in self.metrics:
            torch.manual_seed(0)
            model = self.space.family.build(self.space.to_cfg(arch)).eval()
            out["params"] = count_params(model)
            if "macs" in self.metrics:
                out["macs"] = count_macs(model, self.space.resolution).total
        return out


def _run(
    sampler: str, seed: int, spec: SearchSpec, evaluate: Evaluator, trials: int
) -> dict[str, Any]:
    assert spec.objectives is not None, "main() names the objectives"
    objectives = get_objectives(spec.objectives)
    run_spec = SearchSpec(
        objectives=spec.objectives, sampler=sampler, population_size=spec.population_size
    )
    study = optuna.create_study(
        directions=[o.direction for o in objectives], sampler=make_sampler(run_spec, seed)
    )
    if spec.corners and sampler != "random":  # as archlab search starts a new study
        seed_corners(study, evaluate.space)
    counts = {"pruned": 0, "failed": 0}

    def objective(trial: optuna.Trial) -> list[float]:
        arch = evaluate.space.suggest(trial)
        try:
            evaluate.space.to_cfg(arch)
        except ValueError as err:  # an impossible combination of knobs, as in archlab search
            counts["pruned"] += 1
            raise optuna.TrialPruned(str(err)) from None
        try:
            metrics = evaluate(arch)
        except ValueError as err:  # cannot run at the reduced resolution
            counts["failed"] += 1
            raise optuna.TrialPruned(str(err)) from None
        return [float(metrics[o.metric]) for o in objectives]

    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    points = [t.values for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return {"points": points, "seconds": time.perf_counter() - start, **counts}


def _curve(
    points: list[list[float]], directions: list[str], ref: np.ndarray, budgets: tuple[int, ...]
) -> list[float]:
    mins = to_minimization(points, directions)
    return [hypervolume(mins[:b], ref) for b in budgets]


def _trials_to_reach(
    points: list[list[float]], directions: list[str], ref: np.ndarray, target: float
) -> int | None:
    mins = to_minimization(points, directions)
    for n in range(1, len(mins) + 1):
        if hypervolume(mins[:n], ref) >= target:
            return n
    return None


def _report(
    runs: dict[str, list[dict[str, Any]]], directions: list[str], default: str, trials: int
) -> None:
    budgets = tuple(b for b in CHECKPOINTS if b < trials) + (trials,)
    everything = [p for rs in runs.values() for r in rs for p in r["points"]]
    ref = nadir_reference(to_minimization(everything, directions))
    shown = [float(-r if d == "maximize" else r) for r, d in zip(ref, directions)]
    print(f"reference point (objective units): {[f'{v:.4g}' for v in shown]}")
    curves = {
        s: [_curve(r["points"], directions, ref, budgets) for r in rs] for s, rs in runs.items()
    }
    base = [c[-1] for c in curves["random"]]  # random search at the last budget, per seed
    head = f"{'sampler':<8}" + "".join(f"{'@' + str(b):>15}" for b in budgets)
    print(f"\nhypervolume / random search's at {trials} trials (same seed), mean ± std\n{head}")
    for sampler, per_seed in curves.items():
        ratios = np.array(per_seed) / np.array(base)[:, None]
        cells = "".join(f"{m:>9.3f} ±{s:.3f}" for m, s in zip(ratios.mean(0), ratios.std(0)))
        print(f"{sampler:<8}{cells}")
    goal = min(100, trials)
    print(
        f"\ntrials each run needed to match random search's {trials}-trial hypervolume "
        f"(same seed; '–': not within {trials})"
    )
    for sampler, rs in runs.items():
        needed = [_trials_to_reach(r["points"], directions, ref, b) for r, b in zip(rs, base)]
        within = sum(n is not None and n <= goal for n in needed)
        shown_needed = ", ".join("–" if n is None else str(n) for n in needed)
        default_mark = " (default)" if sampler == default else ""
        print(
            f"{sampler:<8}{shown_needed:<30} within {goal} trials in {within} of {len(rs)} seeds"
            f"{default_mark}"
        )
    for sampler, rs in runs.items():
        print(
            f"{sampler}: {np.mean([r['seconds'] for r in rs]):.0f} s per run, "
            f"{sum(r['pruned'] for r in rs)} pruned trials (impossible knobs), "
            f"{sum(r['failed'] for r in rs)} archs that could not run at the reduced resolution"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="plgvit")
    parser.add_argument(
        "--objectives",
        default="naswot,params",
        help=f"two cheap objectives from {', '.join(CHEAP)}",
    )
    parser.add_argument("--samplers", default="nsga2,tpe,random")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--population", type=int, default=24, help="NSGA-II/III population")
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--resolution", type=int, default=64, help="input side of the estimates")
    parser.add_argument(
        "--no-corners",
        action="store_true",
        help="start model-based samplers without the space's smallest and largest archs",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    names = tuple(o.strip() for o in args.objectives.split(","))
    costly = [n for n in names if n not in CHEAP]
    if costly:
        raise SystemExit(f"objectives {costly} are not cheap; choose from {CHEAP}")
    spec = SearchSpec(
        space=args.space,
        objectives=names,
        population_size=args.population,
        corners=not args.no_corners,
    )
    corners = "without" if args.no_corners else "with"
    print(f"model-based samplers start {corners} the space's corner archs (smallest, largest)")
    objectives = get_objectives(names)
    space = load_space(args.space)
    evaluate = Evaluator(space, [o.metric for o in objectives], args.resolution)
    samplers = [s.strip() for s in args.samplers.split(",")]
    if "random" not in samplers:
        samplers.append("random")
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in samplers}
    for seed in range(args.seeds):
        for sampler in samplers:
            runs[sampler].append(_run(sampler, seed, spec, evaluate, args.trials))
            print(
                f"seed {seed} {sampler}: done ({len(evaluate.cache)} archs evaluated so far, "
                f"{evaluate.seconds:.0f} s evaluating)",
                flush=True,
            )
    print(
        f"\n{args.space}: {' vs '.join(o.name for o in objectives)}, {args.seeds} seeds × "
        f"{args.trials} trials; torch {torch.__version__}, 1 thread"
    )
    _report(runs, [o.direction for o in objectives], resolve_sampler(spec), args.trials)


if __name__ == "__main__":
    main()

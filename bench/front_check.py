"""One front check, end to end and resumable: two searches differing only in the accuracy estimate.

A front check (docs/accuracy.md) pits two accuracy estimates against each other on one space: two
searches with the same target, seed and number of trials, each optimising one estimate and
latency; both feasible fronts trained with the ground-truth recipe; every trained member timed
side by side with one of the space's presets; the checks scored again. This script runs those
steps for one pair, and each step resumes where it stopped:

1. each study (``fc-<space>-<estimate>-s<seed>`` unless ``--names`` gives them) gets the trials it
   lacks up to ``--trials`` (finished ones count, failed included);
2. each study's feasible front is trained (``archlab train``, ``--train-seeds`` seeds), the two
   studies in parallel, one process per core; archs already trained are skipped;
3. ``bench/front_vs_preset.py --study NAME --preset P --write`` for each study (minutes: the
   preset and the members are timed again, interleaved);
4. ``bench/evidence.py`` scores the checks and rewrites ``archlab/estimate/evidence.json``.

``--steps`` runs only some of them (e.g. ``search,train`` now and ``compare,score`` on a quiet
machine: step 3 times models, so other jobs should be paused while it runs).

Run: ``.venv/bin/python bench/front_check.py --space hybrid --target 53ms --seed 3
--estimates knob_ridge,naswot --preset hybrid_all_four [--trials 30] [--train-seeds 2]
[--storage URL] [--names A,B] [--steps search,train,compare,score]``. A dry run of the first two
steps on a small space: ``--space tests/data/tiny_plgvit.yaml --target 1s --seed 0 --estimates
macs,params --preset lw_plgvit_r --trials 4 --steps search,train --train-steps 3 --data digits``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import warnings
from pathlib import Path

import optuna

from archlab.cli.common import parse_duration
from archlab.search.loop import run_search
from archlab.space import load_space
from archlab.study.settings import SearchSpec
from archlab.study.storage import StorageError, load_study

BENCH = Path(__file__).resolve().parent
STEPS = ("search", "train", "compare", "score")
FINISHED = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.FAIL,
    optuna.trial.TrialState.PRUNED,
)


def study_names(space: str, estimates: list[str], seed: int, names: str | None) -> list[str]:
    """The pair's study names: given, or ``fc-<space>-<estimate>-s<seed>``."""
    if names:
        given = [n.strip() for n in names.split(",")]
        if len(given) != len(estimates):
            raise SystemExit(f"--names: {len(given)} names for {len(estimates)} estimates")
        return given
    return [f"fc-{space}-{e}-s{seed}" for e in estimates]


def finished_trials(name: str, storage: str | None) -> int:
    """How many trials of the study have finished (0 if it does not exist yet)."""
    try:
        study = load_study(name, storage)
    except StorageError:
        return 0
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def search(args: argparse.Namespace, name: str, estimate: str) -> None:
    missing = args.trials - finished_trials(name, args.storage)
    if missing <= 0:
        print(f"{name}: {args.trials} trials already finished")
        return
    print(f"{name}: {missing} more trial(s) of {estimate} + latency")
    run_search(
        SearchSpec(
            space=args.space,
            study_name=name,
            storage=args.storage,
            target_latency_s=parse_duration(args.target, "--target"),
            objectives=(estimate, "latency"),
            n_trials=missing,
            seed=args.seed,
        )
    )


def _archlab(*args: str) -> list[str]:
    return [sys.executable, "-m", "archlab.cli", *args]


def train(args: argparse.Namespace, names: list[str]) -> None:
    """Both fronts at once, one training process per study (each on one thread)."""
    extra = ["--storage", args.storage] if args.storage else []
    seeds = ["--seeds", str(args.train_seeds)]
    if args.train_steps:  # a dry run: not the ground-truth recipe, so not a front check
        extra += ["--steps", str(args.train_steps)]
    if args.data:
        extra += ["--data", args.data]
    jobs = [subprocess.Popen(_archlab("train", "--study", n, *seeds, *extra)) for n in names]
    failed = [n for n, job in zip(names, jobs) if job.wait() != 0]
    if failed:
        raise SystemExit(f"training failed for {failed}; run again to resume")


def compare(args: argparse.Namespace, names: list[str]) -> None:
    extra = ["--storage", args.storage] if args.storage else []
    for name in names:
        command = [sys.executable, str(BENCH / "front_vs_preset.py"), "--study", name]
        subprocess.run([*command, "--preset", args.preset, "--write", *extra], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", required=True)
    parser.add_argument("--target", required=True, help="latency target, e.g. 53ms")
    parser.add_argument("--seed", type=int, required=True, help="the searches' seed")
    parser.add_argument("--estimates", required=True, help="two estimates, e.g. knob_ridge,naswot")
    parser.add_argument("--preset", required=True, help="the preset timed beside the fronts")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--train-seeds", type=int, default=2)
    parser.add_argument("--storage", help="default: studies/archlab.db")
    parser.add_argument("--train-steps", type=int, help="dry runs only: not the recipe's budget")
    parser.add_argument("--data", help="dry runs only: another data set than the recipe's")
    parser.add_argument("--names", help="the two study names (default fc-<space>-<est>-s<seed>)")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"some of {','.join(STEPS)}")
    args = parser.parse_args()
    estimates = [e.strip() for e in args.estimates.split(",")]
    steps = [s.strip() for s in args.steps.split(",")]
    if len(estimates) != 2 or len(set(estimates)) != 2:
        raise SystemExit(f"--estimates: two different estimates, got {estimates}")
    if not set(steps) <= set(STEPS):
        raise SystemExit(f"--steps: choose from {STEPS}, got {steps}")
    if (args.train_steps or args.data) and {"compare", "score"} & set(steps):
        raise SystemExit(
            "a dry run (--train-steps, --data) stops after training: the compare and "
            "score steps write the committed front_checks.csv and evidence.json"
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    names = study_names(load_space(args.space).name, estimates, args.seed, args.names)
    if "search" in steps:
        for name, estimate in zip(names, estimates):
            search(args, name, estimate)
    if "train" in steps:
        train(args, names)
    if "compare" in steps:
        compare(args, names)
    if "score" in steps:
        subprocess.run([sys.executable, str(BENCH / "evidence.py")], check=True)


if __name__ == "__main__":
    main()

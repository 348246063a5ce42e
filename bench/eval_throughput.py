"""Candidates evaluated per hour, measured vs predicted latency, and the search process's memory.

Three short searches of the same space, objectives and seed run one after the other, each into
its own SQLite study in a temporary folder: ``--latency measured`` (every candidate timed by
``measure_latency``), ``--latency predicted`` (device-profile lookups, blocks the profile lacks
timed on demand) and "estimated" (``--latency predicted --unseen-blocks estimate``: such blocks
estimated by the profile's cost model). Predicted searches re-measure their final front; that time
is printed on its own (it is paid once per search, and grows with the front, not the trials) and
counted in a second rate. Printed: trials per hour of each and their ratio. The
profile is made first (its time is printed, not counted: it is paid once per machine and space).

Then a longer predicted-mode search records this process's resident memory (VmRSS from
``/proc/self/status``) after trial 10 and after trial ``--rss-trials`` (default 1,000): the growth
should stay under 10% (nothing may accumulate per trial).

Figures are only meaningful on a quiet machine (check ``uptime``).
Run: ``.venv/bin/python bench/eval_throughput.py`` (plgvit space: about 40-60 min, most of it the
1,000-trial RSS run); ``--rss-trials 200`` for a shorter run; ``--quick`` checks that the script
works (tiny test space, 6 and 30 trials; figures not meaningful). ``--modes estimated --workers 2
--no-rss --profile P`` times one mode alone, e.g. on a profile a long search has already filled.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch

from archlab.measurement.contention import describe_steal, machine_ticks
from archlab.predict.profile import profile_device
from archlab.search.loop import create_or_resume, run_search, run_trials
from archlab.search.remeasure import remeasure_study_front
from archlab.search.workers import run_workers
from archlab.study.settings import SearchSpec

MODES = ("measured", "predicted", "estimated")
TINY = Path(__file__).resolve().parent.parent / "tests" / "data" / "tiny_plgvit.yaml"


def rss_mb() -> float:
    """This process's resident set size in MB (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _copy(profile: Path, to: Path) -> Path:
    """A copy of the profile: blocks measured on demand in one run do not help the next."""
    shutil.copyfile(profile, to)
    return to


STORAGES = ("sqlite", "journal")


def _spec(
    space: str, folder: Path, name: str, trials: int, storage: str = "sqlite", **kw: Any
) -> SearchSpec:
    url = (
        f"sqlite:///{folder / (name + '.db')}"
        if storage == "sqlite"
        else f"journal:///{folder / (name + '.log')}"
    )
    return SearchSpec(
        space=space,
        storage=url,
        study_name=name,
        n_trials=trials,
        target_latency_s=10.0,
        seed=0,
        objectives=("naswot", "latency"),
        **kw,
    )


@dataclass
class Run:
    """One timed search: its trials, the loop's wall clock and the front re-measurement's."""

    trials: int
    loop_s: float
    front_s: float = 0.0
    front_models: int = 0

    @property
    def loop_rate(self) -> float:
        """Complete trials per hour of the trial loop (start-up of worker processes included)."""
        return 3600 * self.trials / self.loop_s

    @property
    def end_to_end_rate(self) -> float:
        """Complete trials per hour with the front re-measurement counted."""
        return 3600 * self.trials / (self.loop_s + self.front_s)


def throughput(
    space: str,
    folder: Path,
    trials: int,
    profile: Path,
    workers: tuple[int, ...],
    modes: tuple[str, ...] = MODES,
    storage: str = "sqlite",
    front: bool = True,
) -> dict[str, Run]:
    """'mode, N worker(s)' → the timed run.

    With several workers each is its own ``archlab worker`` process (its start-up is counted); a
    predicted-mode search re-measures its final front after the trials, timed on its own.
    """
    runs = {}
    for mode in modes:
        extra = {}
        if mode != "measured":  # unseen blocks timed on demand, or estimated by the cost model
            unseen = "measure" if mode == "predicted" else "estimate"
            extra = {
                "latency_mode": "predicted",
                "latency_model": str(profile),
                "unseen_blocks": unseen,
            }
        for n in workers:
            name = f"{mode}-{n}"
            if mode != "measured":  # every predicted run starts from the same table
                extra["latency_model"] = str(_copy(profile, folder / f"{name}-profile.json"))
            spec = _spec(space, folder, name, trials, storage, **extra)
            start = time.perf_counter()
            if n == 1:
                study, space_, _, spec = create_or_resume(spec)
                run_trials(study, space_, spec, spec.seed)
            else:
                study = run_workers(spec, n).study
            loop_s = time.perf_counter() - start
            done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
            run = Run(len(done), loop_s)
            if mode != "measured" and front:
                start = time.perf_counter()
                run.front_models = len(remeasure_study_front(study, spec))
                run.front_s = time.perf_counter() - start
            gmacs = statistics.median(t.user_attrs["macs"] / 1e9 for t in done) if done else 0.0
            label = f"{mode}, {n} worker{'s' if n > 1 else ''}"
            runs[label] = run
            front_text = (
                f"; front of {run.front_models} re-measured in {run.front_s:.0f} s"
                if run.front_models
                else ""
            )
            print(
                f"  {label}: {len(done)} trials in {loop_s:.0f} s{front_text}, median candidate "
                f"{gmacs:.3g} GMACs",
                flush=True,
            )
    return runs


def rss_growth(space: str, folder: Path, trials: int, profile: Path) -> dict[int, float]:
    """trial number (1-based) → RSS in MB after it, for a predicted-mode search.

    Also prints the trial rate between marks: once most blocks are in the table (cached from
    earlier on-demand measurements), a predicted trial costs only the count, memory pass and
    accuracy estimate.
    """
    marks = {10, trials} | {m for m in (100, 300, 500) if m < trials}
    seen: dict[int, float] = {}
    last = {"time": time.perf_counter(), "trial": 0, "on_demand": 0}
    on_demand = 0

    def record(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        nonlocal on_demand
        on_demand += bool(trial.user_attrs.get("latency_blocks_measured_on_demand"))
        n = trial.number + 1
        if n not in marks:
            return
        now = time.perf_counter()
        seen[n] = rss_mb()
        rate = 3600 * (n - last["trial"]) / (now - last["time"])
        print(
            f"  after trial {n}: RSS {seen[n]:.0f} MB; trials {last['trial'] + 1}-{n} at "
            f"{rate:.0f}/h, {on_demand - last['on_demand']} of them timed blocks on demand",
            flush=True,
        )
        last.update(time=now, trial=n, on_demand=on_demand)

    run_search(
        _spec(
            space,
            folder,
            "rss",
            trials,
            latency_mode="predicted",
            latency_model=str(_copy(profile, folder / "rss-profile.json")),
            remeasure_slices=1,
        ),
        callbacks=[record],
    )
    return seen


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="plgvit")
    parser.add_argument("--trials", type=int, default=30, help="trials per mode for throughput")
    parser.add_argument("--rss-trials", type=int, default=1000)
    parser.add_argument(
        "--workers", default="1,2", help="worker counts to compare (one process per core each)"
    )
    parser.add_argument("--profile", type=Path, default=None, help="reuse this device profile")
    parser.add_argument(
        "--modes", default=",".join(MODES), help="which of measured, predicted, estimated to run"
    )
    parser.add_argument(
        "--rss", action=argparse.BooleanOptionalAction, default=True, help="the RSS run too"
    )
    parser.add_argument(
        "--storage", choices=STORAGES, default="sqlite", help="study storage of the timed runs"
    )
    parser.add_argument(
        "--front",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="re-measure the predicted searches' fronts (timed on their own)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny run to check the script works")
    return parser


def main() -> None:
    parser = _parser()
    args = parser.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    space = str(TINY) if args.quick else args.space
    trials, rss_trials = (6, 30) if args.quick else (args.trials, args.rss_trials)
    ticks_at_start = machine_ticks()
    print(f"load average at start {os.getloadavg()[0]:.2f}")
    workers = tuple(int(n) for n in args.workers.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["ARCHLAB_HOME"] = tmp  # worker logs go with the studies
        profile = args.profile
        if profile is None:
            start = time.perf_counter()
            profile = folder / "profile.json"
            quick_options: dict[str, Any] = (
                {"n_models": 4, "calibration_slices": 2} if args.quick else {}
            )
            profile_device(space, **quick_options).save(profile)
            print(f"profile made in {time.perf_counter() - start:.0f} s (not counted below)")
        modes = tuple(m.strip() for m in args.modes.split(","))
        unknown = set(modes) - set(MODES)
        if unknown:
            parser.error(f"--modes: {', '.join(sorted(unknown))} not among {', '.join(MODES)}")
        runs = throughput(space, folder, trials, profile, workers, modes, args.storage, args.front)
        rss = rss_growth(space, folder, rss_trials, profile) if args.rss else {}
    print(
        f"\nCandidates evaluated per hour ({Path(space).stem}, objectives naswot + latency, "
        "1 thread); predicted modes also with their front re-measurement counted"
    )
    for label, run in runs.items():
        whole = f"  ({run.end_to_end_rate:8.0f} with the front)" if run.front_s else ""
        print(f"{label:>22}: {run.loop_rate:8.0f} per hour{whole}")
    for n in workers:
        suffix = f"{n} worker{'s' if n > 1 else ''}"
        for mode in ("predicted", "estimated"):
            if f"{mode}, {suffix}" in runs and f"measured, {suffix}" in runs:
                ratio = runs[f"{mode}, {suffix}"].loop_rate / runs[f"measured, {suffix}"].loop_rate
                print(f"{'ratio, ' + suffix:>22}: {ratio:8.2f}× ({mode} / measured)")
    if rss:
        first, last = rss[10], rss[rss_trials]
        print(
            f"\nRSS of the search process: {first:.0f} MB after 10 trials, {last:.0f} MB after "
            f"{rss_trials} ({100 * (last / first - 1):+.1f}%; goal < +10%)"
        )
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    print(describe_steal(ticks_at_start))


if __name__ == "__main__":
    main()

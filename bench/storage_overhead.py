"""Optuna's bookkeeping cost per trial, by sampler and storage, with a trivial objective.

Each trial does what an archlab trial does to the storage: it suggests every knob of the shipped
``plgvit`` space, sets user attributes and the latency constraint, and returns two objectives
(random numbers instead of measurements). What remains is Optuna's own cost: sampling, writing and
reading trials, and (for archlab's storages) the heartbeat thread each trial starts. Storages:

- ``memory``: ``InMemoryStorage`` (a single process only);
- ``journal``: archlab's journal file (``open_storage("journal://…")``: heartbeats);
- ``sqlite``: archlab's SQLite file (``open_storage("sqlite:///…")``: heartbeats, WAL mode);
- ``journal-plain``, ``sqlite-plain`` (not run by default): the same files as Optuna opens them
  by default (no heartbeat; SQLite with a rollback journal, one fsync per write).

Run: ``.venv/bin/python bench/storage_overhead.py`` (under a minute: each cell stops after
``--trials`` trials or ``--cell-seconds``, whichever comes first). Prints the mean ms/trial and the
number of trials it is over; TPE's cost grows with the number of trials, so compare TPE cells at
equal trial counts.
"""

from __future__ import annotations

import argparse
import logging
import random
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
import torch
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from archlab.measurement.latency import cpu_model
from archlab.space import SearchSpace, load_space
from archlab.study.storage import open_storage

SAMPLERS: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
    "nsga2": lambda: optuna.samplers.NSGAIISampler(population_size=24, seed=0),
    "tpe": lambda: optuna.samplers.TPESampler(multivariate=True, seed=0),
}
STORAGES: dict[str, Callable[[Path], BaseStorage | None]] = {
    "memory": lambda folder: None,
    "journal": lambda folder: open_storage(f"journal://{folder / 'j.log'}"),
    "sqlite": lambda folder: open_storage(f"sqlite:///{folder / 's.db'}"),
    "journal-plain": lambda folder: JournalStorage(JournalFileBackend(str(folder / "jp.log"))),
    "sqlite-plain": lambda folder: RDBStorage(f"sqlite:///{folder / 'sp.db'}"),
}
DEFAULT_STORAGES = "memory,journal,sqlite"


def _objective(space: SearchSpace) -> Callable[[optuna.Trial], list[float]]:
    rng = random.Random(0)

    def objective(trial: optuna.Trial) -> list[float]:
        trial.set_user_attr("worker", "bench")
        space.suggest(trial)
        latency_ms = rng.uniform(1, 100)
        for key in ("params", "macs", "latency_ms", "latency_iqr_ms", "latency_runs"):
            trial.set_user_attr(key, rng.random())
        trial.set_constraint("latency", latency_ms / 1e3 - 0.05)
        return [rng.uniform(0, 100), latency_ms]

    return objective


def ms_per_trial(
    sampler: str, storage: str, trials: int, seconds: float, space: SearchSpace
) -> tuple[float, int]:
    """Mean wall-clock ms per trivial trial, and the number of trials run (≤ ``trials``)."""
    with tempfile.TemporaryDirectory() as folder:
        study = optuna.create_study(
            storage=STORAGES[storage](Path(folder)),
            sampler=SAMPLERS[sampler](),
            directions=["maximize", "minimize"],
        )
        start = time.perf_counter()
        study.optimize(_objective(space), n_trials=trials, timeout=seconds)
        done = len(study.trials)
        return (time.perf_counter() - start) * 1e3 / done, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--cell-seconds", type=float, default=8.0)
    parser.add_argument("--storages", default=DEFAULT_STORAGES, help=f"from {list(STORAGES)}")
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--space", default="plgvit")
    args = parser.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    warnings.simplefilter("ignore")
    space = load_space(args.space)
    storages = args.storages.split(",")
    print(
        f"Optuna {optuna.__version__}, {cpu_model()}, space {args.space} ({len(space.knobs)} "
        "knobs), 2 objectives, 1 constraint: mean ms/trial (trials run)"
    )
    print(f"{'sampler':<8}" + "".join(f"{s:>18}" for s in storages))
    for sampler in args.samplers.split(","):
        cells = [
            ms_per_trial(sampler, storage, args.trials, args.cell_seconds, space)
            for storage in storages
        ]
        print(f"{sampler:<8}" + "".join(f"{f'{ms:.1f} ({n})':>18}" for ms, n in cells), flush=True)


if __name__ == "__main__":
    main()

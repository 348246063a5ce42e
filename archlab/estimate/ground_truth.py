"""The ground truth the accuracy estimates are scored against: archs trained with one recipe.

A ground-truth table holds one row per training run: which arch (random archs of a space, the
space's reference presets reduced the same way, and a plain CNN), which seed, the budget, the
validation accuracy and the seconds it took. Runs are appended to a CSV as they finish, so a
stopped job resumes where it was; several processes may share one file (appends are locked).
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from archlab._version import source_revision
from archlab.estimate.data import ImageData
from archlab.estimate.estimates import reduced_model
from archlab.estimate.rank_stats import Agreement, agreement
from archlab.estimate.reduced import reduce_cfg
from archlab.estimate.reference_cnn import REFERENCE_CNN, plain_cnn
from archlab.estimate.training import TrainSpec, evaluate, load_spec_data, short_train
from archlab.models import find_preset
from archlab.space import SearchSpace

__all__ = [
    "COLUMNS",
    "Run",
    "append_row",
    "arch_json",
    "check_test_split",
    "paired_accuracies",
    "parse_shard",
    "parse_rows",
    "planned_runs",
    "random_arch_truth",
    "read_rows",
    "reference_outcomes",
    "seed_agreement",
    "train_run",
]

#: ``code``: the archlab source the run was trained with (:func:`archlab._version.source_revision`);
#: empty in rows written before it was recorded.
COLUMNS = (
    "space", "kind", "name", "arch", "seed", "budget", "val_acc", "train_loss", "params",
    "seconds", "torch", "code",
)  # fmt: skip


@dataclass(frozen=True)
class Run:
    """One training run: ``kind`` is ``random`` (an arch of the space), ``preset`` or ``cnn``."""

    space: str
    kind: str
    name: str  # "arch<i>" for random archs, else the preset's or the CNN's name
    arch: str  # the arch as canonical JSON (random archs), else "{}"
    seed: int

    def key(self, budget: str) -> tuple[str, str, str, int, str]:
        return (self.space, self.name, self.arch, self.seed, budget)


def arch_json(arch: dict[str, Any]) -> str:
    return json.dumps(arch, sort_keys=True, separators=(",", ":"))


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` → (I, N): one of N processes sharing a job takes every N-th item from the I-th.

    Raises:
        ValueError: not two whole numbers with 0 <= I < N.
    """
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and 0 <= int(index) < int(count)):
        raise ValueError(f"expected I/N with 0 <= I < N, got {text!r}")
    return int(index), int(count)


def planned_runs(
    space: SearchSpace, n_archs: int, seeds: Iterable[int], references: bool = True
) -> list[Run]:
    """Random archs first (the same ones on every call), each with all its seeds in a row, then
    the references, so that a stopped job leaves complete pairs behind."""
    seeds = list(seeds)
    runs = [
        Run(space.name, "random", f"arch{i}", arch_json(arch), seed)
        for i, (arch, _) in enumerate(space.random_valid(n_archs))
        for seed in seeds
    ]
    if references:
        names = [*space.references, REFERENCE_CNN]
        runs += [
            Run(space.name, "cnn" if name == REFERENCE_CNN else "preset", name, "{}", seed)
            for name in names
            for seed in seeds
        ]
    return runs


def _model(space: SearchSpace, run: Run, spec: TrainSpec, num_classes: int) -> nn.Module:
    if run.kind == "random":
        return reduced_model(space, json.loads(run.arch), spec.resolution, num_classes, run.seed)
    torch.manual_seed(run.seed)
    if run.kind == "cnn":
        return plain_cnn(num_classes)
    family, _, preset = find_preset(run.name)
    cfg = reduce_cfg(family.name, preset.cfg, spec.resolution, preset.resolution)
    return family.build(cfg, num_classes=num_classes)


def train_run(
    space: SearchSpace,
    run: Run,
    spec: TrainSpec,
    data: ImageData | None = None,
    device: torch.device | str = "cpu",
    test: bool = False,
) -> dict[str, Any]:
    """Train one run's model with ``spec`` (its seed replaced by the run's) and return its row.

    With ``test`` the row also holds ``test_acc``, the accuracy on the data set's test split: for
    the final report of chosen architectures, never for choosing them.

    Raises:
        ValueError: ``test`` on a data set without a test split.
    """
    # Asked before training, and cached for the process: the code a long job started with, not
    # whatever the checkout holds when one of its runs finishes.
    code = source_revision()
    spec = replace(spec, seed=run.seed)
    data = data or load_spec_data(spec)
    check_test_split(data, test)
    model = _model(space, run, spec, data.num_classes)
    start = time.perf_counter()
    result = short_train(model, data, spec, device=device)
    seconds = time.perf_counter() - start
    tested = {}
    if test:
        assert data.test_images is not None and data.test_labels is not None
        tested["test_acc"] = round(evaluate(model, data.test_images, data.test_labels), 6)
    return {
        "space": run.space,
        "kind": run.kind,
        "name": run.name,
        "arch": run.arch,
        "seed": run.seed,
        "budget": spec.budget_label(),
        "val_acc": round(result.val_acc, 6),
        "train_loss": round(result.train_loss, 6),
        "params": sum(p.numel() for p in model.parameters()),
        "seconds": round(seconds, 2),
        "torch": torch.__version__,
        "code": code,
        **tested,
    }


def check_test_split(data: ImageData, test: bool) -> None:
    """Refuse ``test`` on a data set that has no test split (only Fashion-MNIST ships one)."""
    if test and data.test_images is None:
        raise ValueError(
            f"data set {data.name!r} has no test split; test accuracy needs Fashion-MNIST "
            "(or a folder of its four IDX files)"
        )


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a ground-truth CSV (none if it does not exist yet)."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return parse_rows(f.read())


def parse_rows(text: str) -> list[dict[str, Any]]:
    """The rows of a ground-truth CSV's text, seeds and accuracies as numbers."""
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    for row in rows:
        row["seed"] = int(row["seed"])
        row["val_acc"] = float(row["val_acc"])
    return rows


def done_keys(rows: Iterable[dict[str, Any]]) -> set[tuple[str, str, str, int, str]]:
    return {(r["space"], r["name"], r["arch"], int(r["seed"]), r["budget"]) for r in rows}


def append_row(path: Path, row: dict[str, Any], columns: Sequence[str] = COLUMNS) -> None:
    """Append one row (with a ``columns`` header if the file is new), holding an exclusive lock
    meanwhile, so that several processes can share one results file.

    An existing file keeps its header: the row is written in that header's columns (a column
    the file lacks is left out, one the row lacks stays empty), so files begun before a column
    was added stay readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", newline="") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            f.seek(0)
            header = next(csv.reader([f.readline()]), None)
            fields = header or list(columns)
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            if not header:
                writer.writeheader()
            writer.writerow({c: row.get(c, "") for c in fields})
            f.flush()
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def pending(runs: list[Run], path: Path, budget: str) -> Iterator[Run]:
    """The runs not yet in ``path``, re-read before each one (other processes may append)."""
    for run in runs:
        if run.key(budget) not in done_keys(read_rows(path)):
            yield run


def mean_accuracy(rows: Iterable[dict[str, Any]], budget: str) -> dict[str, float]:
    """Mean validation accuracy over seeds, per arch (its JSON) or reference (its name)."""
    by: dict[str, list[float]] = {}
    for row in rows:
        if row["budget"] == budget:
            by.setdefault(row["arch"] if row["kind"] == "random" else row["name"], []).append(
                row["val_acc"]
            )
    return {k: float(np.mean(v)) for k, v in by.items()}


def random_arch_truth(rows: Iterable[dict[str, Any]], budget: str) -> dict[str, float]:
    """Mean validation accuracy of each random arch (its JSON) trained with every seed that any
    arch has at ``budget``; archs still missing a seed are left out."""
    rows = [r for r in rows if r["kind"] == "random" and r["budget"] == budget]
    seeds = Counter(r["arch"] for r in rows)
    full = max(seeds.values(), default=0)
    return {a: v for a, v in mean_accuracy(rows, budget).items() if seeds[a] == full}


def reference_outcomes(rows: Iterable[dict[str, Any]], budget: str) -> dict[str, dict[str, Any]]:
    """The reference models' runs at ``budget`` (presets and the plain CNN), by name: ``kind``,
    mean ``accuracy``, ``accuracy_std`` over seeds, ``accuracies`` and ``seeds`` in seed order,
    ``budget`` and the ``code`` they were trained with ("" where not recorded)."""
    by: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["kind"] != "random" and row["budget"] == budget:
            by.setdefault(row["name"], []).append(row)
    out = {}
    for name, runs in sorted(by.items()):
        runs = sorted(runs, key=lambda r: int(r["seed"]))
        accs = [float(r["val_acc"]) for r in runs]
        out[name] = {
            "kind": runs[0]["kind"],
            "accuracy": float(np.mean(accs)),
            "accuracy_std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
            "accuracies": accs,
            "seeds": [int(r["seed"]) for r in runs],
            "budget": budget,
            "code": ";".join(sorted({str(r.get("code") or "") for r in runs})),
        }
    return out


def seed_agreement(
    rows: Iterable[dict[str, Any]], budget: str, seeds: tuple[int, int]
) -> Agreement:
    """Rank agreement of two seeds over the random archs trained with both at ``budget``."""
    pairs = paired_accuracies(rows, budget, seeds)
    a = np.array([p[0] for p in pairs.values()]) if pairs else np.array([math.nan])
    b = np.array([p[1] for p in pairs.values()]) if pairs else np.array([math.nan])
    return agreement(a, b)


def paired_accuracies(
    rows: Iterable[dict[str, Any]], budget: str, seeds: tuple[int, int]
) -> dict[str, tuple[float, float]]:
    """Per random arch (its JSON, sorted) trained with both ``seeds`` at ``budget``: the two
    validation accuracies."""
    by_seed: dict[int, dict[str, float]] = {seeds[0]: {}, seeds[1]: {}}
    for row in rows:
        if row["kind"] == "random" and row["budget"] == budget and row["seed"] in by_seed:
            by_seed[row["seed"]][row["arch"]] = row["val_acc"]
    both = sorted(set(by_seed[seeds[0]]) & set(by_seed[seeds[1]]))
    return {k: (by_seed[seeds[0]][k], by_seed[seeds[1]][k]) for k in both}

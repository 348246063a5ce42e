"""Named objectives: what a search optimises, its direction, unit and the metric it reads.

Every trial's metrics (``params``, ``macs``, ``latency_ms``, ``naswot`` …) are stored as user
attributes; an objective just picks one of them and says which way is better.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DEFAULT_OBJECTIVES",
    "MAX_OBJECTIVES",
    "OBJECTIVES",
    "Objective",
    "get_objectives",
]


@dataclass(frozen=True)
class Objective:
    name: str  # metric name shown on axes and stored by study.set_metric_names
    direction: Literal["maximize", "minimize"]
    metric: str  # key of the trial's metrics
    unit: str
    description: str


OBJECTIVES: dict[str, Objective] = {
    "naswot": Objective(
        "naswot",
        "maximize",
        "naswot",
        "log|K|",
        "accuracy estimate: NASWOT score at initialisation (Mellor et al. 2021) on 8 probe images",
    ),
    "synflow": Objective(
        "synflow",
        "maximize",
        "synflow",
        "log",
        "accuracy estimate: log synflow at initialisation (Tanaka et al. 2020), data-free",
    ),
    "grad_norm": Objective(
        "grad_norm",
        "maximize",
        "grad_norm",
        "",
        "accuracy estimate: gradient norm at initialisation (Abdelfattah et al. 2021)",
    ),
    "zico": Objective(
        "zico",
        "maximize",
        "zico",
        "",
        "accuracy estimate: ZiCo, inverse coefficient of variation of gradients (Li et al. 2023)",
    ),
    "swap": Objective(
        "swap",
        "maximize",
        "swap",
        "",
        "accuracy estimate: SWAP, distinct sample-wise activation patterns (Peng et al. 2024)",
    ),
    "meco": Objective(
        "meco",
        "maximize",
        "meco",
        "",
        "accuracy estimate: MeCo, smallest eigenvalue of feature-map correlations "
        "(Jiang et al. 2023)",
    ),
    # Ridge regression on the knobs, fitted on the space's committed ground truth
    # (archlab.estimate.surrogate); only for the shipped spaces that have one.
    "knob_ridge": Objective(
        "knob_ridge",
        "maximize",
        "knob_ridge",
        "acc",
        "accuracy estimate: ridge on the knobs, fitted on the space's ground truth",
    ),
    "short_train": Objective(
        "val_acc",
        "maximize",
        "val_acc",
        "",
        "accuracy estimate: validation accuracy after a short training (digits or --data)",
    ),
    # The ground-truth recipe (docs/accuracy.md) cut to 1/8 and 1/4 of its steps: the short
    # trainings the accuracy evidence scores, computed in a search exactly as there.
    "train_1_8": Objective(
        "train_1_8",
        "maximize",
        "train_1_8",
        "",
        "accuracy estimate: validation accuracy after 1/8 of the reference training (minutes)",
    ),
    "train_1_4": Objective(
        "train_1_4",
        "maximize",
        "train_1_4",
        "",
        "accuracy estimate: validation accuracy after 1/4 of the reference training (minutes)",
    ),
    # Minus the mean training loss over the first 1/64 of the ground-truth recipe (15 steps),
    # without evaluation: Ru et al.'s training speed (NeurIPS 2021), a few seconds per arch.
    "tse_1_64": Objective(
        "tse_1_64",
        "maximize",
        "tse_1_64",
        "−loss",
        "accuracy estimate: training speed, minus the mean loss of the first 1/64 of the reference "
        "training (seconds)",
    ),
    "latency": Objective("latency_ms", "minimize", "latency_ms", "ms", "measured median latency"),
    "macs": Objective(
        "macs", "minimize", "macs", "MACs", "multiply-accumulates (fvcore + handlers)"
    ),
    "params": Objective("params", "minimize", "params", "", "parameter count"),
}

# The accuracy objective is the one archlab/estimate/evidence.json picks pooled over all spaces
# (tests keep them equal); a space with evidence of its own may pick another
# (archlab.search.defaults.default_objectives).
DEFAULT_OBJECTIVES: tuple[str, ...] = ("tse_1_64", "latency")
MAX_OBJECTIVES = 4  # beyond four, fronts grow too large to read and hypervolume gets costly


def get_objectives(names: list[str] | tuple[str, ...]) -> list[Objective]:
    """Objectives by name.

    Raises:
        ValueError: an unknown or repeated name, or not two to four objectives.
    """
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown:
        raise ValueError(f"unknown objective(s) {unknown}; choose from {list(OBJECTIVES)}")
    if len(set(names)) != len(names) or not 2 <= len(names) <= MAX_OBJECTIVES:
        raise ValueError(f"give two to {MAX_OBJECTIVES} distinct objectives, got {list(names)}")
    return [OBJECTIVES[n] for n in names]

"""Named objectives: what a search optimises, its direction, unit and the metric it reads.

Every trial's metrics (``params``, ``macs``, ``latency_ms``, ``naswot`` …) are stored as user
attributes; an objective just picks one of them and says which way is better.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["DEFAULT_OBJECTIVES", "OBJECTIVES", "Objective", "get_objectives"]


@dataclass(frozen=True)
class Objective:
    name: str  # metric name shown on axes and stored by study.set_metric_names
    direction: Literal["maximize", "minimize"]
    metric: str  # key of the trial's metrics
    unit: str
    description: str


OBJECTIVES: dict[str, Objective] = {
    "naswot": Objective(
        "naswot", "maximize", "naswot", "log|K|",
        "accuracy estimate: NASWOT score at initialisation (Mellor et al. 2021) on 8 digits images",
    ),
    "latency": Objective("latency_ms", "minimize", "latency_ms", "ms", "measured median latency"),
    "macs": Objective("macs", "minimize", "macs", "MACs", "multiply-accumulates (fvcore + handlers)"),
    "params": Objective("params", "minimize", "params", "", "parameter count"),
}

DEFAULT_OBJECTIVES: tuple[str, ...] = ("naswot", "latency")


def get_objectives(names: list[str] | tuple[str, ...]) -> list[Objective]:
    """Objectives by name.

    Raises:
        ValueError: an unknown or repeated name, or fewer than two objectives.
    """
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown:
        raise ValueError(f"unknown objective(s) {unknown}; choose from {list(OBJECTIVES)}")
    if len(set(names)) != len(names) or len(names) < 2:
        raise ValueError(f"give at least two distinct objectives, got {list(names)}")
    return [OBJECTIVES[n] for n in names]

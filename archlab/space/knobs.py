"""Knobs of a search space: one searchable choice each, parsed from a space file."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

__all__ = ["Knob", "Scalar", "SpaceError", "extreme", "parse_knob"]

Scalar = int | float | str | bool | None


class SpaceError(ValueError):
    """A space file is malformed or allows an impossible configuration."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source, self.key, self.problem = source, key, problem
        super().__init__(f"{source}: {key}: {problem}")


@dataclass(frozen=True)
class Knob:
    """One searchable choice: a categorical list, or an int/float range."""

    name: str
    values: tuple[Scalar, ...] | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False

    @property
    def is_int_range(self) -> bool:
        return self.values is None and isinstance(self.low, int) and isinstance(self.high, int)

    def _bounds(self) -> tuple[float, float]:
        """(low, high) of a range knob."""
        if self.low is None or self.high is None:
            raise TypeError(f"knob {self.name} has neither choices nor a low..high range")
        return self.low, self.high

    def default(self) -> Scalar:
        return self.values[0] if self.values is not None else self.low

    def suggest(self, trial: optuna.trial.BaseTrial) -> Scalar:
        if self.values is not None:
            return trial.suggest_categorical(self.name, list(self.values))
        low, high = self._bounds()
        if self.is_int_range:
            return trial.suggest_int(
                self.name, int(low), int(high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(self.name, float(low), float(high), step=self.step, log=self.log)

    def sample(self, rng: random.Random) -> Scalar:
        if self.values is not None:
            return rng.choice(self.values)
        low, high = self._bounds()
        if self.is_int_range:
            return rng.randrange(int(low), int(high) + 1, int(self.step or 1))
        return rng.uniform(float(low), float(high))

    def grid(self) -> list[Scalar]:
        """Every value for categorical/int knobs; five points across a float range."""
        if self.values is not None:
            return list(self.values)
        low, high = self._bounds()
        if self.is_int_range:
            return list(range(int(low), int(high) + 1, int(self.step or 1)))
        lo, hi = float(low), float(high)
        return [lo + (hi - lo) * i / 4 for i in range(5)]

    def describe(self) -> str:
        if self.values is not None:
            return "{" + ", ".join(str(v) for v in self.values) + "}"
        step = f" step {self.step}" if self.step else ""
        return f"[{self.low}, {self.high}]{step}{' log' if self.log else ''}"


def extreme(knob: Knob, pick: Callable[..., Any]) -> Scalar:
    """``pick`` (min or max) of a knob's values by size; its default when they are words."""
    if knob.values is None:
        grid = knob.grid() if knob.is_int_range else knob._bounds()  # ints: on the step grid
        return pick(grid)
    sized = [v for v in knob.values if v is None or isinstance(v, (bool, int, float))]
    if len(sized) < len(knob.values):
        return knob.default()
    return pick(sized, key=lambda v: (v is not None, 0 if v is None else float(v)))


def parse_knob(source: str, name: str, spec: Any) -> Knob:
    key = f"choices.{name}"
    if isinstance(spec, list):
        if not spec:
            raise SpaceError(source, key, "an empty list of choices")
        bad = [v for v in spec if not isinstance(v, (int, float, str, bool)) and v is not None]
        if bad:
            raise SpaceError(
                source, key, f"choices must be numbers, strings, booleans or null; got {bad[0]!r}"
            )
        if len(set(map(repr, spec))) != len(spec):
            raise SpaceError(source, key, f"duplicate choices in {spec}")
        return Knob(name, values=tuple(spec))
    if isinstance(spec, dict):
        unknown = set(spec) - {"low", "high", "step", "log"}
        if unknown or not {"low", "high"} <= set(spec):
            raise SpaceError(
                source,
                key,
                f"a range needs 'low' and 'high' (optional 'step', 'log'); got keys {sorted(spec)}",
            )
        low, high = spec["low"], spec["high"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise SpaceError(source, key, f"low and high must be numbers; got {low!r}, {high!r}")
        if low > high:
            raise SpaceError(source, key, f"low {low} is above high {high}")
        return Knob(
            name, low=low, high=high, step=spec.get("step"), log=bool(spec.get("log", False))
        )
    raise SpaceError(
        source,
        key,
        f"expected a list of choices or a {{low, high}} range, got {type(spec).__name__}",
    )

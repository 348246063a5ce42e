"""Knobs of a search space: one searchable choice each, parsed from a space file."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

__all__ = [
    "MAX_CHOICES",
    "MAX_RANGE_STEPS",
    "Knob",
    "Scalar",
    "SpaceError",
    "extreme",
    "parse_knob",
]

Scalar = int | float | str | bool | None

MAX_CHOICES = 256  # values of one knob's list: every trial stores them with its distribution
MAX_WORD = 100  # characters of a word among a knob's choices
MAX_RANGE_STEPS = 100_000  # steps of an int (or stepped) range, which is never listed whole
MAX_CHECKED_STEPS = 17  # points of a longer int range that a space's validation tries


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

    def allows(self, value: Any) -> bool:
        """Whether ``value`` is one this knob can take: one of its choices (a number equal to a
        numeric choice counts, but ``true`` is not ``1``), or a number on its range's grid."""
        if self.values is not None:
            return any(_same_value(value, choice) for choice in self.values)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        low, high = self._bounds()
        if not low <= value <= high:
            return False
        if self.is_int_range:
            return float(value).is_integer() and (int(value) - int(low)) % int(self.step or 1) == 0
        if self.step:
            steps = (value - low) / self.step
            return math.isclose(steps, round(steps), abs_tol=1e-9)
        return True

    def checked_values(self) -> list[Scalar]:
        """The values a space's validation tries: every choice; an int range's every step if
        there are at most :data:`MAX_CHECKED_STEPS`, else both ends and points spread between
        (never the whole range); five points across a float range."""
        if self.values is not None:
            return list(self.values)
        low, high = self._bounds()
        if self.is_int_range:
            step = int(self.step or 1)
            steps = (int(high) - int(low)) // step
            picks = range(steps + 1) if steps < MAX_CHECKED_STEPS else _spread(steps)
            return [int(low) + i * step for i in picks]
        lo, hi = float(low), float(high)
        return [lo + (hi - lo) * i / 4 for i in range(5)]

    def describe(self) -> str:
        if self.values is not None:
            return "{" + ", ".join(str(v) for v in self.values) + "}"
        step = f" step {self.step}" if self.step else ""
        return f"[{self.low}, {self.high}]{step}{' log' if self.log else ''}"


def _same_value(value: Any, choice: Scalar) -> bool:
    if isinstance(value, bool) or isinstance(choice, bool):
        return value is choice
    return bool(value == choice)


def _spread(steps: int) -> list[int]:
    """Step numbers 0..steps: both ends and evenly spread ones between."""
    return sorted({round(steps * i / (MAX_CHECKED_STEPS - 1)) for i in range(MAX_CHECKED_STEPS)})


def extreme(knob: Knob, pick: Callable[..., Any]) -> Scalar:
    """``pick`` (min or max) of a knob's values by size; its default when they are words."""
    if knob.values is None:
        low, high = knob._bounds()
        if knob.is_int_range:  # the ends on the step grid
            step = int(knob.step or 1)
            high = int(low) + (int(high) - int(low)) // step * step
        return pick(low, high)
    sized = [v for v in knob.values if v is None or isinstance(v, (bool, int, float))]
    if len(sized) < len(knob.values):
        return knob.default()
    return pick(sized, key=lambda v: (v is not None, 0 if v is None else float(v)))


def parse_knob(source: str, name: str, spec: Any) -> Knob:
    """A knob from its entry under ``choices``: a list of values or a ``{low, high}`` range.

    Raises:
        SpaceError: malformed, or past a bound (:data:`MAX_CHOICES`, :data:`MAX_RANGE_STEPS`).
    """
    key = f"choices.{name}"
    if isinstance(spec, list):
        return Knob(name, values=_choices(source, key, spec))
    if isinstance(spec, dict):
        return _range(source, key, name, spec)
    raise SpaceError(
        source,
        key,
        f"expected a list of choices or a {{low, high}} range, got {type(spec).__name__}",
    )


def _choices(source: str, key: str, spec: list[Any]) -> tuple[Scalar, ...]:
    if not spec:
        raise SpaceError(source, key, "an empty list of choices")
    if len(spec) > MAX_CHOICES:
        raise SpaceError(
            source, key, f"{len(spec)} choices; at most {MAX_CHOICES} (use a range for more)"
        )
    bad = [v for v in spec if not isinstance(v, (int, float, str, bool)) and v is not None]
    if bad:
        raise SpaceError(
            source, key, f"choices must be numbers, strings, booleans or null; got {bad[0]!r}"
        )
    odd: list[Any] = [v for v in spec if isinstance(v, float) and not math.isfinite(v)]
    odd += [v for v in spec if isinstance(v, str) and len(v) > MAX_WORD]
    if odd:
        raise SpaceError(
            source, key, f"{str(odd[0])[:20]!r}: a choice is a finite number or a short word"
        )
    if len(set(map(repr, spec))) != len(spec):
        raise SpaceError(source, key, f"duplicate choices in {spec}")
    return tuple(spec)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _range(source: str, key: str, name: str, spec: dict[Any, Any]) -> Knob:
    unknown = set(spec) - {"low", "high", "step", "log"}
    if unknown or not {"low", "high"} <= set(spec):
        raise SpaceError(
            source,
            key,
            f"a range needs 'low' and 'high' (optional 'step', 'log'); got keys {sorted(spec)}",
        )
    low, high, step, log = spec["low"], spec["high"], spec.get("step"), spec.get("log", False)
    if not all(_number(v) and math.isfinite(v) for v in (low, high)):
        raise SpaceError(source, key, f"low and high must be finite numbers; got {low!r}, {high!r}")
    if low > high:
        raise SpaceError(source, key, f"low {low} is above high {high}")
    whole = isinstance(low, int) and isinstance(high, int)
    if step is not None and not (
        (isinstance(step, int) if whole else _number(step)) and 0 < step < math.inf
    ):
        kind = "a whole number" if whole else "a number"
        raise SpaceError(source, key, f"step must be {kind} above 0, got {step!r}")
    if not isinstance(log, bool) or (log and (step is not None or low <= 0)):
        raise SpaceError(source, key, "log must be true or false; a log range has low > 0, no step")
    if (whole or step is not None) and (high - low) / (step or 1) > MAX_RANGE_STEPS:
        raise SpaceError(
            source, key, f"{low}..{high} has more than {MAX_RANGE_STEPS:,} steps; narrow it"
        )
    return Knob(name, low=low, high=high, step=step, log=log)

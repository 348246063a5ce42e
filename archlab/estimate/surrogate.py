"""An accuracy model fitted on a space's ground truth: ridge regression on the arch's knobs.

The committed ground truth of a space is a set of archs with their trained accuracy. A linear model
of the knobs fitted on them ranks other archs of the same space; ``bench/accuracy_surrogate.py``
measures how well by cross-validation (no arch is predicted by a model that saw it).

Encoding (:func:`encode`): a numeric knob is one column, its value as it is (an arch that leaves it
unset gets the mean of those that set it, plus a 0/1 column saying so); any other knob (a string,
a boolean, a list) is one 0/1 column per value seen. Columns that every fitted arch shares are
dropped. Before the fit each column is standardised; the ridge penalty is chosen by leave-one-out
among :data:`ALPHAS` (scikit-learn's ``RidgeCV``). A fitted :class:`KnobRidge` predicts with numpy
alone and round-trips through a plain dict, so it can ship as JSON.

``surrogates.json`` (beside this module, written by ``bench/accuracy_surrogate.py --write``) holds
one model per space, fitted on all archs of the space's committed ground truth; a search optimises
it as the objective ``knob_ridge`` (:func:`surrogate_for`). Its evidence is leave-one-out: each
ground-truth arch predicted by a model fitted on the others (:func:`leave_one_out`).

What it cannot do: a value no fitted arch had (a new choice, a width beyond the range) is scored
by extrapolating a straight line, and a search that maximises a linear score is pushed towards the
corners of the space, where the fit has the fewest archs. Its cross-validated ρ describes archs
drawn like the ground truth's, at random.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ALPHAS",
    "FITTED_ESTIMATE",
    "SURROGATES_PATH",
    "KnobColumn",
    "KnobRidge",
    "encode",
    "fit_knob_ridge",
    "leave_one_out",
    "load_surrogates",
    "predict_for_space",
    "surrogate_for",
]

ALPHAS = np.logspace(-2, 4, 25)
FITTED_ESTIMATE = "knob_ridge"  # its name as an objective and an estimate
SURROGATES_PATH = Path(__file__).with_name("surrogates.json")


@dataclass(frozen=True)
class KnobColumn:
    """One model input: a numeric knob, the flag that an arch leaves it unset, or one value of a
    knob (0/1)."""

    knob: str
    kind: str  # "number", "unset" or "level"
    level: str = ""  # the value as JSON, for kind "level"
    fill: float = 0.0  # for kind "number": the value of an arch that leaves the knob unset

    def value(self, arch: Mapping[str, Any]) -> float:
        v = arch.get(self.knob)
        if self.kind == "number":
            return self.fill if v is None else float(v)
        if self.kind == "unset":
            return float(v is None)
        return float(json.dumps(v, sort_keys=True) == self.level)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _columns(archs: Sequence[Mapping[str, Any]]) -> list[KnobColumn]:
    columns = []
    for knob in sorted({k for a in archs for k in a}):
        values = [a.get(knob) for a in archs]
        present = [v for v in values if v is not None]
        if present and all(_is_number(v) for v in present):
            columns.append(KnobColumn(knob, "number", fill=float(np.mean(present))))
            if len(present) < len(values):
                columns.append(KnobColumn(knob, "unset"))
        else:
            for level in sorted({json.dumps(v, sort_keys=True) for v in values}):
                columns.append(KnobColumn(knob, "level", level=level))
    return columns


def encode(
    archs: Sequence[Mapping[str, Any]], columns: Sequence[KnobColumn] | None = None
) -> tuple[np.ndarray, list[KnobColumn]]:
    """The archs as a matrix (one row each). Without ``columns``, they are made from the archs
    and those every arch shares are dropped; with them, the archs are encoded alike."""
    if columns is None:
        found = _columns(archs)
        matrix = np.array([[c.value(a) for c in found] for a in archs], dtype=float)
        varies = matrix.std(axis=0) > 0 if len(archs) else np.zeros(len(found), bool)
        return matrix[:, varies], [c for c, keep in zip(found, varies) if keep]
    matrix = np.array([[c.value(a) for c in columns] for a in archs], dtype=float)
    return matrix.reshape(len(archs), len(columns)), list(columns)


@dataclass(frozen=True)
class KnobRidge:
    """A fitted model: accuracy ≈ intercept + Σ coef · (column − mean) / scale."""

    columns: tuple[KnobColumn, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    alpha: float
    archs: int  # how many archs it was fitted on
    knobs: tuple[str, ...] = ()  # every knob of the fitted archs, constant ones too

    def predict(self, archs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Predicted accuracy of each arch (its knob values by name)."""
        x, _ = encode(archs, self.columns)
        z = (x - np.array(self.mean)) / np.array(self.scale)
        return np.asarray(self.intercept + z @ np.array(self.coef), dtype=float)

    def weights(self) -> list[tuple[str, float]]:
        """Each column's name and its coefficient (accuracy per standard deviation), largest
        first."""
        named = [
            (c.knob if c.kind == "number" else f"{c.knob} unset" if c.kind == "unset"
             else f"{c.knob}={json.loads(c.level)}", w)
            for c, w in zip(self.columns, self.coef)
        ]  # fmt: skip
        return sorted(named, key=lambda nw: -abs(nw[1]))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KnobRidge:
        return cls(
            columns=tuple(KnobColumn(**c) for c in d["columns"]),
            mean=tuple(d["mean"]),
            scale=tuple(d["scale"]),
            coef=tuple(d["coef"]),
            intercept=float(d["intercept"]),
            alpha=float(d["alpha"]),
            archs=int(d["archs"]),
            knobs=tuple(d.get("knobs", ())),
        )


def fit_knob_ridge(
    archs: Sequence[Mapping[str, Any]],
    accuracy: Sequence[float],
    columns: Sequence[KnobColumn] | None = None,
) -> KnobRidge:
    """Fit on ``archs`` and their accuracy (columns made from these archs unless given).

    Raises:
        ValueError: fewer than 3 archs, or a count of archs and accuracies that differ.
    """
    if len(archs) != len(accuracy):
        raise ValueError(f"{len(archs)} archs but {len(accuracy)} accuracies")
    if len(archs) < 3:
        raise ValueError(f"a fit needs 3 or more archs, got {len(archs)}")
    from sklearn.linear_model import RidgeCV  # only fitting needs it; a search only predicts

    x, cols = encode(archs, columns)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = RidgeCV(alphas=ALPHAS).fit((x - mean) / scale, np.asarray(accuracy, dtype=float))
    return KnobRidge(
        columns=tuple(cols),
        mean=tuple(float(v) for v in mean),
        scale=tuple(float(v) for v in scale),
        coef=tuple(float(v) for v in model.coef_),
        intercept=float(model.intercept_),
        alpha=float(model.alpha_),
        archs=len(archs),
        knobs=tuple(sorted({k for a in archs for k in a})),
    )


def leave_one_out(archs: Sequence[Mapping[str, Any]], accuracy: Sequence[float]) -> np.ndarray:
    """Each arch's accuracy as predicted by a model fitted on all the other archs."""
    out = np.empty(len(archs))
    for i in range(len(archs)):
        rest = [j for j in range(len(archs)) if j != i]
        model = fit_knob_ridge([archs[j] for j in rest], [accuracy[j] for j in rest])
        out[i] = model.predict([archs[i]])[0]
    return out


def load_surrogates(path: Path | None = None) -> dict[str, KnobRidge]:
    """The shipped models by space name (none if the file is absent); read once per version of
    the file, since a search asks for every trial."""
    path = path or SURROGATES_PATH
    if not path.exists():
        return {}
    return dict(_read_surrogates(path, path.stat().st_mtime_ns))


@functools.lru_cache(maxsize=4)
def _read_surrogates(path: Path, mtime_ns: int) -> tuple[tuple[str, KnobRidge], ...]:
    spaces = json.loads(path.read_text())["spaces"]
    return tuple((name, KnobRidge.from_dict(entry["model"])) for name, entry in spaces.items())


def surrogate_for(space: str, knobs: Iterable[str], path: Path | None = None) -> KnobRidge:
    """The model fitted on ``space``'s ground truth, checked against the space's knobs.

    Raises:
        ValueError: no model for that space, or the space's knobs are not those it was fitted on
            (a user's own space that took a shipped space's name).
    """
    models = load_surrogates(path)
    if space not in models:
        have = ", ".join(sorted(models)) or "none"
        raise ValueError(
            f"{FITTED_ESTIMATE}: no model fitted on a ground truth of space {space!r} "
            f"(fitted for: {have})"
        )
    model = models[space]
    missing, extra = set(model.knobs) - set(knobs), set(knobs) - set(model.knobs)
    if missing or extra:
        raise ValueError(
            f"{FITTED_ESTIMATE} was fitted on the shipped space {space!r}, whose knobs differ from "
            f"this one's (not here: {sorted(missing)}; new here: {sorted(extra)})"
        )
    return model


def predict_for_space(
    space: str, knobs: Mapping[str, Any], defaults: Mapping[str, Any], arch: Mapping[str, Any]
) -> float:
    """The fitted model's prediction for ``arch`` of a space (:func:`surrogate_for` checks the
    knobs); knobs the arch leaves out take the space's ``defaults``."""
    return float(surrogate_for(space, knobs).predict([{**defaults, **arch}])[0])

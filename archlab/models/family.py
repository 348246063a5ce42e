"""What every model family module provides, and config ↔ dict conversion.

A family module (``plgvit.py``, ``sbcformer.py`` ...) defines a frozen config dataclass, a model
class ``Model(cfg, num_classes=1000, in_chans=3)`` and a ``PRESETS`` table of :class:`Preset`. The
registry in ``archlab.models`` wraps each module in a :class:`Family`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pydantic
from torch import nn

__all__ = ["Family", "Preset", "cfg_from_dict", "cfg_to_dict", "scaled_size"]


@dataclass(frozen=True)
class Preset:
    """A named configuration, with the published figures it is checked against.

    Attributes:
        cfg: the family's config dataclass instance.
        published: name of the published variant it reproduces, as the paper or the authors'
            release names it (sources: ``docs/families.md`` section 6), or None.
        reconstructed: True when the published layer table is unknown and ``cfg`` is our own
            reconstruction at the published size; shown wherever the preset is shown.
        resolution: input size the published figures refer to.
        params_m: published parameter count in millions, or None.
        macs_g: published MACs ("FLOPs"/"MAdds" in most papers) in billions, or None.
        macs_reproducible: False when no counter reproduces ``macs_g`` from the architecture.
        note: why a figure differs, where the config comes from; cited.
    """

    cfg: Any
    published: str | None = None
    reconstructed: bool = False
    resolution: int = 224
    params_m: float | None = None
    macs_g: float | None = None
    macs_reproducible: bool = True
    top1: float | None = None
    # relative tolerance of our parameter count against params_m: wider where the paper rounds
    # (PLG-ViT's abstract gives whole millions) or the config is a reconstruction
    params_tolerance: float = 0.02
    note: str = ""


@dataclass(frozen=True)
class Family:
    """One model family: its id, config class, model class and presets."""

    name: str
    title: str
    cfg_cls: type
    model_cls: type[nn.Module]
    presets: dict[str, Preset] = field(default_factory=dict)
    paper: str = ""
    # How a config searched at one input size is adapted to a smaller one for the accuracy
    # estimates: (cfg, resolution, scale) → cfg, for knobs tied to the size of a stage's map
    # (windows, pooled sizes). None: the config is used unchanged.
    reduce: Callable[[Any, int, float], Any] | None = None

    def build(self, cfg: Any, num_classes: int = 1000) -> nn.Module:
        return self.model_cls(cfg, num_classes=num_classes)


def scaled_size(value: int, scale: float, limit: int) -> int:
    """A size knob scaled with the input, at least 1 and at most ``limit`` (the map's side)."""
    return max(1, min(limit, round(value * scale)))


@functools.cache
def _adapter(cfg_cls: type) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(cfg_cls)


def cfg_from_dict(cfg_cls: type, data: dict[str, Any]) -> Any:
    """Build a (nested) config dataclass from plain data, validating types and ``__post_init__``.

    Raises:
        ValueError: the data does not fit the config; the message names each offending field.
    """
    data = {k: v for k, v in data.items() if k != "family"}
    known = {f.name for f in dataclasses.fields(cfg_cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(
            f"unknown key(s) {unknown} for {cfg_cls.__name__}; known keys: {sorted(known)}"
        )
    try:
        return _adapter(cfg_cls).validate_python(data, strict=False)
    except pydantic.ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<config>'}: {e['msg']}" for e in err.errors()
        )
        raise ValueError(f"invalid {cfg_cls.__name__}: {problems}") from None


def cfg_to_dict(cfg: Any, family: str) -> dict[str, Any]:
    """Plain, YAML/JSON-ready dict of a config with its ``family`` key first."""
    return {"family": family, **_plain(dataclasses.asdict(cfg))}


def _plain(value: Any) -> Any:
    """Tuples → lists, recursively, so configs round-trip through YAML and JSON unchanged."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value

"""Reduced-resolution copies of an architecture, on which accuracy estimates are computed.

Zero-cost proxies and short training are run on the arch at a small input size (64 px by default),
a reduced-resolution proxy setting in the sense of Zhou et al., "EcoNAS: Finding Proxies for
Economical Neural Architecture Search", CVPR 2020. Widths and depths stay as sampled; only knobs
tied to the size of a stage's map are scaled with the input, so that they cover the same share of
the map as at the space's resolution:

* ``plgvit``: every stage's ``window`` and ``global_window`` (e.g. 14 → 4 and 7 → 2 from 224 to 64
  px), clipped to the stage's map;
* ``sbcformer``: ``pooled_size`` (P) with ``design_resolution`` set to the new input size; P is then
  moved to the nearest value that divides every stage map.
* ``hybrid``: every stage's ``plg_window`` and ``plg_global_window`` as for ``plgvit``, and its
  ``hourglass_size`` as for ``sbcformer`` (nearest divisor of that stage's map), with
  ``design_resolution`` set to the new input size (ParC meta kernels follow the maps).

Families with no such knob (``mobileformer``) are used unchanged. A family not listed here is used
unchanged too, and rejected with the family's own message if it cannot run at the reduced size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

__all__ = ["reduce_cfg"]


def _scaled(value: int, scale: float, limit: int) -> int:
    return max(1, min(limit, round(value * scale)))


def _reduce_plgvit(cfg: Any, resolution: int, scale: float) -> Any:
    stages = []
    for i, stage in enumerate(cfg.stages):
        size = resolution // 2 ** (i + 2)  # the stage's map side (output stride 4·2^i)
        stages.append(
            dataclasses.replace(
                stage,
                window=_scaled(stage.window, scale, size),
                global_window=_scaled(stage.global_window, scale, size),
            )
        )
    return dataclasses.replace(cfg, stages=tuple(stages))


def _reduce_sbcformer(cfg: Any, resolution: int, scale: float) -> Any:
    sizes = cfg.stage_sizes(resolution)
    wanted = max(1, round(cfg.pooled_size * scale))
    valid = [p for p in range(1, sizes[0] + 1) if all(s % min(p, s) == 0 for s in sizes)]
    pooled = min(valid, key=lambda p: (abs(p - wanted), p))
    return dataclasses.replace(cfg, design_resolution=resolution, pooled_size=pooled)


def _reduce_hybrid(cfg: Any, resolution: int, scale: float) -> Any:
    stages = []
    for stage, size in zip(cfg.stages, cfg.stage_sizes(resolution)):
        wanted = max(1, round(stage.hourglass_size * scale))
        divisors = [p for p in range(1, size + 1) if size % p == 0]
        stages.append(
            dataclasses.replace(
                stage,
                plg_window=_scaled(stage.plg_window, scale, size),
                plg_global_window=_scaled(stage.plg_global_window, scale, size),
                hourglass_size=min(divisors, key=lambda p: (abs(p - wanted), p)),
            )
        )
    return dataclasses.replace(cfg, stages=tuple(stages), design_resolution=resolution)


_REDUCERS: dict[str, Callable[[Any, int, float], Any]] = {
    "plgvit": _reduce_plgvit,
    "sbcformer": _reduce_sbcformer,
    "hybrid": _reduce_hybrid,
}


def reduce_cfg(family: str, cfg: Any, resolution: int, from_resolution: int) -> Any:
    """The config ``cfg`` (searched at ``from_resolution``) adapted to run at ``resolution``.

    Raises:
        ValueError: the (adapted) architecture cannot run at ``resolution``; the family says why.
    """
    if resolution != from_resolution and family in _REDUCERS:
        cfg = _REDUCERS[family](cfg, resolution, resolution / from_resolution)
    check = getattr(cfg, "check_resolution", None)
    if check is not None:
        try:
            check(resolution)
        except ValueError as err:
            raise ValueError(f"the {family} arch cannot run at {resolution} px: {err}") from None
    return cfg

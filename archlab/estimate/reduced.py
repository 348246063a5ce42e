"""Reduced-resolution copies of an architecture, on which accuracy estimates are computed.

Zero-cost proxies and short training are run on the arch at a small input size (64 px by default),
a reduced-resolution proxy setting in the sense of Zhou et al., "EcoNAS: Finding Proxies for
Economical Neural Architecture Search", CVPR 2020. Widths and depths stay as sampled; only knobs
tied to the size of a stage's map are scaled with the input, so that they cover the same share of
the map as at the space's resolution. Each family says how, in its own file (``Family.reduce``,
``reduce_to`` in the model module):

* ``plgvit``: every stage's ``window`` and ``global_window`` (e.g. 14 → 4 and 7 → 2 from 224 to 64
  px), clipped to the stage's map;
* ``sbcformer``: ``pooled_size`` (P) with ``design_resolution`` set to the new input size; P is then
  moved to the nearest value that divides every stage map.
* ``hybrid``: every stage's ``plg_window`` and ``plg_global_window`` as for ``plgvit``, and its
  ``hourglass_size`` as for ``sbcformer`` (nearest divisor of that stage's map), with
  ``design_resolution`` set to the new input size (ParC meta kernels follow the maps).

Families with no such knob (``mobileformer``, ``parc``: its meta kernels follow the maps) are used
unchanged, and rejected with the family's own message if they cannot run at the reduced size.
"""

from __future__ import annotations

from typing import Any

from archlab.models import get_family

__all__ = ["reduce_cfg"]


def reduce_cfg(family: str, cfg: Any, resolution: int, from_resolution: int) -> Any:
    """The config ``cfg`` (searched at ``from_resolution``) adapted to run at ``resolution``.

    Raises:
        ValueError: the (adapted) architecture cannot run at ``resolution``; the family says why.
    """
    reduce = get_family(family).reduce
    if resolution != from_resolution and reduce is not None:
        cfg = reduce(cfg, resolution, resolution / from_resolution)
    check = getattr(cfg, "check_resolution", None)
    if check is not None:
        try:
            check(resolution)
        except ValueError as err:
            raise ValueError(f"the {family} arch cannot run at {resolution} px: {err}") from None
    return cfg

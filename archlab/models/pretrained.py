"""Load the authors' released checkpoints into our presets, key by key.

A checkpoint saved by an official code base names its tensors after that code's modules. For each
family with released code, :mod:`archlab.models.official` has a renaming function that takes one of
our state-dict keys to the official name (plus any other name the official model registers the same
tensor under), written from reading the public code.

Families without a mapping (LW PLG-ViT: no code was released; our ``hybrid``) raise
``ValueError``. :func:`to_official` is the inverse, used by the tests to check the round trip
without the official code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from archlab.models.official import OFFICIAL, OfficialNames, Rename

__all__ = ["OFFICIAL_CODE", "load_pretrained", "official_names", "to_official"]

#: Family id → the released code its checkpoints come from.
OFFICIAL_CODE = {names.family: names.code for names in OFFICIAL.values()}


def _mapping(model: nn.Module) -> tuple[OfficialNames, Rename]:
    cfg = getattr(model, "cfg", None)
    if type(cfg) not in OFFICIAL:
        known = ", ".join(f"{k} ({v})" for k, v in OFFICIAL_CODE.items())
        raise ValueError(
            f"no official checkpoint mapping for {type(model).__name__}; mapped families: "
            f"{known}. LW PLG-ViT has no released code and `hybrid` is archlab's own."
        )
    names = OFFICIAL[type(cfg)]
    return names, names.rename_for(cfg)


def official_names(model: nn.Module) -> dict[str, list[str]]:
    """Each of ``model``'s state-dict keys → its official name(s), the canonical one first."""
    _, rename = _mapping(model)
    return {key: rename(key) for key in model.state_dict()}


def to_official(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s weights under the official names (every alias filled), as the authors' code
    would save them (without its rebuilt index buffers)."""
    state = model.state_dict()
    return {name: state[key] for key, names in official_names(model).items() for name in names}


def _read(path: str | Path | Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """A state dict from a file or mapping; unwraps ``{"model": ...}``-style checkpoints and a
    ``module.`` prefix left by DataParallel."""
    data: Any = path if isinstance(path, Mapping) else torch.load(path, map_location="cpu")
    for wrapper in ("model", "state_dict", "model_state"):
        if isinstance(data, Mapping) and isinstance(data.get(wrapper), Mapping):
            data = data[wrapper]
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: not a state dict (got {type(data).__name__})")
    return {re.sub(r"^module\.", "", k): v for k, v in data.items() if isinstance(v, torch.Tensor)}


def _fits(src: torch.Tensor, dst: torch.Tensor) -> bool:
    """Same shape, or the same up to singleton dimensions (a 1×1 conv stored for a linear)."""
    squeeze = [n for n in src.shape if n != 1] == [n for n in dst.shape if n != 1]
    return src.shape == dst.shape or (squeeze and src.numel() == dst.numel())


def _listing(title: str, items: list[str]) -> str:
    shown = ", ".join(items[:8]) + (f", … ({len(items) - 8} more)" if len(items) > 8 else "")
    return f"{len(items)} {title}: {shown}"


def load_pretrained(
    model: nn.Module,
    path: str | Path | Mapping[str, Any],
    source: Literal["official", "archlab"] = "official",
) -> nn.Module:
    """Load a checkpoint into ``model`` (in place) and return it.

    Args:
        model: a model built by archlab, usually a preset of the released variant.
        path: a ``.pth``/``.pt`` file or a state dict.
        source: "official" (saved by the authors' released code; keys renamed, see the module
            docstring) or "archlab" (our own state dict, e.g. an export's ``model.pt``).

    Raises:
        ValueError: the family has no official mapping, or the checkpoint does not fit: the
            message lists the missing, unexpected and wrong-shape keys (official names).

    Example:
        >>> import archlab
        >>> from archlab.models.pretrained import to_official
        >>> model = archlab.build_model({"preset": "sbcformer_xs"})
        >>> _ = archlab.load_pretrained(model, to_official(model))
    """
    given = _read(path)
    if source == "archlab":
        model.load_state_dict(given)
        return model
    if source != "official":
        raise ValueError(f"source must be 'official' or 'archlab', got {source!r}")
    names, ours = official_names(model), model.state_dict()
    missing, wrong, loaded = [], [], {}
    for key, (name, *_aliases) in names.items():
        if name not in given:
            missing.append(name)
        elif not _fits(given[name], ours[key]):
            wrong.append(f"{name} {tuple(given[name].shape)} ≠ {tuple(ours[key].shape)}")
        else:
            loaded[key] = given[name].reshape(ours[key].shape)
    official, _ = _mapping(model)
    known = {n for ns in names.values() for n in ns}
    unexpected = sorted(k for k in given if k not in known and not official.extras.search(k))
    lists = (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong))
    problems = [_listing(title, items) for title, items in lists if items]
    if problems:
        raise ValueError(
            f"the checkpoint does not fit {type(model).__name__} (official names, as in "
            f"{official.code}): " + "; ".join(problems)
        )
    model.load_state_dict(loaded)
    return model

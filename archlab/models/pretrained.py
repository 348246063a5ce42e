"""Load the authors' released checkpoints into our presets, key by key.

A checkpoint saved by an official code base names its tensors after that code's modules. For each
family with released code, a renaming function takes one of our state-dict keys to the official
name (plus any other name the official model registers the same tensor under), written from
reading the public code:

* ``sbcformer``: ``xyongLu/SBCFormer`` (``models/sbcformer.py``). Its model registers the stem
  twice (``patch_embed`` and ``merging_blocks.0``) and the last stage block twice
  (``sbcformer_blocks.2`` and ``sbcformer_blk``), so both copies are in its state dicts; it also
  saves its bias-index buffers (``attention_bias_idxs``), which ours rebuild from the grid size.

Families without a mapping (LW PLG-ViT: no code was released; our ``hybrid``) raise
``ValueError``. :func:`to_official` is the inverse, used by the tests to check the round trip
without the official code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from archlab.models import sbcformer

__all__ = ["OFFICIAL_CODE", "load_pretrained", "official_names", "to_official"]

#: Family id → the released code its checkpoints come from.
OFFICIAL_CODE = {
    "sbcformer": "github.com/xyongLu/SBCFormer",
}

_Rename = Callable[[str], list[str]]


def _sub(key: str, rules: list[tuple[str, str]]) -> str:
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    return key


# Ours → official, applied in order to the key's tail inside one SBCFormer block.
_SBC_CONV_BN = [(r"\.0\.weight$", ".conv.weight"), (r"\.1\.(\w+)$", r".bn.\1")]
_SBC_BLOCK = [
    (r"^invres\.(\d+)\.", r"invres_blocks.InvRes_\1."),
    (r"^mixer\.(\d+)\.", r"mixer.Mixer_\1."),
    (r"\.pw1\.", ".pwconv1_bn."),
    (r"\.dw\.", ".dwconv_bn."),
    (r"\.pw2\.", ".pwconv2_bn."),
    (r"^mattn\.(\d+)\.", r"trans_blocks.MAttn_\1."),
    (r"\.attn\.qkv\.", ".attn.pwconv."),
    (r"\.attn\.v_local\.0\.weight$", ".attn.dwconv.conv.weight"),
    (r"\.attn\.v_local\.1\.", ".attn.dwconv.bn."),
    (r"\.attn\.bias\.table$", ".attn.attention_biases"),
    (r"\.attn\.proj\.", ".attn.proj_out."),
    (r"\.mlp\.0\.", ".mlp.fc1."),
    (r"\.mlp\.2\.", ".mlp.fc2."),
    (r"^up\.0\.", "convTrans."),
    (r"^up\.1\.", "norm."),
    (r"^gate\.0\.weight$", "proj.conv.weight"),
    (r"^gate\.1\.", "proj.bn."),
    (r"^fuse\.0\.weight$", "proj_fuse.conv.weight"),
    (r"^fuse\.1\.", "proj_fuse.bn."),
]


def _sbcformer(cfg: sbcformer.SBCFormerCfg) -> _Rename:
    last = len(cfg.stages) - 1

    def rename(key: str) -> list[str]:
        if m := re.match(r"stem\.(\d)\.(.*)", key):  # Conv2d_BN at 0, 2, 4 (ReLUs between)
            tail = _sub("." + m[2], _SBC_CONV_BN)
            index = 2 * int(m[1])
            return [f"patch_embed.stem.{index}{tail}", f"merging_blocks.0.stem.{index}{tail}"]
        if m := re.match(r"stages\.(\d)\.0\.([01])\.(\w+)$", key):  # the merging conv of stage i>0
            if int(m[1]) > 0:
                part = "conv" if m[2] == "0" else "norm"
                return [f"merging_blocks.{m[1]}.{part}.{m[3]}"]
        m = re.match(r"stages\.(\d)\.(\d)\.(.*)", key)
        if m is None:
            return [key]  # norm.*, head.*
        stage, tail = int(m[1]), _sub(m[3], _SBC_BLOCK)
        if re.search(r"(pwconv\d_bn|dwconv_bn)\.", tail):
            tail = re.sub(r"(_bn)\.0\.weight$", r"\1.conv.weight", tail)
            tail = re.sub(r"(_bn)\.1\.", r"\1.bn.", tail)
        names = [f"sbcformer_blocks.{stage}.{tail}"]
        return names + ([f"sbcformer_blk.{tail}"] if stage == last else [])

    return rename


#: Config class → (family id, the renaming for a model of that config).
_MAPPINGS: dict[type, tuple[str, Callable[[Any], _Rename]]] = {
    sbcformer.SBCFormerCfg: ("sbcformer", _sbcformer),
}

#: Official buffers with no counterpart among our weights (ours rebuild them).
_EXTRAS = re.compile(r"\.attention_bias_idxs$")


def _mapping(model: nn.Module) -> tuple[str, _Rename]:
    cfg = getattr(model, "cfg", None)
    if type(cfg) not in _MAPPINGS:
        known = ", ".join(f"{k} ({v})" for k, v in OFFICIAL_CODE.items())
        raise ValueError(
            f"no official checkpoint mapping for {type(model).__name__}; mapped families: "
            f"{known}. LW PLG-ViT has no released code and `hybrid` is archlab's own."
        )
    family, make = _MAPPINGS[type(cfg)]
    return family, make(cfg)


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
    for key, (official, *_aliases) in names.items():
        if official not in given:
            missing.append(official)
        elif not _fits(given[official], ours[key]):
            wrong.append(f"{official} {tuple(given[official].shape)} ≠ {tuple(ours[key].shape)}")
        else:
            loaded[key] = given[official].reshape(ours[key].shape)
    known = {n for ns in names.values() for n in ns}
    unexpected = sorted(k for k in given if k not in known and not _EXTRAS.search(k))
    lists = (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong))
    problems = [_listing(title, items) for title, items in lists if items]
    if problems:
        family, _ = _mapping(model)
        raise ValueError(
            f"the checkpoint does not fit {type(model).__name__} (official names, as in "
            f"{OFFICIAL_CODE[family]}): " + "; ".join(problems)
        )
    model.load_state_dict(loaded)
    return model

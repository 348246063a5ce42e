"""Mobile-Former: our state-dict keys → the names of ``AAboys/MobileFormer``.

Written from reading the public code (``mobile_former.py``, ``dna_blocks.py``). Its model keeps
the blocks in one flat ``features`` sequence: entry 0 is the conv-only block (a ``conv``
sequence: depthwise conv, BN, ReLU6, a slot for the shuffle, point-wise conv, BN), and every
later entry is one Mobile-Former block, numbered on across our stages. A stride-2 block
(``DnaBlock3``) names its four convs ``conv1``-``conv4`` (dw, pw, dw, pw) and its two dynamic
ReLUs ``hyper1``/``hyper3``; a stride-1 block (``DnaBlock``) has ``conv1``-``conv3`` (pw, dw, pw)
and ``hyper1``/``hyper2``. Each block's bridges and Former are ``local_global`` (query ``q``, gate
``alpha.0``, ``proj``, ``layer_norm``), ``global_block`` (query ``q``, output ``channel_mlp``,
``layer_norm``, FFN ``ffn.0``/``ffn.2``, ``ffn_norm``) and ``global_local`` (keys ``k``, values
``proj``). The last bridge is ``local_global`` at the top level and the head is ``classifier``
(its ``conv`` and ``classifier`` sequences put the shuffle and a dropout in front). Convolutions
without parameters (shuffles, empty placeholders) take up indices but store nothing, and the model
saves no buffers besides BatchNorm's.

All seven presets map exactly. Three of our settings have no counterpart in that code, so
:func:`rename_for` refuses them: key/value projections in the Former (``former_kv_proj``), a
Former with other than 4 heads or an FFN expansion other than 2 (both fixed there), and an MF
block with expansion 1 (which the official block turns into a conv-only block). The others
(groups, bridge heads, DyReLU on/off and its reduction, the bridge gate, head widths) are
arguments of its ``MobileFormer`` class.
"""

from __future__ import annotations

import re

from archlab.models.mobileformer import MobileFormerCfg
from archlab.models.official.rename import Rename, substitute

__all__ = ["CODE", "EXTRAS", "rename_for"]

CODE = "github.com/AAboys/MobileFormer"
#: Official buffers with no counterpart among our weights: none (matches no key).
EXTRAS = re.compile(r"(?!)")

# Ours → official inside one block (bridges and Former), applied in order.
_BRIDGES = [
    (r"^mobile_to_former\.gate\.0\.", "local_global.alpha.0."),
    (r"^mobile_to_former\.norm\.", "local_global.layer_norm."),
    (r"^mobile_to_former\.", "local_global."),
    (r"^former\.proj\.", "global_block.channel_mlp."),
    (r"^former\.norm1\.", "global_block.layer_norm."),
    (r"^former\.mlp\.", "global_block.ffn."),
    (r"^former\.norm2\.", "global_block.ffn_norm."),
    (r"^former\.", "global_block."),
    (r"^former_to_mobile\.v\.", "global_local.proj."),
    (r"^former_to_mobile\.", "global_local."),
]
# The Mobile sub-block's parts: stride 1 (pw-dw-pw) and stride 2 (dw-pw-dw-pw).
_MOBILE = {"pw1": "conv1", "act1.hyper": "hyper1.hyper", "dw": "conv2",
           "act2.hyper": "hyper2.hyper", "pw2": "conv3"}  # fmt: skip
_MOBILE_DOWN = {"dw1": "conv1", "act1.hyper": "hyper1.hyper", "pw1": "conv2", "dw2": "conv3",
                "act2.hyper": "hyper3.hyper", "pw2": "conv4"}  # fmt: skip
_CONV_BLOCK = {"dw.0": "conv.0", "dw.1": "conv.1", "pw.0": "conv.4", "pw.1": "conv.5"}
_HEAD = [
    (r"^head\.conv\.0\.", "classifier.conv.1."),
    (r"^head\.conv\.1\.", "classifier.conv.2."),
    (r"^head\.fc\.", "classifier.fc."),
    (r"^head\.classifier\.", "classifier.classifier.1."),
    *_BRIDGES[:3],  # the last Mobile→Former bridge
]


def _check_expressible(cfg: MobileFormerCfg) -> None:
    """Raise ValueError for settings the official model cannot hold."""
    fixed = {"former_kv_proj": False, "former_heads": 4, "former_mlp_ratio": 2.0}
    for name, value in fixed.items():
        if getattr(cfg, name) != value:
            raise ValueError(
                f"{name}={getattr(cfg, name)!r} has no counterpart in {CODE} (fixed there to "
                f"{value!r}), so no official checkpoint fits this config"
            )
    for i, stage in enumerate(cfg.stages):
        if 1 in stage.expand[: stage.depth]:
            raise ValueError(
                f"stages.{i}.expand={stage.expand[: stage.depth]}: {CODE} turns a block with "
                "expansion 1 into a conv-only block, so no official checkpoint fits this config"
            )


def _mobile_part(key: str, down: bool) -> str:
    """``mobile.<part>.<rest>`` of one block → its official name inside ``features.k``."""
    table = _MOBILE_DOWN if down else _MOBILE
    m = re.match(r"(act\d\.hyper|\w+)\.(.*)", key)
    if m is None or m[1] not in table:
        return f"mobile.{key}"  # nothing official: reported as missing by the loader
    return f"{table[m[1]]}.{m[2]}"


def rename_for(cfg: MobileFormerCfg) -> Rename:
    """Our key → ``[official name]`` for a model of ``cfg``.

    Raises:
        ValueError: ``cfg`` uses a setting the official code does not have.
    """
    _check_expressible(cfg)
    first = [1 + sum(s.depth for s in cfg.stages[:i]) for i in range(len(cfg.stages))]

    def rename(key: str) -> list[str]:
        if m := re.match(r"conv_block\.(\w+\.\d)\.(.*)", key):
            return [f"features.0.{_CONV_BLOCK.get(m[1], m[1])}.{m[2]}"]
        if m := re.match(r"stages\.(\d+)\.(\d+)\.(.*)", key):
            stage, j, tail = int(m[1]), int(m[2]), m[3]
            down = j == 0 and cfg.stages[stage].stride == 2
            if tail.startswith("mobile."):
                tail = _mobile_part(tail.removeprefix("mobile."), down)
            else:
                tail = substitute(tail, _BRIDGES)
            return [f"features.{first[stage] + j}.{tail}"]
        return [substitute(key, _HEAD)]  # tokens.*, stem.* keep their names

    return rename

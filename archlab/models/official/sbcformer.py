"""SBCFormer: our state-dict keys → the names of ``xyongLu/SBCFormer`` (``models/sbcformer.py``).

Written from reading the public code. Its model registers the stem twice (``patch_embed`` and
``merging_blocks.0``) and the last stage block twice (``sbcformer_blocks.2`` and ``sbcformer_blk``),
so both copies are in its state dicts; it also saves its bias-index buffers
(``attention_bias_idxs``), which ours rebuild from the grid size.
"""

from __future__ import annotations

import re

from archlab.models.official.rename import Rename, substitute
from archlab.models.sbcformer import SBCFormerCfg

__all__ = ["CODE", "EXTRAS", "rename_for"]

CODE = "github.com/xyongLu/SBCFormer"
#: Official buffers with no counterpart among our weights (ours rebuild them).
EXTRAS = re.compile(r"\.attention_bias_idxs$")

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


def rename_for(cfg: SBCFormerCfg) -> Rename:
    last = len(cfg.stages) - 1

    def rename(key: str) -> list[str]:
        if m := re.match(r"stem\.(\d)\.(.*)", key):  # Conv2d_BN at 0, 2, 4 (ReLUs between)
            tail = substitute("." + m[2], _SBC_CONV_BN)
            index = 2 * int(m[1])
            return [f"patch_embed.stem.{index}{tail}", f"merging_blocks.0.stem.{index}{tail}"]
        if m := re.match(r"stages\.(\d)\.0\.([01])\.(\w+)$", key):  # the merging conv of stage i>0
            if int(m[1]) > 0:
                part = "conv" if m[2] == "0" else "norm"
                return [f"merging_blocks.{m[1]}.{part}.{m[3]}"]
        m = re.match(r"stages\.(\d)\.(\d)\.(.*)", key)
        if m is None:
            return [key]  # norm.*, head.*
        stage, tail = int(m[1]), substitute(m[3], _SBC_BLOCK)
        if re.search(r"(pwconv\d_bn|dwconv_bn)\.", tail):
            tail = re.sub(r"(_bn)\.0\.weight$", r"\1.conv.weight", tail)
            tail = re.sub(r"(_bn)\.1\.", r"\1.bn.", tail)
        names = [f"sbcformer_blocks.{stage}.{tail}"]
        return names + ([f"sbcformer_blk.{tail}"] if stage == last else [])

    return rename

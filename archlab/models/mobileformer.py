"""Mobile-Former: a MobileNet stream and a tiny transformer over global tokens, run in parallel.

Paper: Chen et al., "Mobile-Former: Bridging MobileNet and Transformer", CVPR 2022,
arXiv 2108.05895. Origin: the authors' code (github.com/AAboys/MobileFormer, ``mobile_former.py``
and ``dna_blocks.py``), written anew here; described block by block in ``docs/families.md``
section 3.

Layout: Conv 3×3/2 stem, a conv-only block, then stages of Mobile-Former blocks (a stride-2 stage
starts with an MF-down block), one more Mobile→Former bridge on the last map, and a head that
merges the pooled map with global token 0. The map stream is NCHW, the token stream (B, M, d);
attention runs on (B, heads, N, head_dim) through ``archlab.layers.attend`` so that its matmuls
are counted. The bridges and the Former live in ``archlab.layers.former`` (shared with ``hybrid``).

code≠paper (docs/families.md §3): we follow the code; the paper's reading is a switch where cheap:

* Former: the code projects only the queries (keys = values = the raw tokens), plus an output
  projection; the paper describes standard multi-head attention. ``former_kv_proj=True`` adds the
  key and value projections.
* Mobile→Former: the code gates the attended tokens per token and channel by ``2·HSig(Lin(z))``
  before the projection; the paper has no gate. ``dynamic_gate=False`` removes it.
* Dynamic ReLU: the code takes the coefficients from global token 0 (after the Former of the same
  block); a summary of the paper says from pooled features (the original DY-ReLU). We follow the
  code; ``dyrelu=False`` replaces every dynamic ReLU by ReLU6 (the plain MobileNet reading).
* Head counts: 2 in both bridges, 4 in the Former (a default that the official builder never sets).

Left out of the official code: the ablation paths no preset uses (MLP bridges, per-pixel DyReLU from
the bridge attention, separable/max depthwise convs, projections on the map side, drop-branch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, cast

import torch
from torch import nn

from archlab.layers import ConvNormAct, DropPath, Former, FormerToMobile, MobileToFormer
from archlab.models.family import Preset

__all__ = ["MobileFormerStageCfg", "MobileFormerCfg", "MobileFormer", "PRESETS"]


@dataclass(frozen=True)
class MobileFormerStageCfg:
    out_chs: int  # channels C of every block of the stage
    depth: int  # number of Mobile-Former blocks; a stride-2 stage starts with an MF-down block
    stride: Literal[1, 2] = 2  # 2: the first block is MF-down (dw-pw-dw-pw), else MF (pw-dw-pw)
    # e1 per block, listed up to the largest depth searched; the first ``depth`` are used. For an
    # MF-down block it is the multiplier of its first (strided) depthwise conv.
    expand: tuple[int, ...] = (6,)
    expand2: int = 4  # e2: multiplier of the second depthwise conv of the MF-down block

    def __post_init__(self) -> None:
        if self.out_chs < 1 or self.depth < 1:
            raise ValueError(
                f"out_chs and depth must be ≥ 1, got out_chs={self.out_chs}, depth={self.depth}"
            )
        if self.stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {self.stride}")
        if len(self.expand) < self.depth:
            raise ValueError(
                f"expand lists {len(self.expand)} ratio(s) but depth={self.depth} blocks need "
                "one each"
            )
        if min(self.expand) < 1 or self.expand2 < 1:
            raise ValueError(
                f"expansion ratios must be integers ≥ 1, got expand={self.expand}, "
                f"expand2={self.expand2}"
            )


@dataclass(frozen=True)
class MobileFormerCfg:
    stages: tuple[MobileFormerStageCfg, ...]  # after the conv-only block
    stem_chs: int = 16  # Conv 3×3/2 stem width
    first_chs: int = 16  # output width of the conv-only block
    first_expand: int = 2  # depthwise multiplier of the conv-only block
    first_stride: Literal[1, 2] = 1  # stride of the conv-only block
    num_tokens: int = 6  # M global tokens
    token_dim: int = 192  # d, width of a token
    former_heads: int = 4  # heads of the token self-attention
    former_mlp_ratio: float = 2.0  # Former FFN expansion
    former_kv_proj: bool = False  # paper reading: key/value projections in the Former (code: none)
    bridge_heads: int = 2  # heads of both cross attentions
    dynamic_gate: bool = True  # code: 2·HSig(Lin(z)) gate in Mobile→Former (paper: none)
    dyrelu: bool = True  # dynamic ReLU fed by token 0 in the Mobile blocks; False → ReLU6
    dyrelu_reduction: int = 4  # the DyReLU MLP squeezes d → d / reduction
    pw_groups: int = 1  # groups of every point-wise conv (4 with channel shuffle in 26M)
    head_expand: int = 6  # head PW widens C → head_expand · C
    head_hidden: int = 1920  # F, width of the FC before the classifier
    drop_rate: float = 0.0  # dropout before the classifier (training only)
    drop_path_rate: float = 0.0  # stochastic depth, linear over blocks as in the code

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("stages must hold at least one stage")
        self._check_positive()
        if self.token_dim % self.former_heads:
            raise ValueError(
                f"token_dim={self.token_dim} is not divisible by former_heads={self.former_heads}"
            )
        if self.dyrelu and self.token_dim % self.dyrelu_reduction:
            raise ValueError(
                f"token_dim={self.token_dim} is not divisible by "
                f"dyrelu_reduction={self.dyrelu_reduction}"
            )
        widths = {"first_chs": self.first_chs}
        widths.update({f"stages.{i}.out_chs": s.out_chs for i, s in enumerate(self.stages)})
        for name, chs in widths.items():
            if chs % self.bridge_heads:
                raise ValueError(
                    f"{name}={chs} is not divisible by bridge_heads={self.bridge_heads}"
                )
        widths["stem_chs × first_expand"] = self.stem_chs * self.first_expand
        for name, chs in widths.items():
            if chs % self.pw_groups:
                raise ValueError(f"{name}={chs} is not divisible by pw_groups={self.pw_groups}")

    def _check_positive(self) -> None:
        ints = ("stem_chs", "first_chs", "first_expand", "num_tokens", "token_dim",
                "former_heads", "bridge_heads", "dyrelu_reduction", "pw_groups", "head_expand",
                "head_hidden")  # fmt: skip
        for name in ints:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.first_stride not in (1, 2):
            raise ValueError(f"first_stride must be 1 or 2, got {self.first_stride}")
        if self.former_mlp_ratio <= 0:
            raise ValueError(f"former_mlp_ratio must be positive, got {self.former_mlp_ratio}")
        for name in ("drop_rate", "drop_path_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)}")

    @property
    def total_stride(self) -> int:
        """Output stride of the last feature map (stem × conv-only block × stages)."""
        return 2 * self.first_stride * math.prod(s.stride for s in self.stages)

    def check_resolution(self, resolution: int) -> None:
        """Raise ValueError unless the model can run at ``resolution`` × ``resolution``.

        Nothing depends on the map size (the bridges attend over all H·W positions), so any input at
        least as large as the total stride works.
        """
        if resolution < self.total_stride:
            raise ValueError(
                f"input resolution {resolution} is below the network's total stride "
                f"{self.total_stride}"
            )


def _pw(in_chs: int, out_chs: int, groups: int) -> ConvNormAct:
    """Point-wise conv + BN, linear."""
    return ConvNormAct(in_chs, out_chs, 1, groups=groups, act=None)


def _dw(in_chs: int, out_chs: int, stride: int = 1) -> ConvNormAct:
    """Depthwise 3×3 conv + BN, linear; ``out_chs`` may be a multiple of ``in_chs``."""
    return ConvNormAct(in_chs, out_chs, 3, stride=stride, groups=in_chs, act=None)


class _ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle on NCHW: (g, C/g) → (C/g, g) order of the channels.

    Written as reshape → transpose → reshape rather than ``nn.ChannelShuffle``, which the ONNX
    exporter does not support; the output is the same permutation.
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = x.reshape(b, self.groups, c // self.groups, h, w).transpose(1, 2)  # (B, C/g, g, H, W)
        return x.reshape(b, c, h, w)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


def _shuffle(groups: int) -> nn.Module:
    return _ChannelShuffle(groups) if groups > 1 else nn.Identity()


class _DyReLU(nn.Module):
    """Dynamic ReLU (two per-channel slopes) whose coefficients come from global token 0; NCHW.

    ``θ1, θ2 = HSig(Lin(ReLU(Lin(z0))))``; ``a1 = 2(θ1 − ½) + 1 ∈ [0, 2]``,
    ``a2 = 2(θ2 − ½) ∈ [−1, 1]``; ``y = max(a1·x, a2·x)``, broadcast over H, W.
    """

    def __init__(self, dim: int, token_dim: int, reduction: int) -> None:
        super().__init__()
        self.dim = dim
        self.hyper = nn.Sequential(
            nn.Linear(token_dim, token_dim // reduction),
            nn.ReLU(),
            nn.Linear(token_dim // reduction, 2 * dim),
            nn.Hardsigmoid(),
        )

    def forward(self, x: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
        theta = self.hyper(z0)[:, :, None, None]  # (B, 2C, 1, 1)
        theta1, theta2 = theta.split(self.dim, dim=1)
        return torch.maximum(x * (2 * theta1), x * (2 * theta2 - 1))


class _ReLU6(nn.ReLU6):
    """ReLU6 with the ``(x, z0)`` signature of :class:`_DyReLU` (the ``dyrelu=False`` fallback)."""

    def forward(self, x: torch.Tensor, z0: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(x)


def _act(dim: int, cfg: MobileFormerCfg) -> nn.Module:
    return _DyReLU(dim, cfg.token_dim, cfg.dyrelu_reduction) if cfg.dyrelu else _ReLU6()


class _Bottleneck(nn.Module):
    """MF Mobile sub-block, stride 1: PW → DyReLU → DW 3×3 → DyReLU → PW (linear); NCHW.

    With ``groups > 1`` both point-wise convs are grouped and followed by a channel shuffle.
    """

    def __init__(self, in_chs: int, out_chs: int, expand: int, cfg: MobileFormerCfg) -> None:
        super().__init__()
        hidden = in_chs * expand
        g = cfg.pw_groups
        self.pw1, self.shuffle1, self.act1 = _pw(in_chs, hidden, g), _shuffle(g), _act(hidden, cfg)
        self.dw, self.act2 = _dw(hidden, hidden), _act(hidden, cfg)
        self.pw2, self.shuffle2 = _pw(hidden, out_chs, g), _shuffle(g)

    def forward(self, x: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.shuffle1(self.pw1(x)), z0)
        x = self.act2(self.dw(x), z0)
        return self.shuffle2(self.pw2(x))


class _DownBottleneck(nn.Module):
    """MF-down Mobile sub-block: ``u = PW(DyReLU(DW/2 ×e1 x))``; ``u + PW(DyReLU(DW ×e2 u))``.

    The depthwise convs multiply the channels (C_in → e1·C_in, C_out → e2·C_out); with
    ``groups > 1`` each is followed by a channel shuffle that interleaves the copies, as in the
    code. NCHW.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        expand: int,
        expand2: int,
        cfg: MobileFormerCfg,
        drop_path: float,
    ) -> None:
        super().__init__()
        g = cfg.pw_groups
        hidden1, hidden2 = in_chs * expand, out_chs * expand2
        self.dw1, self.act1 = _dw(in_chs, hidden1, stride=2), _act(hidden1, cfg)
        self.shuffle1 = _shuffle(in_chs if g > 1 else 1)
        self.pw1 = _pw(hidden1, out_chs, g)
        self.dw2, self.act2 = _dw(out_chs, hidden2), _act(hidden2, cfg)
        self.shuffle2 = _shuffle(out_chs if g > 1 else 1)
        self.pw2 = _pw(hidden2, out_chs, g)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
        u = self.pw1(self.act1(self.shuffle1(self.dw1(x)), z0))  # (B, C_out, H/2, W/2)
        return u + self.drop_path(self.pw2(self.act2(self.shuffle2(self.dw2(u)), z0)))


class _ConvOnlyBlock(nn.Module):
    """First block, no tokens: DW 3×3 ×e (+BN, ReLU6) → PW (+BN), plus x when shapes allow; NCHW."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, expand: int, groups: int) -> None:
        super().__init__()
        self.dw = ConvNormAct(in_chs, in_chs * expand, 3, stride=stride, groups=in_chs, act="relu6")
        self.shuffle = _shuffle(in_chs if groups > 1 else 1)
        self.pw = _pw(in_chs * expand, out_chs, groups)
        self.identity = stride == 1 and in_chs == out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pw(self.shuffle(self.dw(x)))
        return x + out if self.identity else out


class _MobileFormerBlock(nn.Module):
    """One block, in the code's order: Mobile→Former, Former, Mobile, skip, Former→Mobile.

    Takes and returns ``(x, z)``: the map (B, C, H, W) and the tokens (B, M, d). The Mobile
    sub-block is MF-down when ``stride == 2``, else MF.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int,
        expand: int,
        expand2: int,
        cfg: MobileFormerCfg,
        drop_path: float,
    ) -> None:
        super().__init__()
        d = cfg.token_dim
        self.mobile_to_former = MobileToFormer(
            in_chs, d, cfg.bridge_heads, cfg.dynamic_gate, drop_path
        )
        self.former = Former(
            d, cfg.former_heads, cfg.former_mlp_ratio, cfg.former_kv_proj, drop_path
        )
        self.mobile: nn.Module
        if stride == 2:
            self.mobile = _DownBottleneck(in_chs, out_chs, expand, expand2, cfg, drop_path)
        else:
            self.mobile = _Bottleneck(in_chs, out_chs, expand, cfg)
        self.drop_path = DropPath(drop_path)
        self.identity = stride == 1 and in_chs == out_chs
        self.former_to_mobile = FormerToMobile(out_chs, d, cfg.bridge_heads)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.former(self.mobile_to_former(x, z))  # (B, M, d)
        out = self.mobile(x, z[:, 0])  # DyReLU reads token 0 after the Former
        if self.identity:
            out = x + self.drop_path(out)
        return out + self.drop_path(self.former_to_mobile(out, z)), z


class _MergeHead(nn.Module):
    """PW(C → e·C)+BN+ReLU6 → GAP → HSwish → concat token 0 → Lin+BN1d+HSwish → classifier."""

    def __init__(self, in_chs: int, cfg: MobileFormerCfg, num_classes: int) -> None:
        super().__init__()
        hidden = in_chs * cfg.head_expand
        self.shuffle = _shuffle(cfg.pw_groups)
        self.conv = ConvNormAct(in_chs, hidden, 1, groups=cfg.pw_groups, act="relu6")
        self.pool_act = nn.Hardswish()
        self.fc = nn.Sequential(
            nn.Linear(hidden + cfg.token_dim, cfg.head_hidden),
            nn.BatchNorm1d(cfg.head_hidden),
            nn.Hardswish(),
        )
        self.dropout = nn.Dropout(cfg.drop_rate)
        self.classifier = nn.Linear(cfg.head_hidden, num_classes)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = self.pool_act(self.conv(self.shuffle(x)).mean(dim=(2, 3)))  # (B, e·C)
        x = self.fc(torch.cat([x, z[:, 0]], dim=1))  # (B, F)
        return self.classifier(self.dropout(x))


class MobileFormer(nn.Module):
    """Mobile-Former classifier: input (B, 3, H, W), any size ≥ the total stride → (B, classes)."""

    def __init__(self, cfg: MobileFormerCfg, num_classes: int = 1000, in_chans: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        n_blocks = 1 + sum(s.depth for s in cfg.stages)  # the code's schedule counts the conv block
        rates = [cfg.drop_path_rate * (i + 1) / n_blocks for i in range(n_blocks)]
        self.tokens = nn.Embedding(cfg.num_tokens, cfg.token_dim)  # Z0, N(0, 1) as in the code
        self.stem = ConvNormAct(in_chans, cfg.stem_chs, 3, stride=2, act="relu6")
        self.conv_block = _ConvOnlyBlock(
            cfg.stem_chs, cfg.first_chs, cfg.first_stride, cfg.first_expand, cfg.pw_groups
        )
        chs, k = cfg.first_chs, 1
        self.stages = nn.ModuleList()
        for stage in cfg.stages:
            blocks = nn.ModuleList()
            for j in range(stage.depth):
                stride = stage.stride if j == 0 else 1
                blocks.append(_MobileFormerBlock(
                    chs, stage.out_chs, stride, stage.expand[j], stage.expand2, cfg, rates[k]
                ))  # fmt: skip
                chs, k = stage.out_chs, k + 1
            self.stages.append(blocks)
        self.mobile_to_former = MobileToFormer(
            chs, cfg.token_dim, cfg.bridge_heads, cfg.dynamic_gate, cfg.drop_path_rate
        )
        self.num_features = chs
        self.head = _MergeHead(chs, cfg, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """As in the code: conv N(0, √(2/fan_out)), linear N(0, 0.01), zero biases, BN identity."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Last map (B, C, H/s, W/s) with s = ``cfg.total_stride``, and the tokens (B, M, d)."""
        z = self.tokens.weight.unsqueeze(0).expand(x.shape[0], -1, -1)  # (B, M, d)
        x = self.conv_block(self.stem(x))  # (B, C0, H/2 or H/4, ...)
        for blocks in self.stages:
            for block in cast(nn.ModuleList, blocks):
                x, z = block(x, z)
        return x, self.mobile_to_former(x, z)

    def forward_head(self, features: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.head(*features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _stage(
    out_chs: int, expand: tuple[int, ...], stride: Literal[1, 2] = 2
) -> MobileFormerStageCfg:
    return MobileFormerStageCfg(out_chs=out_chs, depth=len(expand), stride=stride, expand=expand)


def _small(pw_groups: int, drop_rate: float) -> MobileFormerCfg:
    """26M/52M: 3×128 tokens, stride-2 conv-only block, then MF3→12 at 56×56 (official table)."""
    return MobileFormerCfg(
        stages=(
            _stage(12, (3,), stride=1), _stage(24, (6, 3)), _stage(48, (6, 4)),
            _stage(64, (6,), stride=1), _stage(96, (6, 6)),
        ),
        stem_chs=8, first_chs=12, first_expand=3, first_stride=2, num_tokens=3, token_dim=128,
        pw_groups=pw_groups, head_hidden=1024, drop_rate=drop_rate,
    )  # fmt: skip


def _large(
    stem: int,
    widths: tuple[int, int, int, int, int],
    mf_expand: tuple[int, int],
    head_hidden: int,
    drop_rate: float,
) -> MobileFormerCfg:
    """151M-508M: 6×192 tokens; stages ↓C1 MF, ↓C2 MF, ↓C3 MF4, MF6×2 at C4, ↓C5 MF6×2."""
    c1, c2, c3, c4, c5 = widths
    e1, e2 = mf_expand
    return MobileFormerCfg(
        stages=(
            _stage(c1, (6, e1)), _stage(c2, (6, e2)), _stage(c3, (6, 4)),
            _stage(c4, (6, 6), stride=1), _stage(c5, (6, 6, 6)),
        ),
        stem_chs=stem, first_chs=stem, first_expand=2, first_stride=1, num_tokens=6, token_dim=192,
        head_hidden=head_hidden, drop_rate=drop_rate,
    )  # fmt: skip


_96M = MobileFormerCfg(
    stages=(
        _stage(16, (6,)), _stage(32, (6, 3)), _stage(64, (6, 4)),
        _stage(88, (6,), stride=1), _stage(128, (6, 6)),
    ),
    stem_chs=12, first_chs=12, first_expand=2, first_stride=1, num_tokens=4, token_dim=128,
    head_hidden=1280, drop_rate=0.2,
)  # fmt: skip

_NOTE = (
    "Block table from the official code (AAboys/MobileFormer mobile_former.py); params, MAdds "
    "(= MACs, 224×224) and top-1 from the official README / CVPR 2022 paper."
)


def _preset(cfg: MobileFormerCfg, size: str, params_m: float, top1: float) -> Preset:
    return Preset(
        cfg, published=f"Mobile-Former-{size}", resolution=224, params_m=params_m,
        macs_g=int(size.rstrip("M")) / 1000, top1=top1, note=_NOTE,
    )  # fmt: skip


PRESETS: dict[str, Preset] = {
    "mobileformer_26m": _preset(_small(pw_groups=4, drop_rate=0.1), "26M", 3.2, 64.0),
    "mobileformer_52m": _preset(_small(pw_groups=1, drop_rate=0.2), "52M", 3.5, 68.7),
    "mobileformer_96m": _preset(_96M, "96M", 4.6, 72.8),
    "mobileformer_151m": _preset(
        _large(12, (16, 32, 64, 88, 128), (3, 3), 1280, 0.2), "151M", 7.6, 75.2),
    "mobileformer_214m": _preset(
        _large(12, (20, 40, 80, 112, 160), (3, 4), 1600, 0.2), "214M", 9.4, 76.7),
    "mobileformer_294m": _preset(
        _large(16, (24, 48, 96, 128, 192), (4, 4), 1920, 0.3), "294M", 11.4, 77.9),
    "mobileformer_508m": _preset(
        _large(24, (40, 72, 128, 176, 240), (3, 3), 1920, 0.3), "508M", 14.0, 79.3),
}  # fmt: skip

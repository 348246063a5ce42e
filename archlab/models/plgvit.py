"""Light-Weight PLG-ViT and the original PLG-ViT, as one parametric generator.

Papers: Ebert et al., "PLG-ViT: Vision Transformer with Parallel Local and Global Self-Attention",
Sensors 23(7) 3447, 2023; Ebert et al., "Light-Weight Vision Transformer with Parallel Local and
Global Self-Attention", arXiv 2307.09120, 2023. No official code is public; the block structure
follows the papers' text (see ``docs/families.md`` section 1). Details the papers leave open are
marked ``[R]`` below, exposed as config switches, and their default reading is stated in place.

Layout: a convolutional tokenizer (output stride 4), four stages of pre-norm PLG layers joined by
convolutional downsamplers, an optional 3×3 channel-expansion conv (LW only), GAP → LN → Linear.
Tensors are NCHW between layers; attention works on (B, heads, N, head_dim). PLG-SA lives in
``archlab.layers.plg_attention`` (shared with ``hybrid``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from archlab.layers import (
    GRN,
    ConvNormAct,
    DropPath,
    LayerNorm2d,
    PlgAttention,
    SqueezeExcite,
    drop_path_rates,
)
from archlab.models.family import Preset, scaled_size

__all__ = ["PlgStageCfg", "PlgVitCfg", "LwPlgVit", "PRESETS"]


@dataclass(frozen=True)
class PlgStageCfg:
    dim: int  # channels C_i of this stage
    depth: int  # number of PLG layers n_i
    global_ratio: float  # C_g / C_i: share of channels sent to the global branch
    local_heads: int  # heads of the local (window) branch
    global_heads: int  # heads of the global branch
    window: int = 7  # local window size w
    global_window: int = 7  # global window size G (tokens = G²), fixed for any input size
    mlp_ratio: float = 3.0  # FFN expansion α

    @property
    def global_dim(self) -> int:
        return round(self.dim * self.global_ratio)

    @property
    def local_dim(self) -> int:
        return self.dim - self.global_dim

    def __post_init__(self) -> None:
        if self.dim < 2 or self.depth < 1:
            raise ValueError(
                f"dim must be ≥ 2 and depth ≥ 1, got dim={self.dim}, depth={self.depth}"
            )
        if not 0.0 < self.global_ratio < 1.0:
            raise ValueError(f"global_ratio must lie in (0, 1), got {self.global_ratio}")
        if self.local_dim % self.local_heads:
            raise ValueError(
                f"local width {self.local_dim} (dim {self.dim} × (1 − global_ratio "
                f"{self.global_ratio})) is not divisible by local_heads={self.local_heads}"
            )
        if self.global_dim % self.global_heads:
            raise ValueError(
                f"global width {self.global_dim} (dim {self.dim} × global_ratio "
                f"{self.global_ratio}) is not divisible by global_heads={self.global_heads}"
            )
        if self.window < 1 or self.global_window < 1 or self.mlp_ratio <= 0:
            raise ValueError("window, global_window and mlp_ratio must be positive")


@dataclass(frozen=True)
class PlgVitCfg:
    stages: tuple[PlgStageCfg, ...]  # exactly four stages, output strides 4, 8, 16, 32
    ffn: Literal["ccf", "ccf_plus"] = "ccf_plus"  # CCF-FFN (original) or CCF-FFN+ (LW)
    sampling: Literal["max", "max_avg"] = "max"  # global patch sampling; original sums max + avg
    downsample: Literal["original", "lw"] = "lw"  # Fused-MBConv (original) or LW downsampler
    # [R] tokenizer: "conv7" = Conv 7×7/4 + LN (default); "conv3_down" = Conv 3×3/2 + a downsampler.
    tokenizer: Literal["conv7", "conv3_down"] = "conv7"
    expand_dim: int | None = None  # width of the final 3×3 channel-expansion conv (LW); None = none
    rel_pos_bias: bool = True  # [R] Swin relative position bias in both branches (default on)
    # [R] each branch has its own output projection before the shared merge projection. Default on:
    # with it PLG-ViT-T/S/B land at -1.8/+0.0/+0.9% of the published parameters, without it at
    # -5.8/-4.0/-3.1% (measured with ``archlab report --all-presets``).
    branch_proj: bool = True
    drop_path_rate: float = 0.0

    def __post_init__(self) -> None:
        if len(self.stages) != 4:
            raise ValueError(f"PLG-ViT has 4 stages, got {len(self.stages)}")
        if self.expand_dim is not None and self.expand_dim < 1:
            raise ValueError(f"expand_dim must be positive or null, got {self.expand_dim}")

    def check_resolution(self, resolution: int) -> None:
        """Raise ValueError unless the model can run sensibly at ``resolution`` × ``resolution``.

        The global window must not exceed its stage's map: adaptive pooling would then upsample.
        """
        if resolution % 32:
            raise ValueError(f"input resolution must be divisible by 32, got {resolution}")
        for i, stage in enumerate(self.stages):
            size = resolution // 2 ** (i + 2)
            if stage.global_window > size:
                raise ValueError(
                    f"stages.{i}.global_window={stage.global_window} exceeds the stage's "
                    f"{size}×{size} map at input {resolution}"
                )


class _PlgAttention(PlgAttention):
    """PLG-SA (:class:`archlab.layers.PlgAttention`) sized by a stage config. NCHW in and out."""

    def __init__(
        self,
        cfg: PlgStageCfg,
        sampling: Literal["max", "max_avg"],
        rel_pos_bias: bool,
        branch_proj: bool,
    ) -> None:
        super().__init__(
            cfg.dim, cfg.global_dim, cfg.local_heads, cfg.global_heads, cfg.window,
            cfg.global_window, sampling, rel_pos_bias, branch_proj,
        )  # fmt: skip


class _CcfFfn(nn.Module):
    """CCF-FFN: PW expansion → GELU → DW 3×3 → GELU → PW projection (NCHW).

    With ``plus=True`` it is CCF-FFN+: GRN after the depthwise conv [R: GELU before GRN], and the
    point-wise and depthwise features are concatenated before the projection.
    """

    def __init__(self, dim: int, mlp_ratio: float, plus: bool) -> None:
        super().__init__()
        hidden = max(1, round(dim * mlp_ratio))
        self.plus = plus
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.GELU()
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.grn = GRN(hidden) if plus else nn.Identity()
        self.fc2 = nn.Conv2d(2 * hidden if plus else hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1 = self.act(self.fc1(x))
        h2 = self.grn(self.act(self.dwconv(h1)))
        return self.fc2(torch.cat([h1, h2], dim=1) if self.plus else h2)


class _PlgLayer(nn.Module):
    """Pre-norm transformer layer: x + PLG-SA(LN(x)), then x + FFN(LN(x)). NCHW in and out."""

    def __init__(self, cfg: PlgStageCfg, model_cfg: PlgVitCfg, drop_path: float) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(cfg.dim)
        self.attn = _PlgAttention(
            cfg, model_cfg.sampling, model_cfg.rel_pos_bias, model_cfg.branch_proj
        )
        self.norm2 = LayerNorm2d(cfg.dim)
        self.ffn = _CcfFfn(cfg.dim, cfg.mlp_ratio, plus=model_cfg.ffn == "ccf_plus")
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.ffn(self.norm2(x)))


class _Downsample(nn.Module):
    """Halve the resolution and change width, with a Fused-MBConv-style residual first.

    ``original`` (PLG-ViT, GC-ViT form [R]): x + PW(SE¼(GELU(DW3×3(LN x)))) → Conv 3×3/2 → LN.
    ``lw`` (LW PLG-ViT): SiLU, SE⅛, then PW/2 (C→C') → DW 3×3 → LN [R: final LN, no activation].
    """

    def __init__(self, in_chs: int, out_chs: int, variant: str) -> None:
        super().__init__()
        lw = variant == "lw"
        act = "silu" if lw else "gelu"
        self.norm_in = LayerNorm2d(in_chs)
        self.mbconv = nn.Sequential(
            ConvNormAct(in_chs, in_chs, 3, groups=in_chs, norm=False, act=act, bias=False),
            SqueezeExcite(in_chs, rd_ratio=0.125 if lw else 0.25, act=act),
            nn.Conv2d(in_chs, in_chs, 1, bias=False),
        )
        if lw:
            self.reduce: nn.Module = nn.Sequential(
                nn.Conv2d(in_chs, out_chs, 1, stride=2, bias=False),
                nn.Conv2d(out_chs, out_chs, 3, padding=1, groups=out_chs, bias=False),
            )
        else:
            self.reduce = nn.Conv2d(in_chs, out_chs, 3, stride=2, padding=1, bias=False)
        self.norm_out = LayerNorm2d(out_chs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mbconv(self.norm_in(x))
        return self.norm_out(self.reduce(x))


class _Tokenizer(nn.Module):
    """Overlapping patch embedding to output stride 4.

    Two readings of the papers, see ``PlgVitCfg.tokenizer``.
    """

    def __init__(self, in_chans: int, dim: int, variant: str, downsample: str) -> None:
        super().__init__()
        if variant == "conv7":
            self.proj: nn.Module = nn.Conv2d(in_chans, dim, 7, stride=4, padding=3)
            self.down: nn.Module = LayerNorm2d(dim)
        else:
            self.proj = nn.Conv2d(in_chans, dim, 3, stride=2, padding=1)
            self.down = _Downsample(dim, dim, downsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.proj(x))


class LwPlgVit(nn.Module):
    """(LW) PLG-ViT classifier.

    Input (B, 3, H, W) with H, W divisible by 32; output (B, classes).
    """

    def __init__(self, cfg: PlgVitCfg, num_classes: int = 1000, in_chans: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        dims = [s.dim for s in cfg.stages]
        dpr = drop_path_rates([s.depth for s in cfg.stages], cfg.drop_path_rate)
        self.tokenizer = _Tokenizer(in_chans, dims[0], cfg.tokenizer, cfg.downsample)
        self.stages = nn.ModuleList()
        for i, stage in enumerate(cfg.stages):
            layers: list[nn.Module] = []
            if i > 0:
                layers.append(_Downsample(dims[i - 1], stage.dim, cfg.downsample))
            layers += [_PlgLayer(stage, cfg, dpr[i][j]) for j in range(stage.depth)]
            self.stages.append(nn.Sequential(*layers))
        if cfg.expand_dim:
            # [R] Conv 3×3 + BN + GELU; the paper only names a 3×3 conv.
            self.expand: nn.Module = ConvNormAct(dims[-1], cfg.expand_dim, 3, act="gelu")
        else:
            self.expand = nn.Identity()
        self.num_features = cfg.expand_dim or dims[-1]
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.tokenizer(x)  # (B, C1, H/4, W/4)
        for stage in self.stages:
            x = stage(x)
        return self.expand(x)  # (B, C_out, H/32, W/32)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(x.mean(dim=(2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _original(dim: int, depths: tuple[int, ...], head_dim: int) -> PlgVitCfg:
    """PLG-ViT (Sensors 2023, §3.3): C doubles per stage, heads = C_i / d split evenly, r = 0.5."""
    stages = tuple(
        PlgStageCfg(
            dim=dim * 2**i,
            depth=d,
            global_ratio=0.5,
            local_heads=max(1, dim * 2**i // head_dim // 2),
            global_heads=max(1, dim * 2**i // head_dim // 2),
            window=7,
            global_window=7,
            mlp_ratio=4.0,
        )
        for i, d in enumerate(depths)
    )
    return PlgVitCfg(stages=stages, ffn="ccf", sampling="max_avg", downsample="original")


def _lw(
    dims: tuple[int, ...],
    depths: tuple[int, ...],
    global_ratios: tuple[float, ...],
    local_heads: tuple[int, ...],
    global_heads: tuple[int, ...],
    expand_dim: int,
) -> PlgVitCfg:
    stages = tuple(
        PlgStageCfg(dim=c, depth=d, global_ratio=r, local_heads=hl, global_heads=hg, mlp_ratio=3.0)
        for c, d, r, hl, hg in zip(dims, depths, global_ratios, local_heads, global_heads)
    )
    return PlgVitCfg(
        stages=stages, ffn="ccf_plus", sampling="max", downsample="lw", expand_dim=expand_dim
    )


_LW_NOTE = (
    "Reconstruction: the per-stage table (LW PLG-ViT Table I, arXiv 2307.09120) was not available "
    "to us; this config is ours, sized to the published ≈5.0M parameters (docs/families.md)."
)
_ORIG_NOTE = (
    "C, depths and head dim from PLG-ViT (Sensors 2023, §3.3); windows (7) and global window (7) "
    "are our reading; params from the abstract."
)

PRESETS: dict[str, Preset] = {
    "plgvit_tiny": Preset(
        _original(64, (3, 4, 16, 4), 32),
        published="PLG-ViT-Tiny",
        params_m=27.0,
        top1=83.4,
        params_tolerance=0.05,  # whole millions in the abstract
        note=_ORIG_NOTE,
    ),
    "plgvit_small": Preset(
        _original(96, (3, 3, 16, 3), 24),
        published="PLG-ViT-Small",
        params_m=52.0,
        top1=84.0,
        params_tolerance=0.05,  # whole millions in the abstract
        note=_ORIG_NOTE,
    ),
    "plgvit_base": Preset(
        _original(128, (3, 3, 16, 3), 32),
        published="PLG-ViT-Base",
        params_m=91.0,
        top1=84.5,
        params_tolerance=0.05,  # whole millions in the abstract
        note=_ORIG_NOTE,
    ),
    # A: accuracy-leaning: deeper early stages, more global than local heads in every stage.
    "lw_plgvit_a": Preset(
        _lw(
            (48, 96, 160, 224), (2, 2, 6, 2), (0.5, 0.5, 0.5, 0.5), (1, 2, 4, 4), (2, 3, 5, 7), 512
        ),
        published="LW-PLG-ViT-A",
        reconstructed=True,
        params_m=5.0,
        top1=79.5,
        params_tolerance=0.05,  # reconstructed to the published ≈5.0M
        note=_LW_NOTE,
    ),
    # R: runtime-leaning: narrow, shallow high-resolution stages (where the MACs are), wider late.
    "lw_plgvit_r": Preset(
        _lw(
            (32, 64, 160, 256), (1, 2, 5, 2), (0.5, 0.5, 0.5, 0.5), (1, 1, 4, 4), (1, 2, 5, 8), 448
        ),
        published="LW-PLG-ViT-R",
        reconstructed=True,
        params_m=5.0,
        params_tolerance=0.05,  # reconstructed to the published ≈5.0M
        note=_LW_NOTE,
    ),
}


def reduce_to(cfg: Any, resolution: int, scale: float) -> Any:
    """This config adapted to ``resolution`` for the accuracy estimates (archlab.estimate.reduced):
    map-tied sizes scaled by ``scale``."""
    stages = []
    for i, stage in enumerate(cfg.stages):
        size = resolution // 2 ** (i + 2)  # the stage's map side (output stride 4·2^i)
        stages.append(
            dataclasses.replace(
                stage,
                window=scaled_size(stage.window, scale, size),
                global_window=scaled_size(stage.global_window, scale, size),
            )
        )
    return dataclasses.replace(cfg, stages=tuple(stages))

"""SBCFormer: a hybrid CNN-transformer for single-board computers, as a parametric generator.

Paper: Lu, Suganuma and Okatani, "SBCFormer: Lightweight Network Capable of Full-size ImageNet
Classification at 1 FPS on Single Board Computers", WACV 2024, arXiv 2311.03747. The layers follow
the official code (``xyongLu/SBCFormer``, ``models/sbcformer.py``), written anew here; described
block by block in ``docs/families.md`` section 2.

Layout: a conv stem (3 × Conv 3×3/2 + BN + ReLU, output stride 8), three stages joined by
Conv 3×3/2 + BN, one SBCFormer block per stage, GAP → LN → Linear. An SBCFormer block runs ``m``
InvRes blocks, then splits into a *local* stream kept at full resolution and a *global* stream that
is average-pooled to a small P×P "hourglass" grid, mixed by two InvRes blocks, run through ``L``
MAttn layers and brought back up by a depthwise transposed conv + BN. The global map gates the local
one through a hard sigmoid, and a point-wise conv + BN fuses the concatenation of both. Tensors are
NCHW between blocks; MAttn layers work on tokens (B, N, C) with N = P². The block, MAttn and InvRes
live in ``archlab.layers.hourglass`` and ``.inverted_residual`` (shared with ``hybrid``).

Code ≠ paper (docs/families.md section 2; we follow the code everywhere):
    * InvRes is PW–BN–GELU–DW 3×3–BN–GELU–PW–BN with a residual (the paper text names two convs).
    * The gate is a hard sigmoid (the paper says sigmoid).
    * Value branch: DW 3×3 → BN → GELU, added back to v (the paper: "followed by GELU and BN").
    * The published FLOPs are ptflops counts of the official model, which registers the stem and
      the last stage block twice and counts both copies; the presets say so
      (``macs_reproducible=False``).

Input sizes (our generalisation; the official model only runs at 224 × 224):
    The pooled size P (``pooled_size``) is the knob; the per-stage pool ratio and the depthwise
    transposed conv (kernel = stride = ratio) are fixed when the model is built, from
    ``design_resolution``: stage i has an ``s_i × s_i`` map, ``s_i = design_resolution / 2^(i+3)``,
    is pooled to ``P_i = min(P, s_i)`` (a stage smaller than P is not pooled, like the official
    third stage) and upsampled with stride ``s_i / P_i``, which must be whole (``__post_init__``).
    At ``design_resolution`` the model is exactly the official one (AvgPool k = s = ratio). At any
    other input whose stage maps are at least ``P_i`` (``check_resolution``) the global stream
    keeps its P_i × P_i grid (so its bias table and cost stay fixed, the point of the hourglass):
    it is pooled with ``AdaptiveAvgPool2d(P_i)`` (plain AvgPool when the map divides evenly),
    upsampled by the same transposed conv to ``s_i × s_i`` and then **bilinearly resized** to the
    stage's actual size. That resize is our deviation, used only off the design resolution.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from archlab.layers import (
    ConvNormAct,
    HourglassAttention,
    drop_path_rates,
    init_linear_trunc_normal,
)
from archlab.models.family import Preset

__all__ = ["SBCStageCfg", "SBCFormerCfg", "SBCFormer", "PRESETS"]

_NUM_STAGES = 3
_STEM_STRIDE = 8


@dataclass(frozen=True)
class SBCStageCfg:
    dim: int  # channels C_i of the stage
    num_heads: int  # attention heads h_i of its MAttn layers
    depth_invres: int = 2  # m_i: InvRes blocks on the full-resolution map before the two streams
    depth_mattn: int = 2  # L_i: MAttn layers on the pooled P×P map
    depth_mixer: int = 2  # InvRes blocks ("Mixer") on the pooled map before the MAttn layers
    key_dim: int = 16  # query/key size k per head
    attn_ratio: float = 2.0  # value size per head = attn_ratio · key_dim (must be whole)
    mlp_ratio: float = 4.0  # MLP expansion of the MAttn layers
    invres_ratio: float = 2.0  # expansion ρ of the stage's InvRes blocks
    mixer_ratio: float = 2.0  # expansion of the Mixer's InvRes blocks

    @property
    def value_dim(self) -> int:
        return round(self.attn_ratio * self.key_dim)

    def __post_init__(self) -> None:
        for name in ("dim", "num_heads", "key_dim", "depth_mattn"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        for name in ("depth_invres", "depth_mixer"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        for name in ("mlp_ratio", "invres_ratio", "mixer_ratio"):
            if round(self.dim * getattr(self, name)) < 1:
                raise ValueError(f"{name} must be > 0 (dim × ratio ≥ 1), got {getattr(self, name)}")
        value = self.attn_ratio * self.key_dim
        if value < 1 or not math.isclose(value, round(value)):
            raise ValueError(
                f"attn_ratio × key_dim must be a whole number ≥ 1 (the value size per head), "
                f"got attn_ratio={self.attn_ratio} × key_dim={self.key_dim} = {value}"
            )


@dataclass(frozen=True)
class SBCFormerCfg:
    stages: tuple[SBCStageCfg, ...]  # exactly three stages, output strides 8, 16, 32
    pooled_size: int = 7  # P: side of the hourglass grid the global stream is pooled to
    design_resolution: int = 224  # input size that fixes the pool ratios and transposed convs
    drop_path_rate: float = 0.0  # stochastic depth, linear over all MAttn layers

    def __post_init__(self) -> None:
        if len(self.stages) != _NUM_STAGES:
            raise ValueError(f"SBCFormer has {_NUM_STAGES} stages, got {len(self.stages)}")
        if self.stages[0].dim < 4:
            raise ValueError(
                f"stages.0.dim must be ≥ 4 (stem widths C/4, C/2), got {self.stages[0].dim}"
            )
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must lie in [0, 1), got {self.drop_path_rate}")
        if self.design_resolution < 32 or self.design_resolution % 32:
            raise ValueError(
                f"design_resolution must be a positive multiple of 32, got {self.design_resolution}"
            )
        sizes = self.stage_sizes(self.design_resolution)
        if self.pooled_size < 1 or any(s % min(self.pooled_size, s) for s in sizes):
            valid = [p for p in range(1, sizes[0] + 1) if all(s % min(p, s) == 0 for s in sizes)]
            raise ValueError(
                f"pooled_size={self.pooled_size} must divide every stage map it pools "
                f"({'/'.join(map(str, sizes))} at design_resolution={self.design_resolution}); "
                f"allowed values: {valid} (or larger than {sizes[0]})"
            )

    @staticmethod
    def stage_sizes(resolution: int) -> tuple[int, ...]:
        """Side of each stage's map for a square input of side ``resolution``."""
        return tuple(resolution // (_STEM_STRIDE * 2**i) for i in range(_NUM_STAGES))

    @property
    def pooled_sizes(self) -> tuple[int, ...]:
        """P_i = min(P, s_i): the attention grid of each stage, fixed at any input size."""
        return tuple(min(self.pooled_size, s) for s in self.stage_sizes(self.design_resolution))

    @property
    def pool_ratios(self) -> tuple[int, ...]:
        """s_i / P_i: pooling window and transposed-conv kernel/stride (official: 4, 2, 1)."""
        sizes = self.stage_sizes(self.design_resolution)
        return tuple(s // p for s, p in zip(sizes, self.pooled_sizes))

    def check_resolution(self, resolution: int) -> None:
        """Raise ValueError unless the model can run at ``resolution`` × ``resolution``.

        Any multiple of 32 whose stage maps are at least the hourglass grids P_i runs; only
        ``design_resolution`` runs the exact official ops (elsewhere the global stream is pooled
        adaptively and bilinearly resized after the transposed conv, see the module docstring).
        """
        if resolution % 32:
            raise ValueError(
                f"input resolution must be divisible by 32 (stages run at 1/8, 1/16, 1/32), "
                f"got {resolution}"
            )
        for i, (size, pooled) in enumerate(zip(self.stage_sizes(resolution), self.pooled_sizes)):
            if size < pooled:
                raise ValueError(
                    f"at input {resolution} stage {i} has a {size}×{size} map, smaller than its "
                    f"{pooled}×{pooled} hourglass grid (pooled_size={self.pooled_size}, fixed at "
                    f"design_resolution={self.design_resolution}): pooling would have to upsample; "
                    f"use an input ≥ {pooled * _STEM_STRIDE * 2**i} or a smaller pooled_size"
                )


class _SBCFormerBlock(HourglassAttention):
    """One stage's block (:class:`archlab.layers.HourglassAttention`) sized by a stage config.

    InvRes blocks, local and hourglass global streams, gated fusion; NCHW.

    Args:
        cfg: the stage.
        grid: P_i, side of the pooled map the MAttn layers see.
        ratio: s_i / P_i at the design resolution: kernel and stride of the transposed conv.
        drop_paths: stochastic-depth rate of each MAttn layer.
    """

    def __init__(self, cfg: SBCStageCfg, grid: int, ratio: int, drop_paths: list[float]) -> None:
        super().__init__(
            cfg.dim, cfg.num_heads, cfg.key_dim, cfg.value_dim, grid, ratio, drop_paths,
            mlp_ratio=cfg.mlp_ratio, depth_mixer=cfg.depth_mixer, mixer_ratio=cfg.mixer_ratio,
            depth_invres=cfg.depth_invres, invres_ratio=cfg.invres_ratio,
        )  # fmt: skip


class SBCFormer(nn.Module):
    """SBCFormer classifier. Input (B, 3, H, W), H, W multiples of 32 (``check_resolution``)."""

    def __init__(self, cfg: SBCFormerCfg, num_classes: int = 1000, in_chans: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        dims = [s.dim for s in cfg.stages]
        dpr = drop_path_rates([s.depth_mattn for s in cfg.stages], cfg.drop_path_rate)
        self.stem = nn.Sequential(
            ConvNormAct(in_chans, dims[0] // 4, 3, stride=2, act="relu"),
            ConvNormAct(dims[0] // 4, dims[0] // 2, 3, stride=2, act="relu"),
            ConvNormAct(dims[0] // 2, dims[0], 3, stride=2, act="relu"),
        )
        self.stages = nn.Sequential()
        for i, stage in enumerate(cfg.stages):
            layers: list[nn.Module] = []
            if i > 0:
                layers.append(ConvNormAct(dims[i - 1], stage.dim, 3, stride=2, act=None))
            grid, ratio = cfg.pooled_sizes[i], cfg.pool_ratios[i]
            layers.append(_SBCFormerBlock(stage, grid, ratio, dpr[i]))
            self.stages.append(nn.Sequential(*layers))
        self.num_features = dims[-1]
        self.norm = nn.LayerNorm(self.num_features, eps=1e-6)
        self.head = nn.Linear(self.num_features, num_classes)
        self.apply(_init_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, C1, H/8, W/8)
        return self.stages(x)  # (B, C3, H/32, W/32)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(x.mean(dim=(2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _init_weights(module: nn.Module) -> None:
    """As the official code: trunc-normal (std 0.02) linears, fan-out normal convs, zero biases."""
    init_linear_trunc_normal(module)
    if isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
        nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / (fan_out // module.groups)))
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _official(
    dims: tuple[int, int, int],
    heads: tuple[int, int, int],
    key_dim: int,
    invres_ratio: float,
    depths_mattn: tuple[int, int, int],
) -> SBCFormerCfg:
    """An official variant: InvRes depths (2, 2, 1), Mixer 2 × ratio 2, MLP 4×, 7×7 hourglass."""
    stages = tuple(
        SBCStageCfg(
            dim=c, num_heads=h, depth_invres=m, depth_mattn=n, key_dim=key_dim,
            invres_ratio=invres_ratio,
        )
        for c, h, m, n in zip(dims, heads, (2, 2, 1), depths_mattn)
    )  # fmt: skip
    return SBCFormerCfg(stages=stages, pooled_size=7, design_resolution=224)


def _note(ours: float, aliased: float, ptflops: float) -> str:
    return (
        "Config from the official code (xyongLu/SBCFormer, models/sbcformer.py). The published "
        "FLOPs are ptflops MACs of the official model, which registers the stem (patch_embed = "
        "merging_blocks[0]) and the last stage block (sbcformer_blk = sbcformer_blocks[2]) twice "
        "and counts both copies (see docs/families.md, section 6). fvcore MACs at 224: "
        f"{ours:.3f} G (same as fvcore on the official code); plus the stem and the last block "
        f"once more: {aliased:.3f} G; ptflops 0.7.5 on the official code: {ptflops:.3f} G."
    )


PRESETS: dict[str, Preset] = {
    "sbcformer_xs": Preset(
        _official((96, 160, 288), (3, 5, 6), 16, 2.0, (2, 3, 2)),
        published="SBCFormer-XS",
        params_m=5.6,
        macs_g=0.7,
        macs_reproducible=False,
        top1=75.8,
        note=_note(0.478, 0.697, 0.697),
    ),
    "sbcformer_s": Preset(
        _official((96, 192, 320), (3, 5, 7), 16, 2.0, (2, 4, 3)),
        published="SBCFormer-S",
        params_m=8.5,
        macs_g=0.9,
        macs_reproducible=False,
        top1=77.7,
        note=_note(0.641, 0.947, 0.945),
    ),
    "sbcformer_b": Preset(
        _official((128, 256, 384), (4, 6, 8), 24, 2.0, (2, 4, 3)),
        published="SBCFormer-B",
        params_m=13.8,
        macs_g=1.6,
        macs_reproducible=False,
        top1=80.0,
        note=_note(1.082, 1.563, 1.557),
    ),
    "sbcformer_l": Preset(
        _official((192, 288, 384), (4, 6, 8), 32, 4.0, (2, 4, 3)),
        published="SBCFormer-L",
        params_m=18.5,
        macs_g=2.7,
        macs_reproducible=False,
        top1=81.1,
        note=_note(2.010, 2.695, 2.690),
    ),
}


def reduce_to(cfg: Any, resolution: int, scale: float) -> Any:
    """This config adapted to ``resolution`` for the accuracy estimates (archlab.estimate.reduced):
    map-tied sizes scaled by ``scale``."""
    sizes = cfg.stage_sizes(resolution)
    wanted = max(1, round(cfg.pooled_size * scale))
    valid = [p for p in range(1, sizes[0] + 1) if all(s % min(p, s) == 0 for s in sizes)]
    pooled = min(valid, key=lambda p: (abs(p - wanted), p))
    return dataclasses.replace(cfg, design_resolution=resolution, pooled_size=pooled)

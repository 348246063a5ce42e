"""Hybrid: one macro skeleton whose global mixer is chosen per stage among the four families' ideas.

Not a published architecture: archlab's own design space, so that one study can compare PLG
attention (LW PLG-ViT, arXiv 2307.09120), hourglass attention (SBCFormer, arXiv 2311.03747), Former
tokens (Mobile-Former, arXiv 2108.05895) and ParC (ParC-Net, arXiv 2203.03952) stage by stage,
under one latency budget. The mixers are the families' own blocks, shared through
``archlab.layers``; only the skeleton around them is new (``docs/families.md`` section 5).

Layout (NCHW throughout): a conv stem (Conv 3×3/2 + BN + GELU, twice; output stride 4), four stages
at strides 4, 8, 16, 32 (stages 1-3 open with a Conv 3×3/2 + BN downsampler in their first block),
GAP → LayerNorm → Linear. Every block is::

    x = local(x)                         DW 3×3 + BN with a residual, or SBCFormer's InvRes (×2)
    x = x + DropPath(mixer(norm(x)))     the stage's global mixer; skipped for mixer "none"
    x = x + DropPath(FFN(norm(x)))       PW (C → r·C) → GELU → PW (r·C → C)

Mixers, and what the hybrid changes around each (the blocks themselves are unchanged):

* ``plg``: PLG-SA with the LW settings (max sampling, relative position bias, branch projections).
  Heads are ``head_dim`` wide and the local/global split ``plg_global_ratio`` is rounded to whole
  heads, at least one per branch; a stage narrower than ``2 · head_dim`` uses two heads of dim/2.
* ``hourglass``: SBCFormer's two-stream block without its InvRes before the streams (the block's
  local mixing has that role) and with one MAttn layer per block (its MLP uses the stage's
  ``mlp_ratio``; the Mixer keeps SBCFormer's 2 InvRes of ratio 2). ``dim / head_dim`` heads with
  keys of ``head_dim / 2`` and values of ``head_dim`` (SBCFormer's attn_ratio 2). The pooled grid
  is ``P_i = min(hourglass_size, s_i)``, ``s_i`` the stage's map at ``design_resolution``; off that
  size the pooling is adaptive and the global map is resized bilinearly (as in ``sbcformer``).
* ``former``: Mobile-Former's Mobile→Former bridge, Former and Former→Mobile bridge (the code's
  reading: query-only Former attention, dynamic gate, FFN ×2), heads ``head_dim`` wide. Each
  ``former`` stage owns a learned table of ``former_tokens`` tokens of width ``former_dim`` that its
  blocks pass along; Mobile-Former runs one token set through the whole network, but here stages
  may differ in M and d, or have no tokens. The Mobile sub-block and its dynamic ReLU are not used.
* ``parc``: ParC-Net's two-pass ParC mixer (H→W on one channel half, W→H on the other), meta
  kernels as long as the stage's map at ``design_resolution``, position embeddings in the stage's
  first block, no BN inside (the block's pre-norm precedes it); ``parc_impl`` picks the direct
  conv or the FFT (Fast-ParC; same output).
* ``none``: the block is local mixing + FFN, a plain conv block.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch import nn

from archlab.layers import (
    ConvNormAct,
    DropPath,
    Former,
    FormerToMobile,
    HourglassAttention,
    InvertedResidual,
    LayerNorm2d,
    MobileToFormer,
    ParCMixer,
    PlgAttention,
    drop_path_rates,
    init_linear_trunc_normal,
)
from archlab.models.family import Preset, scaled_size

__all__ = ["MIXERS", "HybridStageCfg", "HybridCfg", "HybridNet", "PRESETS"]

Mixer = Literal["plg", "hourglass", "former", "parc", "none"]
MIXERS: tuple[str, ...] = ("plg", "hourglass", "former", "parc", "none")
_NUM_STAGES = 4
_STEM_STRIDE = 4
_INVRES_RATIO = 2.0  # expansion of the InvRes used as local mixing (SBCFormer's ρ)
_FORMER_MLP_RATIO = 2.0  # Mobile-Former's Former FFN


@dataclass(frozen=True)
class HybridStageCfg:
    dim: int  # channels of the stage
    depth: int  # number of blocks
    mixer: Mixer = "plg"  # global mixer of every block of the stage
    mlp_ratio: float = 3.0  # FFN expansion r
    local: Literal["dw", "invres"] = "dw"  # local mixing: DW 3×3 + BN residual, or InvRes ×2
    plg_global_ratio: float = 0.5  # plg: share of the channels in the global branch (whole heads)
    plg_window: int = 7  # plg: local window w
    plg_global_window: int = 7  # plg: global window G (G² pooled tokens at any input size)
    hourglass_size: int = 7  # hourglass: side P of the pooled grid
    former_tokens: int = 6  # former: number M of global tokens
    former_dim: int = 128  # former: token width d
    parc_impl: Literal["direct", "fft", "auto"] = "auto"  # parc: direct conv or FFT (same output)

    def __post_init__(self) -> None:
        if self.dim < 2 or self.depth < 1:
            raise ValueError(
                f"dim must be ≥ 2 and depth ≥ 1, got dim={self.dim}, depth={self.depth}"
            )
        _check_choice("mixer", self.mixer, MIXERS)
        _check_choice("local", self.local, ("dw", "invres"))
        if self.mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio must be positive, got {self.mlp_ratio}")
        if self.mixer == "plg":
            if not 0.0 < self.plg_global_ratio < 1.0:
                raise ValueError(
                    f"plg_global_ratio must lie in (0, 1), got {self.plg_global_ratio}"
                )
            if self.plg_window < 1 or self.plg_global_window < 1:
                raise ValueError("plg_window and plg_global_window must be ≥ 1")
        elif self.mixer == "hourglass" and self.hourglass_size < 1:
            raise ValueError(f"hourglass_size must be ≥ 1, got {self.hourglass_size}")
        elif self.mixer == "former" and (self.former_tokens < 1 or self.former_dim < 1):
            raise ValueError(
                f"former_tokens and former_dim must be ≥ 1, got {self.former_tokens}, "
                f"{self.former_dim}"
            )
        elif self.mixer == "parc":
            _check_choice("parc_impl", self.parc_impl, ("direct", "fft", "auto"))
            if self.dim % 2:
                raise ValueError(f"the parc mixer splits channels in halves; dim={self.dim} is odd")


@dataclass(frozen=True)
class HybridCfg:
    stages: tuple[HybridStageCfg, ...]  # exactly four stages, output strides 4, 8, 16, 32
    head_dim: int = 32  # width of one attention head in the plg, hourglass and former mixers
    norm: Literal["layer", "batch"] = "layer"  # pre-norm of the mixer and FFN: LayerNorm or BN
    design_resolution: int = 224  # input size that fixes ParC meta kernels and hourglass ratios
    drop_path_rate: float = 0.0  # stochastic depth, linear over all blocks

    def __post_init__(self) -> None:
        if len(self.stages) != _NUM_STAGES:
            raise ValueError(f"the hybrid has {_NUM_STAGES} stages, got {len(self.stages)}")
        if self.head_dim < 2 or self.head_dim % 2:
            raise ValueError(f"head_dim must be even and ≥ 2 (keys are half), got {self.head_dim}")
        _check_choice("norm", self.norm, ("layer", "batch"))
        if self.design_resolution < 32 or self.design_resolution % 32:
            raise ValueError(
                f"design_resolution must be a positive multiple of 32, got {self.design_resolution}"
            )
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must lie in [0, 1), got {self.drop_path_rate}")
        for i in range(_NUM_STAGES):
            self._check_stage(i)

    def _check_stage(self, i: int) -> None:
        stage, where = self.stages[i], f"stages.{i}"
        if stage.mixer in ("plg", "hourglass", "former"):
            width = head_width(stage, self.head_dim)
            if stage.dim % width:
                raise ValueError(
                    f"{where}.dim={stage.dim} is not a multiple of the {stage.mixer} mixer's "
                    f"head width {width} (head_dim={self.head_dim})"
                )
        if stage.mixer == "former" and stage.former_dim % self.head_dim:
            raise ValueError(
                f"{where}.former_dim={stage.former_dim} is not a multiple of "
                f"head_dim={self.head_dim}"
            )
        if stage.mixer == "hourglass":
            size = self.stage_sizes(self.design_resolution)[i]
            grid = min(stage.hourglass_size, size)
            if size % grid:
                raise ValueError(
                    f"{where}.hourglass_size={stage.hourglass_size} must divide the stage's "
                    f"{size}×{size} map at design_resolution={self.design_resolution} (or be ≥ it)"
                )

    @staticmethod
    def stage_sizes(resolution: int) -> tuple[int, ...]:
        """Side of each stage's map for a square input of side ``resolution``."""
        return tuple(resolution // (_STEM_STRIDE * 2**i) for i in range(_NUM_STAGES))

    def hourglass_grid(self, i: int) -> tuple[int, int]:
        """(P_i, ratio) of stage ``i``: pooled side and transposed-conv stride, fixed at design."""
        size = self.stage_sizes(self.design_resolution)[i]
        grid = min(self.stages[i].hourglass_size, size)
        return grid, size // grid

    def check_resolution(self, resolution: int) -> None:
        """Raise ValueError unless the model can run at ``resolution`` × ``resolution``.

        Any multiple of 32 whose stage maps hold the PLG global windows and the hourglass grids
        (pooling must not upsample). ParC and Former mixers run at any size.
        """
        if resolution < 32 or resolution % 32:
            raise ValueError(f"input resolution must be divisible by 32, got {resolution}")
        for i, (stage, size) in enumerate(zip(self.stages, self.stage_sizes(resolution))):
            if stage.mixer == "plg" and stage.plg_global_window > size:
                raise ValueError(
                    f"stages.{i}.plg_global_window={stage.plg_global_window} exceeds the stage's "
                    f"{size}×{size} map at input {resolution}"
                )
            if stage.mixer == "hourglass" and self.hourglass_grid(i)[0] > size:
                raise ValueError(
                    f"stages.{i}: the {self.hourglass_grid(i)[0]}² hourglass grid (fixed at "
                    f"design_resolution={self.design_resolution}) exceeds the stage's "
                    f"{size}×{size} map at input {resolution}"
                )


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


def head_width(stage: HybridStageCfg, head_dim: int) -> int:
    """Width of one attention head of a stage's mixer: ``head_dim``, except that a PLG stage
    narrower than two heads uses two heads of ``dim / 2`` (one per branch)."""
    return min(head_dim, stage.dim // 2) if stage.mixer == "plg" else head_dim


def plg_heads(stage: HybridStageCfg, head_dim: int) -> tuple[int, int]:
    """(local heads, global heads) of a PLG stage: ``plg_global_ratio`` of the heads, rounded
    half up, go to the global branch, keeping at least one head in each branch."""
    heads = stage.dim // head_width(stage, head_dim)
    global_heads = min(max(math.floor(heads * stage.plg_global_ratio + 0.5), 1), heads - 1)
    return heads - global_heads, global_heads


class _LocalConv(nn.Module):
    """Local mixing ``x + BN(DW 3×3(x))``. NCHW."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = ConvNormAct(dim, dim, 3, groups=dim, act=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class _Ffn(nn.Module):
    """Point-wise FFN: PW (C → r·C) → GELU → PW (r·C → C). NCHW."""

    def __init__(self, dim: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = max(1, round(dim * mlp_ratio))
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _FormerMixer(nn.Module):
    """Mobile-Former's token path as a mixer: ``z = Former(M→F(x, z))``; returns ``(F→M(x, z), z)``.

    The map is NCHW, the tokens (B, M, d). The first block of a stage owns the stage's learned
    token table (``num_tokens`` set) and starts from it; later blocks take the previous one's.
    """

    def __init__(
        self, stage: HybridStageCfg, head_dim: int, num_tokens: int | None, drop_path: float
    ) -> None:
        super().__init__()
        dim, d = stage.dim, stage.former_dim
        self.tokens = nn.Embedding(num_tokens, d) if num_tokens else None  # N(0, 1), as the code
        self.mobile_to_former = MobileToFormer(dim, d, dim // head_dim, True, drop_path)
        self.former = Former(d, d // head_dim, _FORMER_MLP_RATIO, False, drop_path)
        self.former_to_mobile = FormerToMobile(dim, d, dim // head_dim)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.tokens is not None:
            z = self.tokens.weight.unsqueeze(0).expand(x.shape[0], -1, -1)  # (B, M, d)
        if z is None:
            raise RuntimeError("a former mixer without its own tokens needs the previous block's")
        z = self.former(self.mobile_to_former(x, z))  # (B, M, d)
        return self.former_to_mobile(x, z), z  # (B, C, H, W), (B, M, d)


def _mixer(cfg: HybridCfg, i: int, first: bool, drop_path: float) -> nn.Module | None:
    """The global mixer of a block of stage ``i`` (``first``: the stage's first block)."""
    stage, head_dim = cfg.stages[i], cfg.head_dim
    if stage.mixer == "plg":
        width = head_width(stage, head_dim)
        local_heads, global_heads = plg_heads(stage, head_dim)
        return PlgAttention(stage.dim, global_heads * width, local_heads, global_heads,
                            stage.plg_window, stage.plg_global_window)  # fmt: skip
    if stage.mixer == "hourglass":
        grid, ratio = cfg.hourglass_grid(i)
        return HourglassAttention(stage.dim, stage.dim // head_dim, head_dim // 2, head_dim, grid,
                                  ratio, [0.0], mlp_ratio=stage.mlp_ratio)  # fmt: skip
    if stage.mixer == "former":
        tokens = stage.former_tokens if first else None
        return _FormerMixer(stage, head_dim, tokens, drop_path)
    if stage.mixer == "parc":
        meta_size = cfg.stage_sizes(cfg.design_resolution)[i]
        return ParCMixer(stage.dim, meta_size, pe=first, norm=False, impl=stage.parc_impl)
    return None


def _norm(kind: str, dim: int) -> nn.Module:
    return LayerNorm2d(dim) if kind == "layer" else nn.BatchNorm2d(dim)


class _HybridBlock(nn.Module):
    """[downsample] → local mixing → ``x + mixer(norm(x))`` → ``x + FFN(norm(x))``.

    Takes and returns ``(x, z)``: the map (B, C, H, W) and the Former tokens (B, M, d), or None
    outside a ``former`` stage. The first block of stages 1-3 halves the map and changes width.
    """

    def __init__(self, in_chs: int, cfg: HybridCfg, i: int, first: bool, drop_path: float) -> None:
        super().__init__()
        stage = cfg.stages[i]
        dim = stage.dim
        self.downsample: nn.Module = nn.Identity()
        if first and i > 0:
            self.downsample = ConvNormAct(in_chs, dim, 3, stride=2, act=None)
        self.local: nn.Module = _LocalConv(dim)
        if stage.local == "invres":
            self.local = InvertedResidual(dim, _INVRES_RATIO)
        self.mixer = _mixer(cfg, i, first, drop_path)
        self.uses_tokens = stage.mixer == "former"
        self.norm1 = _norm(cfg.norm, dim) if self.mixer is not None else nn.Identity()
        self.norm2 = _norm(cfg.norm, dim)
        self.ffn = _Ffn(dim, stage.mlp_ratio)
        self.drop_path = DropPath(drop_path)

    def forward(
        self, x: torch.Tensor, z: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.local(self.downsample(x))
        if self.mixer is not None:
            if self.uses_tokens:
                y, z = self.mixer(self.norm1(x), z)
            else:
                y = self.mixer(self.norm1(x))
            x = x + self.drop_path(y)
        x = x + self.drop_path(self.ffn(self.norm2(x)))
        return x, z


class HybridNet(nn.Module):
    """Hybrid classifier. Input (B, 3, H, W), H, W multiples of 32 (``check_resolution``)."""

    def __init__(self, cfg: HybridCfg, num_classes: int = 1000, in_chans: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        dims = [s.dim for s in cfg.stages]
        dpr = drop_path_rates([s.depth for s in cfg.stages], cfg.drop_path_rate)
        self.stem = nn.Sequential(
            ConvNormAct(in_chans, dims[0] // 2, 3, stride=2, act="gelu"),
            ConvNormAct(dims[0] // 2, dims[0], 3, stride=2, act="gelu"),
        )
        self.stages = nn.ModuleList()
        in_chs = dims[0]
        for i, stage in enumerate(cfg.stages):
            self.stages.append(nn.ModuleList(
                _HybridBlock(in_chs if j == 0 else stage.dim, cfg, i, j == 0, dpr[i][j])
                for j in range(stage.depth)
            ))  # fmt: skip
            in_chs = stage.dim
        self.num_features = dims[-1]
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Linear(self.num_features, num_classes)
        self.apply(init_linear_trunc_normal)  # convs keep PyTorch's default

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, C1, H/4, W/4)
        for blocks in self.stages:
            z = None  # a former stage starts from its own tokens
            for block in cast(nn.ModuleList, blocks):
                x, z = block(x, z)
        return x  # (B, C4, H/32, W/32)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(x.mean(dim=(2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _cfg(mixers: tuple[Mixer, Mixer, Mixer, Mixer]) -> HybridCfg:
    """Widths 64/128/192/320, depths 2/2/5/2, FFN ×3, heads of 32: about 1 GMAC at 224."""
    dims, depths = (64, 128, 192, 320), (2, 2, 5, 2)
    return HybridCfg(
        stages=tuple(
            HybridStageCfg(dim=c, depth=d, mixer=m) for c, d, m in zip(dims, depths, mixers)
        )
    )


_NOTE = (
    "Ours, not a published architecture (no paper, no published figures): archlab's hybrid "
    "skeleton with {what}, sized to about 1 GMAC and 5M parameters at 224."
)

PRESETS: dict[str, Preset] = {
    # ParC in the two high-resolution stages (FFT at 56², direct conv at 28²), PLG attention late.
    "hybrid_plg_parc": Preset(
        _cfg(("parc", "parc", "plg", "plg")),
        note=_NOTE.format(what="ParC mixers in stages 0-1 and PLG attention in stages 2-3"),
    ),
    # One idea per stage: ParC at 56², hourglass (7×7 grid) at 28², PLG at 14², Former tokens at 7².
    "hybrid_all_four": Preset(
        _cfg(("parc", "hourglass", "plg", "former")),
        note=_NOTE.format(
            what="a different global mixer per stage: ParC (stage 0), hourglass attention (1), "
            "PLG attention (2), Former tokens (3)"
        ),
    ),
}


def reduce_to(cfg: Any, resolution: int, scale: float) -> Any:
    """This config adapted to ``resolution`` for the accuracy estimates (archlab.estimate.reduced):
    map-tied sizes scaled by ``scale``."""
    stages = []
    for stage, size in zip(cfg.stages, cfg.stage_sizes(resolution)):
        wanted = max(1, round(stage.hourglass_size * scale))
        divisors = [p for p in range(1, size + 1) if size % p == 0]
        stages.append(
            dataclasses.replace(
                stage,
                plg_window=scaled_size(stage.plg_window, scale, size),
                plg_global_window=scaled_size(stage.plg_global_window, scale, size),
                hourglass_size=min(divisors, key=lambda p: (abs(p - wanted), p)),
            )
        )
    return dataclasses.replace(cfg, stages=tuple(stages), design_resolution=resolution)

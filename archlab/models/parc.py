"""ParC-Net and the ParC-ConvNets (ParC-ConvNeXt, ParC-MobileNetV2, ParC-ResNet), one generator.

Papers: Zhang et al., "ParC-Net: Position Aware Circular Convolution with Merits from ConvNets and
Transformer", ECCV 2022 (arXiv 2203.03952); Yang et al., "Fast-ParC", arXiv 2210.04020, 2022.
Origin: ``hkzhang91/ParC-Net`` (``edgeformer`` configs for ParC-Net, ``ParC_ConvNets/`` for the
others), written anew here; described block by block in ``docs/families.md`` section 4.

``backbone`` selects the layout; all four share the ParC operator of ``archlab.layers.parc``:

* ``parcnet`` (ParC-Net, MobileViT layout, SiLU): stem → five stages of MobileNetV2 blocks, the last
  three ending in a ParC outer block (local 3×3 → PW → n ParC blocks → BN → PW → fusion with the
  input) → PW head conv → GAP → dropout → linear. A ParC block is a two-pass ParC mixer (H→W on one
  channel half, W→H on the other), a BN-FFN with Hardswish and channel attention.
* ``convnext``, ``mobilenetv2``, ``resnet``: the classic networks with the spatial conv of their
  last ``parc_depth`` blocks per stage (DW 7×7, DW 3×3, dense 3×3) replaced by a one-pass ParC pair
  (ParC-H on one half, ParC-W on the other).

Differences from the official code, all switchable or harmless:

* ``impl`` "fft"/"auto" computes ParC through the FFT (Fast-ParC); the output is the same up to
  rounding. Presets use "direct", the op the published figures were measured with.
* The official ParC-ConvNets store exact-length kernels and only run at 224×224; here their kernels
  are meta kernels (the 224 lengths) resized like ParC-Net's, so they run at any multiple of 32 and
  are unchanged at 224. ParC-Net itself supported square maps only (length taken from H); here
  ParC-H and ParC-W resize to H and W separately.
* Classification heads are ours in detail (dropout placement); widths and counts follow the code.

code≠paper (docs/families.md section 4): ParC-Net's ParC convs run without bias (the yaml omits it);
ParC-Net uses two passes per half, the ConvNets one; ParC-ResNet50's ParC conv is dense across each
half's channels (``parc_dense=True``), not depthwise. Presets follow the code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from archlab.layers import (
    ConvNeXtBlock,
    ConvNormAct,
    DropPath,
    LayerNorm2d,
    MobileNetV2Block,
    ResNetBottleneck,
    drop_path_rates,
    mv2_hidden,
)
from archlab.layers.parc import ParCMixer
from archlab.models.family import Preset

__all__ = ["ParCStageCfg", "ParCNetCfg", "ParCNet", "PRESETS"]

Backbone = Literal["parcnet", "convnext", "mobilenetv2", "resnet"]
_BACKBONES = ("parcnet", "convnext", "mobilenetv2", "resnet")
_ACT = {"parcnet": "silu", "convnext": "gelu", "mobilenetv2": "relu6", "resnet": "relu"}
_STEM_STRIDE = {"parcnet": 2, "convnext": 4, "mobilenetv2": 2, "resnet": 4}


@dataclass(frozen=True)
class ParCStageCfg:
    dim: int  # output channels c_i (ResNet: bottleneck width; the stage outputs dim·expand)
    depth: int  # plain blocks: MV2 (parcnet, mobilenetv2), ConvNeXt blocks or bottlenecks
    stride: int = 2  # stride of the stage's first block (ConvNeXt: of its downsampling layer)
    expand: float = 4.0  # MV2 expansion; ConvNeXt MLP ratio; ResNet bottleneck expansion
    parc_depth: int = 0  # parcnet: ParC blocks n_i in the outer block; else: last blocks with ParC
    parc_dim: int = 0  # parcnet only: inner ParC width P_i of the outer block (even)
    ffn_ratio: float = 2.0  # parcnet only: FFN width F_i / P_i
    meta_size: int = 0  # meta kernel/PE length: this stage's map size at the training resolution

    def __post_init__(self) -> None:
        if self.dim < 1 or self.depth < 0 or self.parc_depth < 0:
            raise ValueError(
                f"dim must be ≥ 1 and depth, parc_depth ≥ 0; got dim={self.dim}, "
                f"depth={self.depth}, parc_depth={self.parc_depth}"
            )
        if self.stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {self.stride}")
        if self.expand <= 0 or self.ffn_ratio <= 0:
            raise ValueError(
                f"expand and ffn_ratio must be positive, got {self.expand}, {self.ffn_ratio}"
            )
        if self.parc_depth and self.meta_size < 1:
            raise ValueError(f"a stage with parc_depth={self.parc_depth} needs meta_size ≥ 1")


@dataclass(frozen=True)
class ParCNetCfg:
    stages: tuple[ParCStageCfg, ...]  # parcnet: layer1..layer5; ConvNets: their stages
    backbone: Backbone = "parcnet"  # layout; see the module docstring
    stem_dim: int = 16  # stem output channels
    stem_kernel: int = 3  # parcnet stem conv size (ParC-Net-H: 5)
    head_dim: int | None = None  # 1×1 conv before pooling (ParC-Net min(4·c5, 960), MV2 1280)
    fusion: Literal["add", "concat"] = "concat"  # parcnet outer block: input fused by add or concat
    channel_attn: bool = True  # parcnet ParC block: "gcc_ca" (True) or "gcc" (False)
    pe: Literal["first", "every", "none"] = "first"  # PE in a stage's first ParC block, all, none
    parc_bias: bool = False  # bias in the ParC convs (off in ParC-Net's yaml, on in the ConvNets)
    parc_dense: bool = False  # ParC conv dense across each half's channels (ParC-ResNet50's code)
    resize: Literal["bilinear", "crop"] = "bilinear"  # meta kernel → map length
    impl: Literal["direct", "fft", "auto"] = "auto"  # ParC computation; identical outputs
    drop_rate: float = 0.2  # dropout before the classifier
    ffn_drop_rate: float = 0.1  # parcnet: dropout at the end of the ParC block FFN
    drop_path_rate: float = 0.0  # stochastic depth over ConvNeXt blocks / ParC blocks

    def __post_init__(self) -> None:
        if self.backbone not in _BACKBONES:
            raise ValueError(f"backbone must be one of {_BACKBONES}, got {self.backbone!r}")
        if not self.stages:
            raise ValueError("stages must not be empty")
        if self.stem_dim < 1 or self.stem_kernel not in (3, 5, 7):
            raise ValueError(
                f"stem_dim must be ≥ 1 and stem_kernel 3, 5 or 7; got {self.stem_kernel}"
            )
        if self.head_dim is not None and self.head_dim < 1:
            raise ValueError(f"head_dim must be positive or null, got {self.head_dim}")
        in_chs = self.stem_dim
        for i, stage in enumerate(self.stages):
            self._check_stage(i, stage, in_chs)
            in_chs = _stage_out(self, stage)

    def _check_stage(self, i: int, stage: ParCStageCfg, in_chs: int) -> None:
        where = f"stages.{i}"
        if self.backbone == "parcnet":
            if stage.depth < 1:
                raise ValueError(f"{where}.depth must be ≥ 1 (the stage's first MV2 block)")
            if stage.parc_depth and (stage.parc_dim < 2 or stage.parc_dim % 2):
                raise ValueError(f"{where}.parc_dim must be even and ≥ 2, got {stage.parc_dim}")
            return
        if stage.parc_depth > stage.depth:
            raise ValueError(f"{where}.parc_depth={stage.parc_depth} exceeds depth={stage.depth}")
        strided_first = self.backbone != "convnext" and stage.stride > 1
        if strided_first and stage.parc_depth == stage.depth:
            raise ValueError(f"{where}: the strided first block cannot be a ParC block")
        out_chs = _stage_out(self, stage)
        for j in range(stage.depth - stage.parc_depth, stage.depth):
            width = _parc_width(self, stage, in_chs if j == 0 else out_chs)
            if width % 2:
                raise ValueError(
                    f"{where}: block {j} would run ParC on {width} channels; it must be even"
                )

    def check_resolution(self, resolution: int) -> None:
        """Raise ValueError unless the model can run at ``resolution`` × ``resolution``.

        The input must divide by the total stride; with ``resize="crop"`` every ParC map must be no
        longer than its meta kernel (crop cannot grow a kernel).
        """
        stride = _STEM_STRIDE[self.backbone] * math.prod(s.stride for s in self.stages)
        if resolution < stride or resolution % stride:
            raise ValueError(f"input resolution must be divisible by {stride}, got {resolution}")
        size = resolution // _STEM_STRIDE[self.backbone]
        for i, stage in enumerate(self.stages):
            size //= stage.stride
            if self.resize == "crop" and stage.parc_depth and size > stage.meta_size:
                raise ValueError(
                    f"resize='crop': stages.{i} map {size}×{size} at input {resolution} exceeds "
                    f"its meta_size={stage.meta_size}; use resize='bilinear' or a smaller input"
                )


def _stage_out(cfg: ParCNetCfg, stage: ParCStageCfg) -> int:
    return round(stage.dim * stage.expand) if cfg.backbone == "resnet" else stage.dim


def _parc_width(cfg: ParCNetCfg, stage: ParCStageCfg, block_in: int) -> int:
    """Channels the ParC pair of a ConvNet block with ``block_in`` input channels runs on."""
    return mv2_hidden(block_in, stage.expand) if cfg.backbone == "mobilenetv2" else stage.dim


def _pe_at(cfg: ParCNetCfg, index: int) -> bool:
    """Whether the ``index``-th ParC block of a stage gets position embeddings."""
    return cfg.pe == "every" or (cfg.pe == "first" and index == 0)


def _parc_pair(cfg: ParCNetCfg, dim: int, meta_size: int, pe: bool) -> ParCMixer:
    """The ParC-ConvNets' spatial op: one pass, ParC-H on one half and ParC-W on the other."""
    return ParCMixer(dim, meta_size, passes=1, pe=pe, norm=False, bias=cfg.parc_bias,
                     dense=cfg.parc_dense, resize=cfg.resize, impl=cfg.impl)  # fmt: skip


# The classic blocks keep these class names: a block's key (archlab.measurement.blocks) and the
# predictor's per-kind rates start from the class name, so saved device profiles keep matching.
class _InvertedResidual(MobileNetV2Block):
    """:class:`archlab.layers.MobileNetV2Block` (ParC-Net's MV2 blocks, ParC-MobileNetV2)."""


class _ConvNeXtBlock(ConvNeXtBlock):
    """:class:`archlab.layers.ConvNeXtBlock` (ParC-ConvNeXt)."""


class _Bottleneck(ResNetBottleneck):
    """:class:`archlab.layers.ResNetBottleneck` (ParC-ResNet50)."""


class _ChannelAttention(nn.Module):
    """ParC-Net's "ca": x · HSig(BN(PW(BN/HSwish(PW(GAP x))))) with bias-free PWs, reduction 16."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        rd = max(1, dim // 16)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            ConvNormAct(dim, rd, 1, act="hardswish"),
            ConvNormAct(rd, dim, 1, act="hardsigmoid"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)  # (B, C, H, W) · (B, C, 1, 1)


class _ParCBlock(nn.Module):
    """ParC-Net block on P channels, NCHW: x + ParCMixer(x) (two passes), then y + CA(FFN(y)).

    FFN = BN → PW(P→F) → Hardswish → PW(F→P) → Dropout, both PWs with bias.
    """

    def __init__(
        self, dim: int, stage: ParCStageCfg, cfg: ParCNetCfg, pe: bool, drop_path: float
    ) -> None:
        super().__init__()
        hidden = max(1, round(dim * stage.ffn_ratio))
        self.mixer = ParCMixer(dim, stage.meta_size, passes=2, pe=pe, norm=True,
                               bias=cfg.parc_bias, resize=cfg.resize, impl=cfg.impl)  # fmt: skip
        self.ffn = nn.Sequential(
            nn.BatchNorm2d(dim),
            nn.Conv2d(dim, hidden, 1),
            nn.Hardswish(),
            nn.Conv2d(hidden, dim, 1),
            nn.Dropout(cfg.ffn_drop_rate),
        )
        self.attn = _ChannelAttention(dim) if cfg.channel_attn else nn.Identity()
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.mixer(x))
        return x + self.drop_path(self.attn(self.ffn(x)))


class _ParCOuter(nn.Module):
    """ParC-Net's MobileViT-shaped block: C → P (3×3, groups gcd) → PW → n ParC blocks → BN →
    PW (P → C, groups gcd) → fuse with the input (concat + 3×3 2C→C, or add + 3×3 C→C). NCHW."""

    def __init__(self, stage: ParCStageCfg, cfg: ParCNetCfg, drop_paths: list[float]) -> None:
        super().__init__()
        dim, inner = stage.dim, stage.parc_dim
        groups = math.gcd(dim, inner)
        self.local = nn.Sequential(
            ConvNormAct(dim, inner, 3, groups=groups, act="silu"),
            nn.Conv2d(inner, inner, 1, bias=False),
        )
        self.blocks = nn.Sequential(
            *(_ParCBlock(inner, stage, cfg, _pe_at(cfg, j), drop_paths[j])
              for j in range(stage.parc_depth))
        )  # fmt: skip
        self.norm = nn.BatchNorm2d(inner)
        self.project = ConvNormAct(inner, dim, 1, groups=groups, act="silu")
        self.concat = cfg.fusion == "concat"
        self.fuse = ConvNormAct(2 * dim if self.concat else dim, dim, 3, act="silu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.norm(self.blocks(self.local(x))))  # (B, C, H, W)
        return self.fuse(torch.cat([y, x], dim=1) if self.concat else y + x)


def _parcnet_stage(
    cfg: ParCNetCfg, stage: ParCStageCfg, in_chs: int, drop_paths: list[float]
) -> nn.Sequential:
    blocks: list[nn.Module] = [
        _InvertedResidual(in_chs if j == 0 else stage.dim, stage.dim,
                          stage.stride if j == 0 else 1, stage.expand, "silu")
        for j in range(stage.depth)
    ]  # fmt: skip
    if stage.parc_depth:
        blocks.append(_ParCOuter(stage, cfg, drop_paths))
    return nn.Sequential(*blocks)


def _convnet_stage(
    cfg: ParCNetCfg, stage: ParCStageCfg, in_chs: int, drop_paths: list[float]
) -> nn.Sequential:
    """A ConvNeXt / MobileNetV2 / ResNet stage whose last ``parc_depth`` blocks use a ParC pair."""
    first_parc = stage.depth - stage.parc_depth
    out_chs = _stage_out(cfg, stage)
    blocks: list[nn.Module] = []
    if cfg.backbone == "convnext" and (stage.stride > 1 or in_chs != stage.dim):
        blocks.append(nn.Sequential(
            LayerNorm2d(in_chs, eps=1e-6),
            nn.Conv2d(in_chs, stage.dim, stage.stride, stride=stage.stride),
        ))  # fmt: skip
        in_chs = stage.dim
    for j in range(stage.depth):
        cin, stride = (in_chs, stage.stride) if j == 0 else (out_chs, 1)
        mixer = None
        if j >= first_parc:
            width = _parc_width(cfg, stage, cin)
            mixer = _parc_pair(cfg, width, stage.meta_size, _pe_at(cfg, j - first_parc))
        if cfg.backbone == "convnext":
            blocks.append(_ConvNeXtBlock(stage.dim, stage.expand, mixer, drop_paths[j]))
        elif cfg.backbone == "mobilenetv2":
            blocks.append(_InvertedResidual(cin, out_chs, stride, stage.expand, "relu6", mixer))
        else:
            blocks.append(_Bottleneck(cin, stage.dim, out_chs, stride, mixer))
    return nn.Sequential(*blocks)


def _stem(cfg: ParCNetCfg, in_chans: int) -> nn.Module:
    if cfg.backbone == "convnext":
        return nn.Sequential(nn.Conv2d(in_chans, cfg.stem_dim, 4, stride=4),
                             LayerNorm2d(cfg.stem_dim, eps=1e-6))  # fmt: skip
    if cfg.backbone == "resnet":
        return nn.Sequential(ConvNormAct(in_chans, cfg.stem_dim, 7, 2, act="relu"),
                             nn.MaxPool2d(3, stride=2, padding=1))  # fmt: skip
    kernel = cfg.stem_kernel if cfg.backbone == "parcnet" else 3
    return ConvNormAct(in_chans, cfg.stem_dim, kernel, 2, act=_ACT[cfg.backbone])


class ParCNet(nn.Module):
    """ParC-Net or a ParC-ConvNet (``cfg.backbone``). Input (B, 3, H, W) with H, W divisible by the
    total stride (32 for every preset); output (B, classes). NCHW throughout."""

    def __init__(self, cfg: ParCNetCfg, num_classes: int = 1000, in_chans: int = 3) -> None:
        super().__init__()
        self.cfg = cfg
        parcnet = cfg.backbone == "parcnet"
        counts = [s.parc_depth if parcnet else s.depth for s in cfg.stages]
        dpr = drop_path_rates(counts, cfg.drop_path_rate)
        build = _parcnet_stage if parcnet else _convnet_stage
        self.stem = _stem(cfg, in_chans)
        stages, in_chs = [], cfg.stem_dim
        for i, stage in enumerate(cfg.stages):
            stages.append(build(cfg, stage, in_chs, dpr[i]))
            in_chs = _stage_out(cfg, stage)
        self.stages = nn.Sequential(*stages)
        self.head_conv: nn.Module = nn.Identity()
        if cfg.head_dim:
            self.head_conv = ConvNormAct(in_chs, cfg.head_dim, 1, act=_ACT[cfg.backbone])
        self.num_features = cfg.head_dim or in_chs
        is_convnext = cfg.backbone == "convnext"
        self.norm = nn.LayerNorm(self.num_features, eps=1e-6) if is_convnext else nn.Identity()
        self.drop = nn.Dropout(cfg.drop_rate)
        self.head = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))  # (B, C_last, H/32, W/32)
        return self.head_conv(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.norm(x.mean(dim=(2, 3)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _parcnet(
    stem: tuple[int, int], widths: tuple[int, ...], parc_dims: tuple[int, int, int],
    parc_depths: tuple[int, int, int], fusion: Literal["add", "concat"],
) -> ParCNetCfg:  # fmt: skip
    """ParC-Net layout: layer1 (1 MV2, s1), layer2 (3 MV2, s2), layers 3-5 (MV2 s2 + ParC outer
    block, meta kernels 32/16/8 = the maps at 256×256); head conv min(4·c5, 960)."""
    c1, c2, c3, c4, c5 = widths
    stages = (
        ParCStageCfg(c1, depth=1, stride=1),
        ParCStageCfg(c2, depth=3, stride=2),
        *(
            ParCStageCfg(c, depth=1, stride=2, parc_depth=n, parc_dim=p, meta_size=m)
            for c, p, n, m in zip((c3, c4, c5), parc_dims, parc_depths, (32, 16, 8))
        ),
    )
    return ParCNetCfg(stages=stages, stem_dim=stem[0], stem_kernel=stem[1],
                      head_dim=min(4 * c5, 960), fusion=fusion, impl="direct")  # fmt: skip


_PARCNET_SOURCE = "hkzhang91/ParC-Net cvnets edgeformer config (see docs/families.md, section 4)"
_CONVNETS_NOTE = (
    "hkzhang91/ParC-Net ParC_ConvNets (see docs/families.md, section 4); kernels are meta "
    "kernels at their 224 lengths, so the model also runs at other resolutions. Published 'Madds' "
    "are about half of what fvcore/thop/ptflops give for the official code at 224 (unexplained; "
    "the README lists plain ResNet-50 as 2.1 G, half the usual 4.1 GMACs): not reproducible."
)

PRESETS: dict[str, Preset] = {
    "parc_net_xs": Preset(
        _parcnet((16, 3), (32, 64, 96, 128, 160), (96, 128, 160), (2, 3, 2), "add"),
        published="ParC-Net-XS",
        resolution=256,
        note=f"{_PARCNET_SOURCE} scale_xs; no published params/MAdds/top-1.",
    ),
    "parc_net_s": Preset(
        _parcnet((16, 3), (32, 64, 96, 128, 160), (192, 256, 320), (2, 4, 3), "concat"),
        published="ParC-Net-S",
        resolution=256,
        params_m=5.0,
        macs_g=1.74,
        top1=78.6,
        note=(
            f"{_PARCNET_SOURCE}. Published 1.74 G MAdds at 256 come from the authors' per-module "
            "profiler (it also charges bias/add terms and the channel-attention MLP per pixel); "
            "fvcore on the official code at 256 is ~3% lower."
        ),
    ),
    "parc_net_h": Preset(
        _parcnet((48, 5), (96, 144, 216, 288, 432), (324, 432, 432), (3, 9, 3), "concat"),
        published="ParC-Net-H",
        resolution=256,
        note=f"{_PARCNET_SOURCE} scale_h; no published params/MAdds/top-1.",
    ),
    "parc_convnext_xt": Preset(
        ParCNetCfg(
            stages=(
                ParCStageCfg(48, depth=3, stride=1, meta_size=56),
                ParCStageCfg(96, depth=3, stride=2, meta_size=28),
                ParCStageCfg(192, depth=9, stride=2, parc_depth=3, meta_size=14),
                ParCStageCfg(384, depth=3, stride=2, parc_depth=1, meta_size=7),
            ),
            backbone="convnext",
            stem_dim=48,
            pe="every",
            parc_bias=True,
            impl="direct",
            drop_rate=0.0,
        ),
        published="ParC-ConvNeXt-XT",
        params_m=7.4,
        macs_g=0.6,
        macs_reproducible=False,
        top1=78.3,
        note=_CONVNETS_NOTE,
    ),
    "parc_mobilenetv2": Preset(
        ParCNetCfg(
            stages=(
                ParCStageCfg(16, depth=1, stride=1, expand=1),
                ParCStageCfg(24, depth=2, stride=2, expand=6),
                ParCStageCfg(32, depth=3, stride=2, expand=6),
                ParCStageCfg(64, depth=4, stride=2, expand=6, parc_depth=2, meta_size=14),
                ParCStageCfg(96, depth=3, stride=1, expand=6, parc_depth=1, meta_size=14),
                ParCStageCfg(160, depth=3, stride=2, expand=6, parc_depth=1, meta_size=7),
                ParCStageCfg(320, depth=1, stride=1, expand=6),
            ),
            backbone="mobilenetv2",
            stem_dim=32,
            head_dim=1280,
            pe="first",
            parc_bias=True,
            impl="direct",
        ),
        published="ParC-MobileNetV2",
        params_m=3.5,
        macs_g=0.3,
        top1=71.1,
        note=(
            "hkzhang91/ParC-Net ParC_ConvNets (see docs/families.md, section 4); the published "
            "0.3 G agrees with fvcore at 224. Kernels are meta kernels at their 224 lengths."
        ),
    ),
    "parc_resnet50": Preset(
        ParCNetCfg(
            stages=(
                ParCStageCfg(64, depth=3, stride=1),
                ParCStageCfg(128, depth=4, stride=2),
                ParCStageCfg(256, depth=6, stride=2, parc_depth=3, meta_size=14),
                ParCStageCfg(512, depth=3, stride=2, parc_depth=1, meta_size=7),
            ),
            backbone="resnet",
            stem_dim=64,
            pe="every",
            parc_bias=True,
            parc_dense=True,
            impl="direct",
            drop_rate=0.0,
        ),
        published="ParC-ResNet50",
        params_m=24.0,
        macs_g=2.0,
        macs_reproducible=False,
        top1=79.6,
        note=_CONVNETS_NOTE + " ParC conv dense per half (groups=1), as in the code.",
    ),
}

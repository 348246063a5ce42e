"""ParC, the position-aware circular convolution (ParC-Net), computed directly or through the FFT.

Papers: Zhang et al., "ParC-Net: Position Aware Circular Convolution with Merits from ConvNets
and Transformer", ECCV 2022 (arXiv 2203.03952); Yang et al., "Fast-ParC: Capturing Position Aware
Global Feature for ConvNets and ViTs", arXiv 2210.04020, 2022. See ``docs/families.md`` section 4.

ParC-H on ``x`` (B, C, H, W) with a kernel ``k`` (C, H) is a depthwise circular cross-correlation
along H, ``y[c, i, j] = b[c] + Σ_t k[c, t] · x[c, (i + t) mod H, j]``: every output sees its whole
column. ParC-W is the same along W. Parameters are stored at a "meta" length M and resized to the
actual length L at run time (bilinear with ``align_corners=True`` as in ParC-Net, or "crop" to the
first L taps), so one model runs at several resolutions. Two implementations give the same result:

* ``direct`` (ParC-Net's): wrap-pad the first L-1 rows after the last, then a valid conv with an
  L×1 kernel: C·H·W·L MACs.
* ``fft`` (Fast-ParC): ``y = irfft(rfft(x) · conj(rfft(k))) + b`` along the axis, O(C·H·W·log L).
  The conj makes it a correlation, which is what the wrap-and-conv computes.

``impl="auto"`` picks by length with thresholds measured by ``bench/parc_fft.py`` (see
:func:`parc_uses_fft`).
An ONNX export always holds the direct path (the exporter emits no complex FFT), so ``impl`` does
not change what ONNX Runtime runs. The kernel spectrum is recomputed on every forward (it is
C·L·log L work, counted by ``archlab.measurement.flops``) rather than cached, so training and
inference run the same code.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "FFT_MAX_SMALL_LENGTH",
    "FFT_MIN_LENGTH",
    "FFT_MIN_LENGTH_DENSE",
    "ParCConv",
    "ParCMixer",
    "ParCPosEmbed",
    "parc_uses_fft",
    "resize_meta",
]

ParCImpl = Literal["direct", "fft", "auto"]
ResizeMode = Literal["bilinear", "crop"]
Axis = Literal["h", "w"]

#: ``impl="auto"`` (depthwise ParC) uses the FFT for L ≤ FFT_MAX_SMALL_LENGTH or L ≥ FFT_MIN_LENGTH
#: and the direct conv in between; dense ParC uses the FFT for L ≥ FFT_MIN_LENGTH_DENSE. Derived
#: from ``bench/parc_fft.py``: ParC-H on a (1, C, L, L) map, 1 thread, inference mode, torch 2.13
#: CPU, a 2-core AMD EPYC shared with other jobs; speed-up direct / FFT by thread CPU time (> 1: the
#: FFT is faster):
#:
#: ==============  =====  =====  =====  =====  =====  =====  =====
#: L               7      14     28     40     56     80     112
#: ==============  =====  =====  =====  =====  =====  =====  =====
#: depthwise C=48  1.77   1.46   1.03   0.87   1.11   1.64   2.55
#: depthwise C=96  1.49   1.14   0.85   0.81   1.00   1.62   1.92
#: depthwise C=192 1.17   0.83   0.76   0.82   1.05   2.06   2.00
#: dense C=64      0.20   0.52   1.40
#: dense C=128     0.17   0.52   1.48
#: ==============  =====  =====  =====  =====  =====  =====  =====
#:
#: Reading: on tiny maps the direct path's fixed cost (wrap-pad + conv dispatch, ~0.1 ms) dominates
#: and the FFT wins at every width; from L ≈ 48 on the FFT's O(log L) work per element beats the
#: direct O(L) at every width, 2-2.5× at 112. In between the direct conv wins for wide layers
#: (0.76-0.88×) and narrow ones are within run-to-run noise (±20% here). A longer run at
#: C = 48, 96, 160, 216 put the large-L crossover between 40 (0.78-0.91×) and 56 (1.08-1.41×) at
#: every width, and showed L = 21 (= 3·7) to be a slow FFT length (0.4-0.9×). The rule picks the
#: faster implementation in 24 of the 27 rows above; the misses are narrow layers at L = 14-28.
#: Dense ParC's FFT mixes channels per frequency on complex data: 5× slower at L = 7, 2× at 14.
FFT_MAX_SMALL_LENGTH = 8
FFT_MIN_LENGTH = 48
FFT_MIN_LENGTH_DENSE = 28


def parc_uses_fft(impl: str, length: int, dense: bool = False) -> bool:
    """Whether a ParC op over ``length`` taps runs through the FFT under ``impl``.

    Raises:
        ValueError: ``impl`` is not "direct", "fft" or "auto".
    """
    if impl not in ("direct", "fft", "auto"):
        raise ValueError(f"impl must be 'direct', 'fft' or 'auto', got {impl!r}")
    if impl != "auto":
        return impl == "fft"
    if dense:
        return length >= FFT_MIN_LENGTH_DENSE
    return length <= FFT_MAX_SMALL_LENGTH or length >= FFT_MIN_LENGTH


def resize_meta(param: torch.Tensor, length: int, mode: str) -> torch.Tensor:
    """Resize stored parameters (..., M) to (..., length) along the last dimension.

    Args:
        param: kernel or position embedding stored at the meta length M.
        length: the feature map's length L along the ParC axis.
        mode: "bilinear" (``align_corners=True``, ParC-Net) or "crop" (first L taps; L ≤ M).

    Raises:
        ValueError: unknown mode, or "crop" asked to grow the kernel.
    """
    meta = param.shape[-1]
    if length == meta:
        return param
    if mode == "crop":
        if length > meta:
            raise ValueError(
                f"resize='crop' cannot grow a meta kernel of {meta} to length {length}"
            )
        return param[..., :length]
    if mode != "bilinear":
        raise ValueError(f"resize must be 'bilinear' or 'crop', got {mode!r}")
    # Plain ints for the sizes, so the ONNX exporter sees a kernel of known shape.
    lead = [int(n) for n in param.shape[:-1]]
    flat = param.reshape(1, -1, int(meta), 1)  # (1, C', M, 1)
    out = F.interpolate(flat, size=(int(length), 1), mode="bilinear", align_corners=True)
    return out.reshape(*lead, int(length))


def _dim_of(axis: str) -> int:
    if axis not in ("h", "w"):
        raise ValueError(f"axis must be 'h' or 'w', got {axis!r}")
    return 2 if axis == "h" else 3


def _along(vec: torch.Tensor, dim: int) -> torch.Tensor:
    """(..., L) → (..., L, 1) for dim 2 (H) or (..., 1, L) for dim 3 (W)."""
    return vec.unsqueeze(-1) if dim == 2 else vec.unsqueeze(-2)


class ParCPosEmbed(nn.Module):
    """Learned position embedding along one axis, ``x + pe[c, i]`` broadcast over the other axis.

    NCHW in and out. Stored at the meta length and resized like the ParC kernel; initialised with
    ``randn`` (std 1), as ParC-Net does.
    """

    def __init__(
        self, dim: int, axis: Axis, meta_size: int, resize: ResizeMode = "bilinear"
    ) -> None:
        super().__init__()
        self.dim_index = _dim_of(axis)
        self.resize = resize
        self.pe = nn.Parameter(torch.randn(dim, meta_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pe = resize_meta(self.pe, x.shape[self.dim_index], self.resize)  # (C, L)
        return x + _along(pe, self.dim_index)


class ParCConv(nn.Module):
    """Circular convolution along H ("h") or W ("w") with a kernel as long as that axis. NCHW.

    Args:
        dim: channels (in and out).
        axis: "h" (ParC-H) or "w" (ParC-W).
        meta_size: stored kernel length M; resized to the map's length at run time.
        bias: add a per-channel bias.
        dense: ``groups=1`` across the channels (ParC-ResNet50's code) instead of depthwise.
        resize: "bilinear" or "crop" (see :func:`resize_meta`).
        impl: "direct" (wrap-pad + conv), "fft" (Fast-ParC) or "auto" (by length).
    """

    def __init__(
        self,
        dim: int,
        axis: Axis,
        meta_size: int,
        bias: bool = False,
        dense: bool = False,
        resize: ResizeMode = "bilinear",
        impl: ParCImpl = "auto",
    ) -> None:
        super().__init__()
        parc_uses_fft(impl, 1)  # validates impl
        self.dim, self.dim_index, self.dense = dim, _dim_of(axis), dense
        self.resize, self.impl = resize, impl
        shape = (dim, dim, meta_size) if dense else (dim, meta_size)
        bound = 1.0 / math.sqrt(meta_size * (dim if dense else 1))  # nn.Conv2d's default init
        self.weight = nn.Parameter(torch.empty(shape).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(dim).uniform_(-bound, bound)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.dim_index
        length = x.shape[d]
        k = resize_meta(self.weight, length, self.resize)  # (C, L) or (C_out, C_in, L)
        # ONNX has no real-to-complex FFT the exporter can emit: the exported graph computes the
        # same correlation directly.
        if parc_uses_fft(self.impl, length, self.dense) and not torch.onnx.is_in_onnx_export():
            y = self._fft(x, k)
            return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)
        return self._direct(x, k)

    def _direct(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        # int(): a fixed length keeps the map's shape known to the ONNX exporter
        d, length = self.dim_index, int(x.shape[self.dim_index])
        x = torch.cat([x, x.narrow(d, 0, length - 1)], dim=d)  # wrap: (.., 2L-1, ..) along d
        weight = _along(
            k if self.dense else k.unsqueeze(1), d
        )  # (C_out, C_in/groups, L, 1)|(.., 1, L)
        return F.conv2d(x, weight, self.bias, groups=1 if self.dense else self.dim)

    def _fft(self, x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        d, length = self.dim_index, x.shape[self.dim_index]
        spec = torch.fft.rfft(x, dim=d)  # (B, C, F, W) or (B, C, H, F), F = L//2 + 1
        kspec = torch.fft.rfft(k, dim=-1).conj()  # correlation, not convolution
        if self.dense:
            spec = _complex_channel_mix(spec, kspec, d)
        else:
            spec = spec * _along(kspec, d)  # complex product per bin
        return torch.fft.irfft(spec, n=length, dim=d)


def _complex_channel_mix(spec: torch.Tensor, kspec: torch.Tensor, d: int) -> torch.Tensor:
    """``Y[b, o, f] = Σ_c K[o, c, f] · X[b, c, f]`` as one real matmul per frequency.

    With ``K = Kr + i·Ki`` and ``X = Xr + i·Xi``: ``[Yr; Yi] = [[Kr, -Ki], [Ki, Kr]] · [Xr; Xi]``,
    i.e. four real multiply-adds per complex one, which fvcore's matmul handler counts as such.
    """
    c_out = kspec.shape[0]
    x = spec.movedim(d, 0).transpose(1, 2)  # (F, C, B, R), R = the other spatial axis
    f, c, b, r = x.shape
    x = torch.cat([x.real, x.imag], dim=1).reshape(f, 2 * c, b * r)  # (F, 2C, B·R)
    kr, ki = kspec.real.permute(2, 0, 1), kspec.imag.permute(2, 0, 1)  # (F, C_out, C_in)
    mix = torch.cat([torch.cat([kr, -ki], dim=2), torch.cat([ki, kr], dim=2)], dim=1)  # (F, 2O, 2C)
    y = (mix @ x).reshape(f, 2, c_out, b, r)  # (F, re/im, O, B, R)
    y = torch.complex(y[:, 0], y[:, 1])  # (F, O, B, R)
    return y.transpose(1, 2).movedim(0, d)  # (B, O, F, R) or (B, O, R, F)


class _ParCPass(nn.Module):
    """One ParC pass over the two channel halves: the first along ``axes[0]``, the second along
    ``axes[1]``; each half gets its PE, then its BatchNorm, then its ParC conv."""

    def __init__(
        self, half: int, axes: tuple[Axis, Axis], meta_size: int, pe: bool, norm: bool,
        bias: bool, dense: bool, resize: ResizeMode, impl: ParCImpl,
    ) -> None:  # fmt: skip
        super().__init__()

        def embed(axis: Axis) -> nn.Module:
            return ParCPosEmbed(half, axis, meta_size, resize) if pe else nn.Identity()

        def conv(axis: Axis) -> ParCConv:
            return ParCConv(half, axis, meta_size, bias, dense, resize, impl)

        self.pe1, self.pe2 = embed(axes[0]), embed(axes[1])
        self.norm1 = nn.BatchNorm2d(half) if norm else nn.Identity()
        self.norm2 = nn.BatchNorm2d(half) if norm else nn.Identity()
        self.conv1, self.conv2 = conv(axes[0]), conv(axes[1])

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x1 = self.conv1(self.norm1(self.pe1(x1)))
        x2 = self.conv2(self.norm2(self.pe2(x2)))
        return x1, x2


class ParCMixer(nn.Module):
    """Global spatial mixer from ParC ops: split channels in two, run ParC-H on one half and ParC-W
    on the other, concat. NCHW in and out, same shape; no residual (the caller adds it).

    With ``passes=2`` (ParC-Net's "gcc" mixer) a second pass runs the other axis on each half
    (H→W and W→H), so every output position sees the whole map: a drop-in global token mixer.
    ``passes=1`` is the ParC-ConvNets' pair, a replacement for a depthwise conv. Each pass adds its
    position embeddings first (``pe``); ``norm`` puts a BatchNorm before the first pass's convs.

    Args:
        dim: channels; must be even.
        meta_size: stored kernel/PE length (the map size at the training resolution).
        passes: 1 or 2.
        pe: learned position embeddings.
        norm: BatchNorm on each half before the first pass (ParC-Net).
        bias: bias in the ParC convs.
        dense: dense ParC across each half's channels (ParC-ResNet50) instead of depthwise.
        resize: "bilinear" or "crop".
        impl: "direct", "fft" or "auto".

    Example:
        >>> mixer = ParCMixer(64, meta_size=14).eval()
        >>> mixer(torch.randn(2, 64, 14, 10)).shape
        torch.Size([2, 64, 14, 10])
    """

    def __init__(
        self,
        dim: int,
        meta_size: int,
        passes: int = 2,
        pe: bool = True,
        norm: bool = True,
        bias: bool = False,
        dense: bool = False,
        resize: ResizeMode = "bilinear",
        impl: ParCImpl = "auto",
    ) -> None:
        super().__init__()
        if dim % 2 or dim < 2:
            raise ValueError(f"ParCMixer needs an even number of channels, got dim={dim}")
        if passes not in (1, 2):
            raise ValueError(f"passes must be 1 or 2, got {passes}")
        half = dim // 2
        both: list[tuple[Axis, Axis]] = [("h", "w"), ("w", "h")]
        orders = both[:passes]
        self.passes = nn.ModuleList(
            _ParCPass(half, axes, meta_size, pe, norm and i == 0, bias, dense, resize, impl)
            for i, axes in enumerate(orders)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)  # 2 × (B, C/2, H, W)
        for parc_pass in self.passes:
            x1, x2 = parc_pass(x1, x2)
        return torch.cat([x1, x2], dim=1)  # (B, C, H, W)

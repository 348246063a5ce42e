"""Adaptive pooling to a fixed grid that also exports to ONNX.

The TorchScript-based ONNX exporter turns ``adaptive_{max,avg}_pool2d`` into a fixed pool only
when it still knows the input's spatial size and that size is a multiple of the output; after the
channel split of PLG-SA it has lost the size and refuses ("input size not accessible"). Here:

* the output divides the map: a plain pool with kernel = stride = map ÷ output, exactly the
  adaptive result, in eager and in the exported graph alike;
* otherwise, eager keeps torch's adaptive op; while exporting, the same bins (row ``i`` covers
  ``floor(i·H/G) .. ceil((i+1)·H/G)``, as in torch's kernel) are reduced with slices, first along
  H then along W. Max and mean over a bin are separable, so the result equals the adaptive op.

Used by PLG-SA's global branch and the hourglass block (SBCFormer, hybrid).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

__all__ = ["adaptive_pool2d"]


def _bins(size: int, out: int) -> list[tuple[int, int]]:
    """(start, end) of each of ``out`` adaptive-pooling bins over ``size`` positions."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _sliced(x: torch.Tensor, grid: tuple[int, int], mode: str) -> torch.Tensor:
    """Adaptive pooling as slices and reductions (exportable at a fixed input size)."""
    h, w = int(x.shape[-2]), int(x.shape[-1])

    def reduce(t: torch.Tensor, dim: int) -> torch.Tensor:
        return t.amax(dim=dim) if mode == "max" else t.mean(dim=dim)

    rows = [reduce(x[..., s:e, :], -2) for s, e in _bins(h, grid[0])]
    x = torch.stack(rows, dim=-2)  # (B, C, G_h, W)
    cols = [reduce(x[..., s:e], -1) for s, e in _bins(w, grid[1])]
    return torch.stack(cols, dim=-1)  # (B, C, G_h, G_w)


def adaptive_pool2d(
    x: torch.Tensor, size: int | tuple[int, int], mode: Literal["max", "avg"]
) -> torch.Tensor:
    """Pool an NCHW map to ``size`` (an int or (H, W)) by max or mean over torch's adaptive bins.

    Example:
        >>> x = torch.randn(1, 2, 10, 9)
        >>> torch.equal(adaptive_pool2d(x, 4, "max"), F.adaptive_max_pool2d(x, 4))
        True
    """
    grid = (size, size) if isinstance(size, int) else size
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if h % grid[0] == 0 and w % grid[1] == 0:
        kernel = (h // grid[0], w // grid[1])
        return F.max_pool2d(x, kernel) if mode == "max" else F.avg_pool2d(x, kernel)
    if torch.onnx.is_in_onnx_export():
        return _sliced(x, grid, mode)
    return F.adaptive_max_pool2d(x, grid) if mode == "max" else F.adaptive_avg_pool2d(x, grid)

"""archlab.layers.pool: adaptive pooling that equals torch's and exports to ONNX."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from ci import require_module

from archlab.layers import PlgAttention, adaptive_pool2d
from archlab.layers.pool import _sliced
from archlab.measurement.backends import prepare

SIZES = [(14, 14, 7), (14, 14, 5), (10, 9, 4), (7, 7, 7), (9, 13, 7), (3, 5, 4)]


def _onnxruntime() -> None:
    """Skip without onnxruntime (fail in CI, which installs the extra)."""
    require_module("onnxruntime")


@pytest.mark.parametrize(("h", "w", "grid"), SIZES)
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool_equals_torchs_adaptive_pool(h: int, w: int, grid: int, mode: str) -> None:
    x = torch.randn(2, 3, h, w)
    expected = F.adaptive_max_pool2d(x, grid) if mode == "max" else F.adaptive_avg_pool2d(x, grid)
    torch.testing.assert_close(adaptive_pool2d(x, grid, mode), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(_sliced(x, (grid, grid), mode), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("sampling", ["max", "max_avg"])
@pytest.mark.parametrize("size", [14, 12])  # 14: the global window divides the map; 12: it does not
def test_plg_attention_exports_and_matches_on_onnxruntime(sampling: str, size: int) -> None:
    _onnxruntime()
    torch.manual_seed(0)
    attn = PlgAttention(32, 16, 2, 2, window=7, global_window=7, sampling=sampling).eval()
    x = torch.randn(1, 32, size, size)
    with torch.inference_mode():
        expected = attn(x)
        got = torch.as_tensor(prepare(attn, x, "onnxruntime")()[0])
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)

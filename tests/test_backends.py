from __future__ import annotations

import pytest
import torch
from ci import require_module
from torch import nn

from archlab.measurement.backends import check_options, prepare
from archlab.models import FAMILIES

PRESETS = [(f.name, name) for f in FAMILIES.values() for name in f.presets]


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 10 * 10, 4)
    ).eval()


def _output(out: object) -> torch.Tensor:
    return torch.as_tensor(out[0] if isinstance(out, list) else out)  # ORT returns a list


@pytest.mark.parametrize(
    ("backend", "memory_format"),
    [
        ("eager", "contiguous"),
        ("eager", "channels_last"),
        ("torchscript", "contiguous"),
        ("torchscript", "channels_last"),
        ("onnxruntime", "contiguous"),
    ],
)
def test_every_backend_computes_the_model(backend: str, memory_format: str) -> None:
    if backend == "onnxruntime":
        require_module("onnxruntime")
    model, x = _net(), torch.randn(1, 3, 12, 12)
    with torch.inference_mode():
        expected = model(x)
        run = prepare(model, x, backend, memory_format)
        got = _output(run())
    assert torch.allclose(got, expected, atol=1e-5)


def test_channels_last_leaves_the_callers_model_alone() -> None:
    model = _net()
    prepare(model, torch.randn(1, 3, 12, 12), "eager", "channels_last")
    assert model[0].weight.is_contiguous()


@pytest.mark.parametrize(
    ("backend", "memory_format", "message"),
    [
        ("tensorrt", "contiguous", "unknown backend"),
        ("eager", "nhwc", "unknown memory format"),
        ("onnxruntime", "channels_last", "eager and torchscript only"),
    ],
)
def test_bad_options_are_rejected(backend: str, memory_format: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_options(backend, memory_format)


def test_a_model_onnx_cannot_export_is_a_clear_error() -> None:
    require_module("onnxruntime")
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ChannelShuffle(2))
    with pytest.raises(ValueError, match="cannot be exported to ONNX"):
        prepare(model, torch.randn(1, 3, 8, 8), "onnxruntime")


@pytest.mark.slow
@pytest.mark.parametrize(("family", "preset"), PRESETS)
def test_every_preset_runs_on_onnxruntime_as_in_pytorch(family: str, preset: str) -> None:
    require_module("onnxruntime")
    spec = FAMILIES[family].presets[preset]
    torch.manual_seed(0)
    model = FAMILIES[family].build(spec.cfg, num_classes=10).eval()
    x = torch.randn(1, 3, spec.resolution, spec.resolution)
    with torch.inference_mode():
        expected = model(x)
        got = _output(prepare(model, x, "onnxruntime")())
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)

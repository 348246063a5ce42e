"""The onnxruntime-int8 backend: ONNX Runtime's dynamic int8 quantisation, and how far it strays."""

from __future__ import annotations

import sys

import pytest
import torch
from ci import require_module
from torch import nn

from archlab.measurement.backends import check_options, prepare
from archlab.measurement.latency import measure_latency
from archlab.measurement.onnx_runtime import int8_agreement
from archlab.models import FAMILIES
from archlab.study.settings import SearchSpec

# A loose bound: per-tensor int8 weights move a small model's logits by about a percent.
REL_ERROR_LIMIT = 0.05


def _needs_onnx() -> None:
    """Skip without the onnx extra (fail in CI, which installs it)."""
    require_module("onnxruntime.quantization")


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 10 * 10, 10)
    ).eval()


def test_int8_outputs_stay_close_to_float() -> None:
    _needs_onnx()
    model, x = _net(), torch.randn(1, 3, 12, 12)
    with torch.inference_mode():
        expected = model(x)
        got = torch.as_tensor(prepare(model, x, "onnxruntime-int8")()[0])
    rel = (got - expected).pow(2).mean().sqrt() / expected.pow(2).mean().sqrt()
    assert 0 < rel < REL_ERROR_LIMIT  # quantised (not bit-identical), yet close


def test_int8_agreement_of_a_small_model() -> None:
    _needs_onnx()
    found = int8_agreement(_net(), 12, images=16, seed=3)
    assert found.images == 16 and found.seed == 3
    assert 1 <= found.float_classes <= 10
    assert found.top1_agreement >= 0.9 and found.centred_top1_agreement >= 0.75
    assert 0 < found.logits_rel_error < REL_ERROR_LIMIT
    assert "top-1 agreement with float" in str(found)


def test_int8_agreement_needs_two_images() -> None:
    with pytest.raises(ValueError, match="at least two images"):
        int8_agreement(_net(), 12, images=1)


def test_a_model_without_linear_layers_is_refused() -> None:
    _needs_onnx()
    with pytest.raises(ValueError, match="Conv2d has no MatMul or Gemm node"):
        prepare(nn.Conv2d(3, 4, 3), torch.randn(1, 3, 8, 8), "onnxruntime-int8")


def test_a_failing_quantiser_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _needs_onnx()
    import onnxruntime.quantization

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("shape inference failed on node /attn/MatMul")

    monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", fail)
    with pytest.raises(
        ValueError,
        match=r"Sequential cannot be quantised to int8 by ONNX Runtime \(RuntimeError: shape",
    ):
        prepare(_net(), torch.randn(1, 3, 12, 12), "onnxruntime-int8")


def test_a_model_onnx_cannot_export_names_the_int8_backend() -> None:
    _needs_onnx()
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ChannelShuffle(2), nn.Flatten())
    with pytest.raises(ValueError, match="cannot be exported to ONNX for the 'onnxruntime-int8'"):
        prepare(model, torch.randn(1, 3, 8, 8), "onnxruntime-int8")


def test_without_the_onnx_package_the_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _needs_onnx()
    monkeypatch.setitem(sys.modules, "onnx", None)  # import fails as if not installed
    with pytest.raises(ValueError, match="'onnxruntime-int8' needs the `onnx` package of the"):
        prepare(_net(), torch.randn(1, 3, 12, 12), "onnxruntime-int8")


def test_int8_takes_no_memory_format_and_a_search_accepts_it() -> None:
    with pytest.raises(ValueError, match="eager and torchscript only"):
        check_options("onnxruntime-int8", "channels_last")
    SearchSpec(backend="onnxruntime-int8").validate()


@pytest.mark.slow
def test_int8_backend_measures_a_preset_close_to_float() -> None:
    _needs_onnx()
    spec = FAMILIES["mobileformer"].presets["mobileformer_26m"]
    torch.manual_seed(0)
    model = FAMILIES["mobileformer"].build(spec.cfg).eval()
    lat = measure_latency(
        model, spec.resolution, backend="onnxruntime-int8", min_runs=3, max_runs=3, guard=False
    )
    assert lat.env.backend == "onnxruntime-int8" and lat.runs == 3 and lat.median_ms > 0
    found = int8_agreement(model, spec.resolution, images=8)
    assert found.top1_agreement >= 0.75  # its random images mostly get one class at float
    assert found.logits_rel_error < REL_ERROR_LIMIT

"""Inference backends for latency measurement: eager PyTorch, TorchScript, ONNX Runtime.

:func:`prepare` turns a model and an example input into a zero-argument callable that runs one
forward pass, so every timing loop (``measure_latency``, ``measure_many``) treats backends alike:

* ``eager``: the module itself (``memory_format`` applies to weights and input);
* ``torchscript``: ``torch.jit.trace`` then ``torch.jit.freeze`` (weights folded into the graph);
* ``onnxruntime`` (optional extra ``archlab[onnx]``): exported with the TorchScript-based exporter
  (``torch.onnx.export(..., dynamo=False)``: the dynamo exporter needs ``onnxscript``), run by one
  sequential session with ``threads`` intra-op threads and 1 inter-op thread, all graph
  optimisations on;
* ``onnxruntime-int8`` (same extra): that export with the weights of its linear layers (``MatMul``,
  ``Gemm``) quantised to int8 by ONNX Runtime's dynamic quantisation, run the same way
  (:mod:`archlab.measurement.onnx_runtime`, which also compares its outputs with float ones).

Call the returned callable under ``torch.inference_mode()``.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from archlab.measurement.onnx_runtime import export_onnx, quantize_int8, session

__all__ = ["BACKENDS", "MEMORY_FORMATS", "ONNX_BACKENDS", "Runner", "check_options", "prepare"]

BACKENDS = ("eager", "torchscript", "onnxruntime", "onnxruntime-int8")
ONNX_BACKENDS = ("onnxruntime", "onnxruntime-int8")
MEMORY_FORMATS = ("contiguous", "channels_last")

Runner = Callable[[], Any]


def check_options(backend: str, memory_format: str) -> None:
    """Raise ValueError for an unknown backend or memory format, or an impossible pair."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {list(BACKENDS)}")
    if memory_format not in MEMORY_FORMATS:
        raise ValueError(
            f"unknown memory format {memory_format!r}; choose from {list(MEMORY_FORMATS)}"
        )
    if backend in ONNX_BACKENDS and memory_format != "contiguous":
        raise ValueError(
            "memory format applies to eager and torchscript only; ONNX Runtime picks "
            "its own layouts (use --memory-format contiguous)"
        )


def _with_format(
    model: nn.Module, example: torch.Tensor, memory_format: str
) -> tuple[nn.Module, torch.Tensor]:
    if memory_format == "contiguous":
        return model, example
    # A copy, so the caller's model keeps its layout for counting and other backends.
    fmt = torch.channels_last
    # Module.to takes memory_format= at run time (see its docstring); torch's overloads omit it.
    copied = copy.deepcopy(model).to(memory_format=fmt)  # type: ignore[call-overload]
    return copied, example.contiguous(memory_format=fmt)


def _torchscript(model: nn.Module, example: torch.Tensor) -> Runner:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frozen = torch.jit.freeze(torch.jit.trace(model, example))
    return lambda: frozen(example)


def _onnxruntime(model: nn.Module, example: torch.Tensor, threads: int, backend: str) -> Runner:
    onnx_model = export_onnx(model, example, backend)
    name = type(model).__name__
    if backend == "onnxruntime-int8":
        onnx_model = quantize_int8(onnx_model, name)
    run_session = session(onnx_model, threads, name)
    feed = {"input": example.numpy()}
    return lambda: run_session.run(None, feed)


def prepare(
    model: nn.Module,
    example: torch.Tensor,
    backend: str = "eager",
    memory_format: str = "contiguous",
    threads: int = 1,
) -> Runner:
    """A callable running one forward pass of ``model`` on ``example`` with ``backend``.

    Raises:
        ValueError: unknown backend or memory format, ONNX Runtime not installed, or a model the
            backend cannot export, quantise or load.

    Example:
        >>> run = prepare(nn.Conv2d(3, 8, 3), torch.randn(1, 3, 16, 16), "torchscript")
        >>> with torch.inference_mode():
        ...     tuple(run().shape)
        (1, 8, 14, 14)
    """
    check_options(backend, memory_format)
    model.eval()
    model, example = _with_format(model, example, memory_format)
    if backend == "torchscript":
        return _torchscript(model, example)
    if backend in ONNX_BACKENDS:
        return _onnxruntime(model, example, threads, backend)
    return lambda: model(example)

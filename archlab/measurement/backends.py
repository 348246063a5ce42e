"""Inference backends for latency measurement: eager PyTorch, TorchScript, ONNX Runtime.

:func:`prepare` turns a model and an example input into a zero-argument callable that runs one
forward pass, so every timing loop (``measure_latency``, ``measure_many``) treats backends alike:

* ``eager``: the module itself (``memory_format`` applies to weights and input);
* ``torchscript``: ``torch.jit.trace`` then ``torch.jit.freeze`` (weights folded into the graph);
* ``onnxruntime`` (optional extra ``archlab[onnx]``): exported with the TorchScript-based exporter
  (``torch.onnx.export(..., dynamo=False)``: the dynamo exporter needs ``onnxscript``), run by one
  sequential session with ``threads`` intra-op threads and 1 inter-op thread, all graph
  optimisations on.

Call the returned callable under ``torch.inference_mode()``.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Callable
from contextlib import redirect_stderr
from typing import Any

import torch
from torch import nn

__all__ = ["BACKENDS", "MEMORY_FORMATS", "Runner", "check_options", "prepare"]

BACKENDS = ("eager", "torchscript", "onnxruntime")
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
    if backend == "onnxruntime" and memory_format != "contiguous":
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


def _onnxruntime(model: nn.Module, example: torch.Tensor, threads: int) -> Runner:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ValueError(
            "backend 'onnxruntime' needs the optional extra: pip install 'archlab[onnx]'"
        ) from None
    buffer = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings(), redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                buffer,  # type: ignore[arg-type]  # the TorchScript exporter writes to file objects
                dynamo=False,
                opset_version=17,
                input_names=["input"],
                output_names=["output"],
            )
    except Exception as err:  # the exporter raises many types; all mean "cannot export"
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        reason = text.split(". Please")[0][:200]  # drop the exporter's request for a PR
        raise ValueError(
            f"{type(model).__name__} cannot be exported to ONNX for the 'onnxruntime' "
            f"backend: {reason}"
        ) from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    feed = {"input": example.numpy()}
    return lambda: session.run(None, feed)


def prepare(
    model: nn.Module,
    example: torch.Tensor,
    backend: str = "eager",
    memory_format: str = "contiguous",
    threads: int = 1,
) -> Runner:
    """A callable running one forward pass of ``model`` on ``example`` with ``backend``.

    Raises:
        ValueError: unknown backend or memory format, or ONNX Runtime not installed.

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
    if backend == "onnxruntime":
        return _onnxruntime(model, example, threads)
    return lambda: model(example)

"""ONNX export, dynamic int8 quantisation and ONNX Runtime sessions (optional extra ``onnx``).

The ``onnxruntime`` and ``onnxruntime-int8`` backends (:mod:`archlab.measurement.backends`) are
built from these pieces:

* :func:`export_onnx`: the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``:
  the dynamo exporter needs ``onnxscript``), opset 17, one input ``input`` and one output
  ``output``, shapes fixed to the example's;
* :func:`quantize_int8`: ONNX Runtime's own dynamic quantisation
  (``onnxruntime.quantization.quantize_dynamic``, which needs the ``onnx`` package too). The
  weights of ``MatMul`` and ``Gemm`` nodes (linear layers: attention projections, MLPs, the
  classifier) are stored as signed int8 with one scale per tensor; their inputs are quantised on
  the fly at every pass. Convolutions stay float: ONNX Runtime has no optimised CPU kernel for
  dynamically quantised convolutions (``ConvInteger``), which made every family several times
  slower than float in a first check, and its documentation advises static quantisation for
  convolutional networks. ``quant_pre_process`` (symbolic shape inference and graph optimisation)
  is not run: ``quantize_dynamic`` infers shapes with ``onnx`` itself and found every weight
  ``MatMul``/``Gemm`` of one preset per family without it, while the symbolic shape inference
  failed on PLG-ViT. A model of which no node was quantised is refused;
* :func:`session`: one sequential CPU session with ``threads`` intra-op threads, 1 inter-op thread
  and all graph optimisations;
* :func:`int8_agreement`: how far the int8 model's outputs stray from the float model's on a fixed
  batch of random images (top-1 agreement, also of the image-dependent part of the logits, and
  relative error of the logits): with no trained accuracy at hand, the accuracy cost of
  quantisation in figures.
"""

from __future__ import annotations

import io
import logging
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "INT8_OP_TYPES",
    "Int8Agreement",
    "export_onnx",
    "int8_agreement",
    "quantize_int8",
    "session",
]

INT8_OP_TYPES = ("MatMul", "Gemm")
# Nodes that hold a quantised weight after quantize_dynamic (and ONNX Runtime's fusions of them).
_QUANTISED_OPS = {"MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"}


def _first_line(err: BaseException, limit: int = 200) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:limit]


def _import_ort(backend: str) -> Any:
    """``onnxruntime``, once ``onnx`` (which the exporter and the quantiser need) imports too."""
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError as err:
        raise ValueError(
            f"backend {backend!r} needs the `{err.name}` package of the optional extra: "
            "pip install 'archlab[onnx]'"
        ) from None
    return onnxruntime


def export_onnx(model: nn.Module, example: torch.Tensor, backend: str = "onnxruntime") -> bytes:
    """``model`` (in eval mode) as an ONNX model for inputs shaped like ``example``.

    Args:
        backend: the backend that asked, for the error message.

    Raises:
        ValueError: ``onnx`` or ONNX Runtime is missing, or the exporter cannot export the model;
            the message gives its reason.
    """
    _import_ort(backend)
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
        reason = _first_line(err).split(". Please")[0]  # drop the exporter's request for a PR
        raise ValueError(
            f"{type(model).__name__} cannot be exported to ONNX for the {backend!r} "
            f"backend: {reason}"
        ) from None
    return buffer.getvalue()


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Mute the quantiser's root-logger warnings (one per integer tensor it skips) and drop the
    handler that ``logging.warning`` installs on the root logger when it has none."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    previous = root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)
        root.handlers[:] = handlers


def quantize_int8(model: bytes, name: str) -> bytes:
    """The dynamically quantised int8 version of an ONNX model (see the module docstring).

    Args:
        model: the float ONNX model (:func:`export_onnx`).
        name: the model's name, for error messages.

    Raises:
        ValueError: ``onnx`` or ONNX Runtime is missing, quantisation failed, or it left no node
            quantised; the message names the model and the reason.
    """
    _import_ort("onnxruntime-int8")
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="archlab-int8-") as tmp:
        source, out = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(model)
        try:
            with _quiet_root_logger(), redirect_stderr(io.StringIO()):
                quantize_dynamic(
                    str(source),
                    str(out),
                    op_types_to_quantize=list(INT8_OP_TYPES),
                    weight_type=QuantType.QInt8,
                )
        except Exception as err:  # the quantiser raises many types; all mean "cannot quantise"
            raise ValueError(
                f"{name} cannot be quantised to int8 by ONNX Runtime "
                f"({type(err).__name__}: {_first_line(err)})"
            ) from None
        quantised = out.read_bytes()
    ops = {node.op_type for node in onnx.load_from_string(quantised).graph.node}
    if not ops & _QUANTISED_OPS:
        raise ValueError(
            f"{name} has no {' or '.join(INT8_OP_TYPES)} node with constant weights: dynamic int8 "
            "quantisation would leave it unchanged"
        )
    return quantised


def session(model: bytes, threads: int = 1, name: str = "the model") -> Any:
    """An ONNX Runtime CPU session: ``threads`` intra-op threads, sequential, all optimisations.

    Raises:
        ValueError: ONNX Runtime is missing or cannot load the model (e.g. an op it has no CPU
            kernel for); the message names ``name`` and the reason.
    """
    ort = _import_ort("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # ONNX Runtime raises its own exception types
        raise ValueError(f"ONNX Runtime cannot load {name}: {_first_line(err)}") from None


@dataclass(frozen=True)
class Int8Agreement:
    """How the int8 model's outputs compare with the float model's (both run by ONNX Runtime)."""

    images: int
    top1_agreement: float  # share of images whose top-1 class is the same under both
    float_classes: int  # distinct top-1 classes of the float model over the images
    # the same share once each model's mean logits over the images are subtracted: the top-1 of
    # what depends on the image (an untrained model gives most random images one class)
    centred_top1_agreement: float
    logits_rel_error: float  # RMS of (int8 − float) logits over RMS of the float logits
    # RMS of the float logits minus their mean over the images, over RMS of the float logits: how
    # much the output depends on the image (near 0 for some untrained models, whose centred
    # agreement then compares noise with noise)
    image_dependence: float
    seed: int  # of the random images

    def __str__(self) -> str:
        def share(value: float) -> str:
            return f"{round(value * self.images)}/{self.images} ({100 * value:.1f}%)"

        return (
            f"top-1 agreement with float {share(self.top1_agreement)}, float top-1 in "
            f"{self.float_classes} class(es); {share(self.centred_top1_agreement)} with each "
            f"model's mean logits removed; logits off by {100 * self.logits_rel_error:.2f}% (RMS), "
            f"while they vary by {100 * self.image_dependence:.2g}% between images; "
            f"{self.images} random images, seed {self.seed}"
        )


def int8_agreement(
    model: nn.Module,
    resolution: int,
    *,
    images: int = 32,
    seed: int = 0,
    threads: int = 1,
) -> Int8Agreement:
    """Top-1 agreement of the int8 model with the float model on ``images`` random images.

    Both are the models the ``onnxruntime`` and ``onnxruntime-int8`` backends time (exported at
    batch 1); the images, drawn from a standard normal with ``seed``, go through one at a time,
    so that activations are quantised per image as in a batch-1 measurement. The weights are the
    model's own: at initialisation (the search is training-free) the figure says how much int8
    perturbs the arch's function, not what it costs a trained model. An untrained model tends to
    give most images the same class, which makes the plain top-1 agreement an easy test (see
    ``float_classes``); the centred agreement compares the top-1 of what depends on the image,
    which means something only where that part exceeds the int8 error (``image_dependence``
    against ``logits_rel_error``).

    Raises:
        ValueError: fewer than two images, or the model cannot be exported, quantised or loaded.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
        >>> int8_agreement(net, 8, images=4).images  # doctest: +SKIP
        4
    """
    if images < 2:
        raise ValueError(f"need at least two images; got images={images}")
    model.eval()
    name = type(model).__name__
    batch = torch.randn(
        images, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed)
    )
    float_model = export_onnx(model, batch[:1], "onnxruntime-int8")
    float_session = session(float_model, threads, name)
    int8_session = session(quantize_int8(float_model, name), threads, f"{name} (int8)")
    floats, int8s = (
        np.concatenate([s.run(None, {"input": image[None].numpy()})[0] for image in batch])
        .reshape(images, -1)
        .astype(np.float64)
        for s in (float_session, int8_session)
    )
    rms = float(np.sqrt(np.mean(floats**2))) or 1.0
    err = float(np.sqrt(np.mean((int8s - floats) ** 2)))
    spread = float(np.sqrt(np.mean((floats - floats.mean(0)) ** 2)))
    return Int8Agreement(
        images=images,
        top1_agreement=_same_top1(floats, int8s),
        float_classes=len(set(floats.argmax(1).tolist())),
        centred_top1_agreement=_same_top1(floats - floats.mean(0), int8s - int8s.mean(0)),
        logits_rel_error=err / rms,
        image_dependence=spread / rms,
        seed=seed,
    )


def _same_top1(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.argmax(1) == b.argmax(1)).mean())

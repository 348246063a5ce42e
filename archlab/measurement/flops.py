"""MAC counting: fvcore as the reference, with handlers for every op our models use; thop beside it.

Convention (the papers' "FLOPs"): one fused multiply-add = one MAC. fvcore counts convolutions,
linear layers, matmuls, einsum, norms (a few ops per element) and resampling. We add:

* ``scaled_dot_product_attention``: the two matmuls it hides, ``N·S·(E + Ev)`` per head;
* ``linalg_vector_norm`` (GRN) and ``mean`` (SE, pooling heads): one MAC per input element, the same
  convention fvcore applies to ``adaptive_avg_pool2d``;
* FFTs (Fast-ParC): ``fft_rfft``/``fft_irfft`` of N points cost 2.5·N·log2 N real FLOPs per
  transform (half a complex FFT's 5·N·log2 N), counted as **1.25·N·log2 N MACs** (FLOPs / 2, so that
  :attr:`MacCount.flops` gives the FLOPs back); a product of complex tensors (``aten::mul``) costs
  4 real multiplies per element, each fused with an add where there is one: **4 MACs** (2 when one
  factor is real). Real ``aten::mul`` stays element-wise, 0 MACs;
* element-wise ops (activations, softmax, adds, gates, max pooling, padding): **0 MACs by
  convention**. They are not skipped silently: each is listed with how often it ran in
  :attr:`MacCount.convention_zero_ops`, and an op that has no entry anywhere lands in
  :attr:`MacCount.unsupported_ops`, which the test suite requires to stay empty for every model.
"""

from __future__ import annotations

import copy
import io
import logging
import math
from collections import Counter
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from typing import Any

import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape
from torch import nn

__all__ = [
    "CONVENTION_ZERO_OPS",
    "EXTRA_MAC_HANDLES",
    "MacCount",
    "count_macs",
    "count_params",
    "count_thop_macs",
]

Handle = Callable[[list[Any], list[Any]], int]


def _sdpa_macs(inputs: list[Any], outputs: list[Any]) -> int:
    q, k, v = (get_shape(x) for x in inputs[:3])
    rows = math.prod(q[:-1])  # B · heads · L
    return rows * k[-2] * q[-1] + rows * k[-2] * v[-1]  # q·kᵀ and attn·v


def _numel_of_input(inputs: list[Any], outputs: list[Any]) -> int:
    return math.prod(get_shape(inputs[0]))


def _is_complex(value: Any) -> bool:
    kind = value.type()
    return isinstance(kind, torch._C.TensorType) and str(kind.scalarType()).startswith("Complex")


def _real_fft_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::fft_rfft`` / ``aten::fft_irfft`` along one dimension of N points.

    An N-point real FFT (or its inverse) costs about 2.5·N·log2(N) real FLOPs, half of a complex
    FFT's 5·N·log2(N) (the usual radix-2 estimate; pocketfft does this or less for the mixed radices
    ParC's lengths 7, 14, 28 need). At 2 FLOPs per MAC that is 1.25·N·log2(N) MACs per transform,
    times the number of transforms (the real tensor's elements / N). N = 1 costs 0.
    """
    real = outputs[0] if _is_complex(inputs[0]) else inputs[0]  # irfft: output; rfft: input
    shape = get_shape(real)
    dim = inputs[2].toIValue()
    n = shape[dim]
    given = inputs[1].toIValue() if inputs[1].node().kind() == "prim::Constant" else None
    if given is not None and not _is_complex(inputs[0]):  # rfft(x, n): x cropped/padded to n
        n = given
    transforms = math.prod(shape) // max(shape[dim], 1)
    return round(1.25 * transforms * n * math.log2(n)) if n > 1 else 0


def _mul_macs(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::mul``: 0 for real products (element-wise by convention), counted for complex ones.

    A complex product (a+bi)(c+di) = (ac-bd) + (ad+bc)i is 4 real multiplies, two of them fused with
    the adds: 4 MACs per output element (in FLOPs = 2×MACs that reads 8 where 6 real operations run;
    the multiply-count reading keeps it equal to the 4 real MACs of the same product written as a
    real matmul, as the dense Fast-ParC path does). A complex tensor times a real one: 2 MACs.
    """
    complex_factors = sum(_is_complex(x) for x in inputs[:2])
    if complex_factors == 0:
        return 0
    return math.prod(get_shape(outputs[0])) * (4 if complex_factors == 2 else 2)


#: Ops with real arithmetic that fvcore does not know, and our formula for them.
EXTRA_MAC_HANDLES: dict[str, Handle] = {
    "aten::scaled_dot_product_attention": _sdpa_macs,
    "aten::linalg_vector_norm": _numel_of_input,
    "aten::mean": _numel_of_input,
    "aten::fft_rfft": _real_fft_macs,
    "aten::fft_irfft": _real_fft_macs,
    "aten::mul": _mul_macs,
}

#: Element-wise or data-movement ops: 0 MACs by the papers' convention, listed in every count.
CONVENTION_ZERO_OPS: frozenset[str] = frozenset(
    {
        "aten::add", "aten::add_", "aten::sub", "aten::rsub", "aten::mul", "aten::mul_",
        "aten::div", "aten::div_", "aten::neg", "aten::abs", "aten::sqrt", "aten::rsqrt",
        "aten::pow", "aten::exp",
        "aten::gelu", "aten::silu", "aten::silu_", "aten::sigmoid", "aten::hardsigmoid",
        "aten::hardswish", "aten::hardswish_", "aten::hardtanh", "aten::hardtanh_",
        "aten::relu6", "aten::tanh", "aten::softmax", "aten::log_softmax", "aten::maximum",
        "aten::minimum", "aten::where",
        "aten::adaptive_max_pool2d", "aten::max_pool2d", "aten::avg_pool2d", "aten::pad",
        "aten::repeat", "aten::channel_shuffle", "aten::pixel_shuffle", "aten::mean_",
        "aten::sum", "aten::embedding", "aten::flip", "aten::clone", "aten::fill_",
        "aten::feature_dropout", "aten::alpha_dropout", "aten::repeat_interleave",
        "aten::_conj", "aten::conj", "aten::real", "aten::imag", "aten::complex", "aten::movedim",
    }
)  # fmt: skip


@dataclass
class MacCount:
    """A MAC count with its breakdown and everything the counter did not turn into MACs."""

    total: int
    by_module: dict[str, int]
    by_operator: dict[str, int]
    convention_zero_ops: dict[str, int] = field(default_factory=dict)
    unsupported_ops: dict[str, int] = field(default_factory=dict)

    @property
    def flops(self) -> int:
        return 2 * self.total


def count_params(model: nn.Module) -> int:
    """Number of parameters (shared tensors counted once)."""
    return sum(p.numel() for p in model.parameters())


def _analysis(
    model: nn.Module, example: torch.Tensor, zero_tally: Counter[str]
) -> FlopCountAnalysis:
    def zero(op: str) -> Handle:
        def handle(inputs: list[Any], outputs: list[Any]) -> int:
            zero_tally[op] += 1
            return 0

        return handle

    analysis = FlopCountAnalysis(model, example)
    analysis.set_op_handle(**{op: zero(op) for op in CONVENTION_ZERO_OPS})

    def tallied(op: str, handle: Handle) -> Handle:
        # an op with a formula that may also be element-wise (aten::mul: complex products count,
        # real ones do not) still lists its zero-MAC calls
        def wrapped(inputs: list[Any], outputs: list[Any]) -> int:
            macs = handle(inputs, outputs)
            if macs == 0 and op in CONVENTION_ZERO_OPS:
                zero_tally[op] += 1
            return macs

        return wrapped

    analysis.set_op_handle(**{op: tallied(op, h) for op, h in EXTRA_MAC_HANDLES.items()})
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    return analysis


def count_macs(
    model: nn.Module, resolution: int | tuple[int, int], batch: int = 1, in_chans: int = 3
) -> MacCount:
    """Count MACs of one forward pass with fvcore plus archlab's handlers.

    Args:
        model: the model (put in eval mode for the count).
        resolution: input size, ``224`` or ``(H, W)``.
        batch: batch size of the traced input.
        in_chans: channels of the traced input (blocks tested alone take other widths).

    Returns:
        The total, per-module and per-operator counts, and the ops counted as 0.
    """
    h, w = (resolution, resolution) if isinstance(resolution, int) else resolution
    was_training = model.training
    model.eval()
    zero_tally: Counter[str] = Counter()
    try:
        example = torch.randn(batch, in_chans, h, w)
        with torch.no_grad():
            analysis = _analysis(model, example, zero_tally)
            total = int(analysis.total())
            by_module = {k: int(v) for k, v in analysis.by_module().items()}
            by_operator = {k: int(v) for k, v in analysis.by_operator().items()}
            unsupported = dict(analysis.unsupported_ops())
    finally:
        model.train(was_training)
    return MacCount(total, by_module, by_operator, dict(zero_tally), unsupported)


def count_thop_macs(model: nn.Module, resolution: int | tuple[int, int]) -> int:
    """thop's MAC count, for comparison only: thop sees registered modules, not functional ops.

    It therefore misses attention matmuls (``F.scaled_dot_product_attention``), GRN and FFTs, and
    counts BatchNorm and a module registered under two names twice. Runs on a copy of the model,
    since thop attaches buffers to the modules it profiles.
    """
    import thop  # imported lazily: it prints on import in some versions

    h, w = (resolution, resolution) if isinstance(resolution, int) else resolution
    clone = copy.deepcopy(model).eval()
    logging.getLogger("thop").setLevel(logging.ERROR)
    with torch.no_grad(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        macs, _ = thop.profile(clone, inputs=(torch.randn(1, 3, h, w),), verbose=False)
    return int(macs)

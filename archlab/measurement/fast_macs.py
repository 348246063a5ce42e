"""Fast MAC count: the total of :func:`archlab.measurement.flops.count_macs` from one plain forward
pass.

``count_macs`` JIT-traces the model through fvcore, which costs several times the forward pass
itself. Here the forward runs once under ``torch.inference_mode()`` inside a dispatch mode. With
autograd off, the mode sees each aten op the Python code called (``aten::linear``,
``aten::layer_norm``, ``aten::scaled_dot_product_attention``, ...) before it is decomposed: the
ops the JIT tracer records. Each gets the reference's formula, fvcore's default handles
(convolutions, linear layers, matmuls, einsum, norms, resampling) or
:data:`archlab.measurement.flops.EXTRA_MAC_HANDLES`, in MACs.

Two more rules keep the totals equal:

* an op with no formula must be zero by convention
(:data:`archlab.measurement.flops.CONVENTION_ZERO_OPS`) or
  ignored by fvcore (views, ``cat``, ``relu``, ...); anything else raises
  :class:`UncountedOpError`. No op is skipped silently, and a count that returns has no
  unsupported ops;
* the traced graph is cleaned of dead code, so fvcore skips an op whose result the output does
  not use, unless only its shape is read or it writes in place into a live tensor, which an eager
  pass cannot see in full. The pass therefore records which op read which op's result; if an op
  with MACs does not feed the output, the count is left to ``count_macs`` (slow but exact).

Known limit: ``fft_rfft(x, n)`` counts ``n`` points, while fvcore counts the input's length when
``n`` is computed from a traced shape rather than written as a constant.
"""

from __future__ import annotations

import functools
import logging
import math
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from fvcore.nn.jit_analysis import _IGNORED_OPS
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from archlab.measurement.blocks import BlockFeatures, BlockInfo, BlockRecorder
from archlab.measurement.flops import CONVENTION_ZERO_OPS, count_macs
from archlab.measurement.memory import ActivationPeak

_log = logging.getLogger(__name__)

__all__ = [
    "MAC_FORMULAS",
    "BlockCount",
    "UncountedOpError",
    "ZERO_OPS",
    "count_macs_fast",
    "count_macs_with_blocks",
]

#: A formula gets the op's arguments by name (defaults filled in) and its output.
Formula = Callable[[dict[str, Any], Any], int]


class UncountedOpError(RuntimeError):
    """The model ran an op that has neither a MAC formula nor a place in the zero-MAC lists."""


def _numel(t: torch.Tensor) -> int:
    return math.prod(t.shape)


def _conv(args: dict[str, Any], out: torch.Tensor, transposed: bool | None = None) -> int:
    """fvcore's ``conv_flop_jit``: batch · prod(weight) · the output's (or, transposed, the input's)
    spatial size. The tracer sees unbatched inputs with a batch of 1 added."""
    x, w = args["input"], args["weight"]
    if transposed is None:
        transposed = bool(args["transposed"])
    first = 2 if x.dim() == w.dim() else 1
    batch = x.shape[0] if first == 2 else 1
    return batch * _numel(w) * math.prod((x if transposed else out).shape[first:])


def _linear(args: dict[str, Any], out: Any) -> int:
    return _numel(args["input"]) * args["weight"].shape[0]


def _addmm(args: dict[str, Any], out: Any) -> int:
    (batch, inner), cols = args["mat1"].shape, args["mat2"].shape[1]
    return batch * inner * cols


def _bmm(args: dict[str, Any], out: Any) -> int:
    n, c, t = args["self"].shape
    return n * c * t * args["mat2"].shape[-1]


def _matmul(args: dict[str, Any], out: Any) -> int:
    a, b = args["self"], (args["other"] if "other" in args else args["mat2"])
    if a.dim() < 2 or b.dim() < 2:
        raise UncountedOpError(
            f"matmul of shapes {list(a.shape)} @ {list(b.shape)}: fvcore has "
            "no formula for 1-D operands"
        )
    return _numel(a) * b.shape[-1]


def _einsum(args: dict[str, Any], out: Any) -> int:
    """fvcore's ``einsum_flop_jit``: two batched-matmul patterns, else numpy's optimal path / 2."""
    equation = args["equation"].replace(" ", "")
    shapes = [list(t.shape) for t in args["tensors"]]
    letters = OrderedDict((k, 0) for k in equation if k.isalpha()).keys()
    equation = equation.translate({ord(x): 97 + i for i, x in enumerate(letters)})
    if equation == "abc,abd->acd":
        n, c, t = shapes[0]
        return n * c * t * shapes[-1][-1]
    if equation == "abc,adc->adb":
        n, t, g = shapes[0]
        return n * t * g * shapes[-1][1]
    report = np.einsum_path(equation, *(np.zeros(s) for s in shapes), optimize="optimal")[1]
    for line in report.split("\n"):
        if "optimized flop" in line.lower():
            return int(np.floor(float(line.split(":")[-1]) / 2))
    raise UncountedOpError(f"einsum {args['equation']!r}: numpy reported no flop count")


def _norm(weight_arg: str, affine: int = 5, plain: int = 4) -> Formula:
    """fvcore's ``norm_flop_counter``: elements × 5 with an affine weight, × 4 without."""

    def formula(args: dict[str, Any], out: Any) -> int:
        return _numel(args["input"]) * (affine if args[weight_arg] is not None else plain)

    return formula


def _batch_norm(args: dict[str, Any], out: Any) -> int:
    """fvcore's ``batchnorm_flop_jit``: a training-mode norm, or 2 (1 without weight) at eval."""
    if args["training"]:
        return _norm("weight")(args, out)
    return _numel(args["input"]) * (2 if args["weight"] is not None else 1)


def _per_output(scale: int) -> Formula:
    return lambda args, out: scale * _numel(out)


def _per_input(args: dict[str, Any], out: Any) -> int:
    return _numel(args["self"])


def _sdpa(args: dict[str, Any], out: Any) -> int:
    q, k, v = args["query"].shape, args["key"].shape, args["value"].shape
    rows = math.prod(q[:-1])
    return rows * k[-2] * q[-1] + rows * k[-2] * v[-1]


def _attention_scores(func: torch._ops.OpOverload, args: tuple, kwargs: dict[str, Any]) -> int:
    """Scores (query-key pairs per head) of a fused attention op; 0 for any other op.

    The fused kernel never writes its score matrix, so neither the MACs (2·d per score) nor the
    bytes written show the softmax's work per score (scale, mask, exp, sum), which dominates when
    heads are narrow. The cost model needs it as a feature of its own.
    """
    if _op_name(func) != "aten::scaled_dot_product_attention":
        return 0
    bound = _bind(func, args, kwargs)
    q, k = bound["query"].shape, bound["key"].shape
    return math.prod(q[:-1]) * k[-2]


def _real_fft(args: dict[str, Any], out: torch.Tensor) -> int:
    """:func:`archlab.measurement.flops._real_fft_macs`: 1.25·N·log2(N) per transform of the real
    side."""
    x = args["self"]
    real = out if x.is_complex() else x
    dim = args["dim"]
    n = real.shape[dim]
    if args["n"] is not None and not x.is_complex():
        n = int(args["n"])
    transforms = _numel(real) // max(real.shape[dim], 1)
    return round(1.25 * transforms * n * math.log2(n)) if n > 1 else 0


def _is_complex(value: Any) -> bool:
    # the tracer records Python numbers as constant tensors: a complex scalar is a complex factor
    return value.is_complex() if isinstance(value, torch.Tensor) else isinstance(value, complex)


def _mul(args: dict[str, Any], out: torch.Tensor) -> int:
    """:func:`archlab.measurement.flops._mul_macs`: 4 MACs per complex product, 2 for complex ×
    real."""
    complex_factors = _is_complex(args["self"]) + _is_complex(args["other"])
    return _numel(out) * (0, 2, 4)[complex_factors]


_CONV_OPS = ("aten::conv1d", "aten::conv2d", "aten::conv3d")
_CONV_T_OPS = ("aten::conv_transpose1d", "aten::conv_transpose2d", "aten::conv_transpose3d")

#: Op name → MAC formula, the ops ``count_macs`` counts. ``conv*d``/``conv_transpose*d`` are the
#: ops the tracer records as ``aten::_convolution``.
MAC_FORMULAS: dict[str, Formula] = {
    **{op: lambda a, o: _conv(a, o, transposed=False) for op in _CONV_OPS},
    **{op: lambda a, o: _conv(a, o, transposed=True) for op in _CONV_T_OPS},
    "aten::convolution": _conv,
    "aten::_convolution": _conv,
    "aten::linear": _linear,
    "aten::addmm": _addmm,
    "aten::bmm": _bmm,
    "aten::mm": _matmul,
    "aten::matmul": _matmul,
    "aten::einsum": _einsum,
    "aten::batch_norm": _batch_norm,
    "aten::layer_norm": _norm("weight"),
    "aten::group_norm": _norm("weight"),
    "aten::instance_norm": _norm("weight"),
    "aten::upsample_nearest2d": _per_output(1),
    "aten::upsample_bilinear2d": _per_output(4),
    "aten::grid_sampler": _per_output(4),
    "aten::adaptive_avg_pool2d": _per_input,
    "aten::scaled_dot_product_attention": _sdpa,
    "aten::linalg_vector_norm": _per_input,
    "aten::mean": _per_input,
    "aten::fft_rfft": _real_fft,
    "aten::fft_irfft": _real_fft,
    "aten::mul": _mul,
}

#: Ops with no MACs: the reference's zero-by-convention list, the ops fvcore ignores, and
#: ``aten::alias``, which eager indexing returns for a full slice (the tracer records ``slice``).
ZERO_OPS: frozenset[str] = (
    CONVENTION_ZERO_OPS | frozenset(_IGNORED_OPS) | {"aten::alias"}
) - MAC_FORMULAS.keys()


_REQUIRED = object()


@functools.cache
def _op_name(func: torch._ops.OpOverload) -> str:
    return func._schema.name


def _formula_of(func: torch._ops.OpOverload) -> Formula | None:
    """The op's MAC formula; None for a zero-MAC op.

    Raises:
        UncountedOpError: the op is in neither list.
    """
    name = _op_name(func)
    formula = MAC_FORMULAS.get(name)
    if formula is None and name not in ZERO_OPS:
        raise UncountedOpError(
            f"{name} ({func}) has no MAC formula and is not listed as zero-MAC; add it to "
            "archlab.measurement.flops (EXTRA_MAC_HANDLES or CONVENTION_ZERO_OPS) and "
            "archlab.measurement.fast_macs"
        )
    return formula


@functools.cache
def _signature(func: torch._ops.OpOverload) -> tuple[tuple[str, bool, Any], ...]:
    """(name, keyword-only, default) of each argument; an argument without default is required."""
    return tuple(
        (a.name, a.kwarg_only, a.default_value if a.has_default_value() else _REQUIRED)
        for a in func._schema.arguments
    )


def _bind(func: torch._ops.OpOverload, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The op's arguments by name, defaults filled in."""
    bound = {}
    for i, (name, kwarg_only, default) in enumerate(_signature(func)):
        if i < len(args) and not kwarg_only:
            bound[name] = args[i]
        elif name in kwargs:
            bound[name] = kwargs[name]
        elif default is not _REQUIRED:
            bound[name] = default
    return bound


def _tensors(values: Any) -> Iterator[torch.Tensor]:
    """Tensors among an op's arguments or results: single ones and lists (``Tensor[]``)."""
    for value in values:
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from (x for x in value if isinstance(x, torch.Tensor))


class _MacMode(TorchDispatchMode):
    """Records every op with its MACs and the ops whose results it read."""

    def __init__(self) -> None:
        super().__init__()
        self.macs: list[int] = []
        self.out_bytes: list[int] = []  # bytes of each op's results (memory it wrote)
        self.scores: list[int] = []  # attention scores a fused attention op computed (see below)
        self.reads: list[list[int]] = []
        # id(tensor) → (weak reference, index of the op that returned it); the reference tells a
        # live tensor from a freed one whose id was reused
        self.producer: dict[int, tuple[weakref.ref, int]] = {}

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # The mode watches a plain eager forward: without this, torch wraps __torch_dispatch__ to
        # keep torch.compile out of it, which imports torch._dynamo (about 2 s) on the first count
        return False

    def __torch_dispatch__(
        self, func: torch._ops.OpOverload, types: Any, args: tuple = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = _formula_of(func)
        macs = int(formula(_bind(func, args, kwargs), out)) if formula is not None else 0
        self.reads.append(self._producers(_tensors((*args, *kwargs.values()))))
        written = 0
        for t in _tensors(out if isinstance(out, (list, tuple)) else (out,)):
            self.producer[id(t)] = (weakref.ref(t), len(self.macs))
            written += t.numel() * t.element_size()
        self.macs.append(macs)
        self.out_bytes.append(written)
        self.scores.append(_attention_scores(func, args, kwargs))
        return out

    def _producers(self, tensors: Iterable[torch.Tensor]) -> list[int]:
        """Indices of the ops that returned ``tensors`` (inputs and parameters have none)."""
        ops = []
        for t in tensors:
            entry = self.producer.get(id(t))
            if entry is not None and entry[0]() is t:
                ops.append(entry[1])
        return ops

    def total(self, outputs: Any) -> int | None:
        """Σ MACs, or None if an op with MACs does not feed ``outputs`` (see the module docs)."""
        todo = self._producers(x for x in tree_leaves(outputs) if isinstance(x, torch.Tensor))
        live = set(todo)
        while todo:
            for op in self.reads[todo.pop()]:
                if op not in live:
                    live.add(op)
                    todo.append(op)
        if any(macs and i not in live for i, macs in enumerate(self.macs)):
            return None
        return sum(self.macs)


def count_macs_fast(
    model: nn.Module, resolution: int | tuple[int, int], batch: int = 1, in_chans: int = 3
) -> int:
    """The MAC total of one forward pass, equal to ``count_macs(...).total`` (see module docs).

    Args:
        model: the model (put in eval mode for the count, then back in its mode).
        resolution: input size, ``224`` or ``(H, W)``.
        batch: batch size of the input.
        in_chans: channels of the input.

    Raises:
        UncountedOpError: the model ran an op with neither a formula nor a zero-MAC entry (one that
            ``count_macs`` would list in ``unsupported_ops``, or count where this pass cannot).
            The random generator is then left as it was, so a fallback to ``count_macs`` draws
            the same input.
    """
    return _count(model, resolution, batch, in_chans, blocks=False).total


@dataclass(frozen=True)
class BlockCount:
    """A fast count with the blocks that ran (:class:`archlab.measurement.blocks.BlockInfo`) and
    their MACs."""

    total: int  # as count_macs_fast
    blocks: list[BlockInfo]
    block_macs: dict[str, int]  # block name → MACs of its calls in the pass (ops it ran itself)
    block_ops: dict[str, int] = field(default_factory=dict)  # block name → aten ops it ran
    block_bytes: dict[str, int] = field(default_factory=dict)  # block name → bytes its ops wrote
    block_scores: dict[str, int] = field(default_factory=dict)  # block name → attention scores
    # peak of the pass's memory events (archlab.measurement.memory), when asked for; the input not
    # included
    activations_peak_bytes: int | None = None
    input_bytes: int = 0  # the pass's input

    def features(self, name: str) -> BlockFeatures:
        """What a cost model needs to estimate the block's time (see
        :mod:`archlab.predict.cost_model`)."""
        return BlockFeatures(
            self.block_macs.get(name, 0),
            self.block_ops.get(name, 0),
            self.block_bytes.get(name, 0),
            self.block_scores.get(name, 0),
        )


def count_macs_with_blocks(
    model: nn.Module,
    resolution: int | tuple[int, int],
    batch: int = 1,
    in_chans: int = 3,
    blocks: bool = True,
    memory: bool = False,
) -> BlockCount:
    """:func:`count_macs_fast` and :func:`archlab.measurement.blocks.block_infos` from the same
    forward pass.

    ``blocks=False`` leaves the blocks out (no hooks): the total alone, in the same type.
    ``memory=True`` also records the pass's activation peak
    (:class:`archlab.measurement.memory.ActivationPeak`)
    into ``activations_peak_bytes``. The pass is the model's first if it was just built; a model
    whose first pass allocates caches for later ones would need
    :func:`archlab.measurement.memory.peak_memory`
    (the search checks the two agree on every space: ``tests/test_fast_macs.py``).

    Raises:
        UncountedOpError: as :func:`count_macs_fast`.
    """
    return _count(model, resolution, batch, in_chans, blocks, memory)


def _count(
    model: nn.Module,
    resolution: int | tuple[int, int],
    batch: int,
    in_chans: int,
    blocks: bool,
    memory: bool = False,
) -> BlockCount:
    h, w = (resolution, resolution) if isinstance(resolution, int) else resolution
    was_training = model.training
    model.eval()
    rng = torch.get_rng_state()
    mode = _MacMode()
    starts: dict[str, list[int]] = {}
    block_macs: dict[str, int] = {}
    block_ops: dict[str, int] = {}
    block_bytes: dict[str, int] = {}
    block_scores: dict[str, int] = {}

    def enter(name: str) -> None:
        starts.setdefault(name, []).append(len(mode.macs))

    def leave(name: str) -> None:
        start = starts[name].pop()
        block_macs[name] = block_macs.get(name, 0) + sum(mode.macs[start:])
        block_ops[name] = block_ops.get(name, 0) + len(mode.macs) - start
        block_bytes[name] = block_bytes.get(name, 0) + sum(mode.out_bytes[start:])
        block_scores[name] = block_scores.get(name, 0) + sum(mode.scores[start:])

    recorder = BlockRecorder(model, enter, leave) if blocks else nullcontext()
    peak = ActivationPeak() if memory else None
    try:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        # as count_macs does (same RNG stream after); a model on the meta device runs shapes only
        example = torch.randn(batch, in_chans, h, w, device=device)
        with recorder, torch.inference_mode(), mode, peak.record() if peak else nullcontext():
            outputs = model(example)
        total = mode.total(outputs)
    except UncountedOpError:
        torch.set_rng_state(rng)  # a caller that falls back to count_macs draws the same input
        raise
    finally:
        model.train(was_training)
    if total is None:
        _log.debug("an op with MACs does not feed the output: counting with count_macs")
        torch.set_rng_state(rng)
        total = count_macs(model, resolution, batch, in_chans).total
    infos = recorder.infos() if isinstance(recorder, BlockRecorder) else []
    return BlockCount(
        total,
        infos,
        block_macs,
        block_ops,
        block_bytes,
        block_scores,
        peak.bytes if peak else None,
        example.numel() * example.element_size(),
    )

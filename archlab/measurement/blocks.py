"""A model's stages and blocks as the latency tools see them, their keys, and in-context timing.

* **Blocks** are the model's children with plain containers (exactly ``nn.Sequential`` or
  ``nn.ModuleList``, not subclasses, which may have their own ``forward``) expanded recursively.
  Containers compute nothing themselves, so the blocks' times plus a small remainder (the glue in
  the model's own ``forward``: pooling, reshapes) make up the whole pass. This works for any
  family: no family declares its blocks.
* **Stages** group blocks for reports: a top-level child, or, when a top-level child is a container
  of containers (``stages``), each of its children (``stages.0``, ``stages.1`` ...).
* A block's **key** is ``Class:signature@input shapes``. The signature hashes everything that
  decides the block's work: the class, the plain attributes (widths, heads, windows, modes) and the
  parameter and buffer shapes of each submodule. Weights and dropout rates are left out, so the same
  block configuration at the same input shape gets the same key in any model of any space.
* **In-context timing** (:func:`time_in_context`) times chosen modules with forward hooks inside
  whole forward passes, because blocks timed alone add up to less than the whole model
  (docs/measurement.md, "Per-module latency").
"""

from __future__ import annotations

import dataclasses
import hashlib
import statistics
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from archlab.measurement.contention import ContentionGuard
from archlab.measurement.latency import torch_threads

__all__ = [
    "BlockFeatures",
    "BlockInfo",
    "BlockRecorder",
    "ContextTiming",
    "block_infos",
    "block_key",
    "block_names",
    "block_signature",
    "key_input_shape",
    "stage_names",
    "stage_of",
    "time_in_context",
    "time_in_context_many",
]

_CONTAINERS = (nn.Sequential, nn.ModuleList)


def _is_container(module: nn.Module) -> bool:
    return type(module) in _CONTAINERS


_PLAIN = (int, float, str, bool, type(None))


def stage_names(model: nn.Module) -> list[str]:
    """Names of the model's stages (see the module docstring), in forward order."""
    names = []
    for name, child in model.named_children():
        subs = list(child.named_children())
        if _is_container(child) and subs and all(_is_container(c) for _, c in subs):
            names += [f"{name}.{sub}" for sub, _ in subs]
        else:
            names.append(name)
    return names


def block_names(model: nn.Module) -> list[str]:
    """Names of the model's blocks: children, with plain containers expanded recursively."""

    def expand(prefix: str, module: nn.Module) -> list[str]:
        out: list[str] = []
        for name, child in module.named_children():
            if _is_container(child):
                out += expand(f"{prefix}{name}.", child)
            else:
                out.append(f"{prefix}{name}")
        return out

    return expand("", model)


def stage_of(name: str, stages: Iterable[str]) -> str | None:
    """The stage a module belongs to (the longest stage name that is ``name`` or its prefix)."""
    found = [s for s in stages if name == s or name.startswith(s + ".")]
    return max(found, key=len) if found else None


def _plain_value(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (tuple, list)):
        return all(_plain_value(v) for v in value)
    return False


def _config_attrs(module: nn.Module) -> list[tuple[str, str]]:
    """The plain attributes that configure a module (dropout rates excluded: no cost in eval)."""
    skip_floats = "drop" in type(module).__name__.lower()
    attrs = []
    for key, value in sorted(vars(module).items()):
        if key.startswith("_") or key == "training":
            continue
        if skip_floats and isinstance(value, float):
            continue
        if _plain_value(value):
            attrs.append((key, repr(value)))
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            attrs.append((key, repr(value)))
    return attrs


def block_signature(module: nn.Module) -> str:
    """A short hash of what decides a module's work: classes, plain attributes, tensor shapes."""
    lines = []
    for name, sub in module.named_modules():
        params = [(n, tuple(p.shape)) for n, p in sub.named_parameters(recurse=False)]
        buffers = [(n, tuple(b.shape), str(b.dtype)) for n, b in sub.named_buffers(recurse=False)]
        lines.append(f"{name}|{type(sub).__name__}|{_config_attrs(sub)}|{params}|{buffers}")
    return hashlib.sha1("\n".join(lines).encode()).hexdigest()[:12]


def _shape_text(value: Any) -> list[str]:
    if isinstance(value, torch.Tensor):
        return ["x".join(str(d) for d in value.shape) or "scalar"]
    if isinstance(value, (tuple, list)):
        return [s for v in value for s in _shape_text(v)]
    if isinstance(value, _PLAIN):
        return [repr(value)]
    return [type(value).__name__]


def block_key(module: nn.Module, args: tuple[Any, ...], signature: str | None = None) -> str:
    """``Class:signature@shapes`` for a module called with ``args``."""
    shapes = "+".join(_shape_text(args)) or "-"
    return f"{type(module).__name__}:{signature or block_signature(module)}@{shapes}"


def key_input_shape(key: str) -> str:
    """The shape of a block's first input, from its key (``Class:signature@shapes``)."""
    return key.partition("@")[2].split("+")[0]


@dataclass(frozen=True)
class BlockInfo:
    """One block of a model, as called in a forward pass."""

    name: str  # module name in the model, e.g. "stages.2.3"
    kind: str  # class name
    key: str  # Class:signature@input shapes
    calls: int = 1  # times it ran in one forward pass


def _register(
    model: nn.Module, names: list[str], pre: Callable[..., None], post: Callable[..., None]
) -> list[Any]:
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise KeyError(f"no module(s) {missing} in {type(model).__name__}")
    handles = []
    for name in names:
        module = modules[name]
        handles.append(module.register_forward_pre_hook(lambda m, a, n=name: pre(n, m, a)))
        handles.append(module.register_forward_hook(lambda m, a, o, n=name: post(n)))
    return handles


class BlockRecorder:
    """While entered, records every block of ``model`` that runs, with its key, in call order.

    ``on_enter(name)`` and ``on_exit(name)`` are called around each block call, e.g. to attribute
    the work of a pass that runs under another recorder to blocks.
    """

    def __init__(
        self,
        model: nn.Module,
        on_enter: Callable[[str], None] | None = None,
        on_exit: Callable[[str], None] | None = None,
    ) -> None:
        self.model = model
        self._keys: dict[str, list[str]] = {}
        self._signatures: dict[str, str] = {}
        self._on_enter, self._on_exit = on_enter, on_exit
        self._handles: list[Any] = []

    def _pre(self, name: str, module: nn.Module, args: tuple[Any, ...]) -> None:
        if name not in self._signatures:
            self._signatures[name] = block_signature(module)
        self._keys.setdefault(name, []).append(block_key(module, args, self._signatures[name]))
        if self._on_enter is not None:
            self._on_enter(name)

    def _post(self, name: str) -> None:
        if self._on_exit is not None:
            self._on_exit(name)

    def __enter__(self) -> BlockRecorder:
        self._handles = _register(self.model, block_names(self.model), self._pre, self._post)
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def infos(self) -> list[BlockInfo]:
        """The blocks that ran so far (a block called with several shapes joins their keys)."""
        modules = dict(self.model.named_modules())
        return [
            BlockInfo(name, type(modules[name]).__name__, " & ".join(dict.fromkeys(k)), len(k))
            for name, k in self._keys.items()
        ]


def block_infos(model: nn.Module, inputs: torch.Tensor) -> list[BlockInfo]:
    """Run one forward pass and return every block that ran, with its key, in call order."""
    model.eval()
    with BlockRecorder(model) as recorder, torch.inference_mode():
        model(inputs)
    return recorder.infos()


@dataclass(frozen=True)
class ContextTiming:
    """Medians over hooked forward passes: the whole pass and each timed module, in ms."""

    whole_ms: float
    module_ms: dict[str, float]  # modules that never ran are absent
    runs: int
    contaminated_slices: int = 0

    def share(self, name: str) -> float | None:
        ms = self.module_ms.get(name)
        return None if ms is None or self.whole_ms <= 0 else ms / self.whole_ms


class _HookedPasses:
    """Forward passes of ``model`` with ``names`` timed by hooks; collects one result per pass."""

    def __init__(self, model: nn.Module, inputs: torch.Tensor, names: list[str]) -> None:
        self.model, self.inputs, self.names = model.eval(), inputs, names
        self.results: list[tuple[float, dict[str, int]]] = []
        self._starts: dict[str, int] = {}
        self._current: dict[str, int] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> _HookedPasses:
        def pre(name: str, module: nn.Module, args: tuple[Any, ...]) -> None:
            self._starts[name] = time.perf_counter_ns()

        def post(name: str) -> None:
            elapsed = time.perf_counter_ns() - self._starts[name]
            self._current[name] = self._current.get(name, 0) + elapsed

        self._handles = _register(self.model, self.names, pre, post)
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()

    def run(self) -> tuple[float, dict[str, int]]:
        """One hooked pass: (whole ms, ns per timed module)."""
        self._current.clear()
        t0 = time.perf_counter_ns()
        self.model(self.inputs)
        return (time.perf_counter_ns() - t0) / 1e6, dict(self._current)

    def run_many(self, n: int) -> list[tuple[float, dict[str, int]]]:
        """``n`` hooked passes (one slice)."""
        return [self.run() for _ in range(n)]

    def timing(self, contaminated: int = 0) -> ContextTiming:
        module_ms = {
            name: statistics.median(r[1].get(name, 0) / 1e6 for r in self.results)
            for name in self.names
            if any(name in r[1] for r in self.results)
        }
        whole = statistics.median(r[0] for r in self.results)
        return ContextTiming(whole, module_ms, len(self.results), contaminated)


def time_in_context(
    model: nn.Module,
    inputs: torch.Tensor,
    names: list[str] | None = None,
    *,
    runs: int = 10,
    warmup: int = 2,
    threads: int = 1,
    slice_runs: int = 5,
    guard: bool = True,
) -> ContextTiming:
    """Time ``names`` (default: the blocks) with forward hooks inside whole forward passes.

    A module called several times in one pass gets the sum of its calls. Runs are grouped in slices
    of ``slice_runs``; a slice during which other processes used the CPU is run again (see
    :class:`~archlab.measurement.contention.ContentionGuard`).
    """
    names = block_names(model) if names is None else names
    checker = ContentionGuard(threads, enabled=guard)
    with torch_threads(threads):
        with _HookedPasses(model, inputs, names) as passes, torch.inference_mode():
            for _ in range(warmup):
                passes.run()
            while len(passes.results) < runs:
                n = min(slice_runs, runs - len(passes.results))
                passes.results += checker.run(partial(passes.run_many, n))
    return passes.timing(checker.contaminated)


def time_in_context_many(
    models: list[nn.Module],
    inputs: torch.Tensor,
    *,
    runs: int = 10,
    warmup: int = 2,
    threads: int = 1,
    guard: bool = True,
) -> list[ContextTiming]:
    """:func:`time_in_context` of every block of several models, interleaved.

    Round ``r`` runs one hooked pass of every model (starting with model ``r mod n``), so every
    model's blocks are timed over the same stretch of time and a drift of the machine's speed
    (large on a VM, see :mod:`archlab.measurement.interleave`) affects them alike. Rounds are
    guarded as a whole against other processes' CPU use.
    """
    checker = ContentionGuard(threads, enabled=guard)
    with torch_threads(threads):
        timers = [_HookedPasses(m, inputs, block_names(m)) for m in models]

        def one_round(r: int) -> list[tuple[float, dict[str, int]]]:
            out: list[tuple[float, dict[str, int]]] = [(0.0, {})] * len(timers)
            for k in range(len(timers)):
                i = (r + k) % len(timers)
                out[i] = timers[i].run()
            return out

        with ExitStack() as hooks, torch.inference_mode():
            for timer in timers:
                hooks.enter_context(timer)
                for _ in range(warmup):
                    timer.run()
            for r in range(runs):
                for timer, result in zip(timers, checker.run(partial(one_round, r))):
                    timer.results.append(result)
    return [t.timing(checker.contaminated) for t in timers]


@dataclass(frozen=True)
class BlockFeatures:
    """What one block computes in a forward pass (all its calls together)."""

    macs: int
    ops: int  # aten ops dispatched
    bytes: int  # bytes of the ops' results
    scores: int = 0  # query-key pairs of fused attention (fast_macs._attention_scores)

    def vector(self) -> np.ndarray:
        """Features in units that keep the least-squares problem well conditioned."""
        return np.array(
            [self.macs / 1e6, float(self.ops), self.bytes / 1e6, self.scores / 1e6, 1.0]
        )

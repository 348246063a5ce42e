"""Peak inference memory of a model: weights plus the largest set of live activations.

The activation part comes from the PyTorch profiler's memory events: every allocation and release
made by an op during one forward pass under ``torch.inference_mode()``, in time order. Their running
sum peaks at the largest amount of memory the pass held at once (activations, workspaces and
temporaries, e.g. the im2col buffers of convolutions). Adding the parameters, buffers and the input
gives the peak a deployment of the model needs beyond the runtime itself. This is deterministic
(unlike the process's RSS, which the allocator's caching and thresholds blur) and costs one profiled
pass.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from archlab.measurement.latency import torch_threads

__all__ = ["ActivationPeak", "MemoryUse", "memory_use", "parse_bytes", "peak_memory"]

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmg]i?b|b)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class MemoryUse:
    """Bytes of one inference pass: weights, input, peak of the activations, and their sum."""

    weights_bytes: int  # parameters and buffers
    input_bytes: int
    activations_peak_bytes: int  # largest simultaneously allocated memory during the pass
    peak_bytes: int  # the three together

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_bytes(text: str) -> int:
    """'200MB', '1.5GB', '512MiB', '1000' (bytes) → bytes (kB/MB/GB are powers of 1000).

    Raises:
        ValueError: not a positive size.
    """
    match = _SIZE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a memory size; write e.g. 200MB, 1.5GB or 512MiB")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (the profiler's C++ start/stop lines) for the duration."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. captured): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _activation_peak(events: list[Any]) -> int:
    current = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        current += event.nbytes()
        peak = max(peak, current)
    return peak


class ActivationPeak:
    """Records the memory events of the code run inside it; ``bytes`` is then their peak.

    Used by :func:`peak_memory`, and by the search's MAC-counting pass so that one forward pass
    gives both (:func:`archlab.measurement.fast_macs.count_macs_with_blocks` with ``memory=True``).
    """

    def __init__(self) -> None:
        self.bytes: int | None = None

    @contextmanager
    def record(self) -> Iterator[None]:
        with _quiet_native_stderr(), _memory_events() as events:
            yield
        self.bytes = _activation_peak(events)


@contextmanager
def _memory_events() -> Iterator[list[Any]]:
    """The profiler's memory events of the code run inside (the list is filled on exit).

    The profiler is started with only its user scope recorded, so it keeps the memory events but
    not an event per op: the same memory events (``tests/test_memory.py`` checks both give the same
    peak), without the cost of collecting every op's event when the profiler stops (the search's
    counting pass went from 116 to 98 ms). Where torch's internal entry points are missing, the
    public ``torch.profiler.profile`` is used.
    """
    events: list[Any] = []
    try:
        from torch._C._autograd import _disable_profiler, _enable_profiler, _prepare_profiler
        from torch._C._profiler import (
            ProfilerActivity,
            ProfilerConfig,
            ProfilerState,
            RecordScope,
            _ExperimentalConfig,
        )

        config = ProfilerConfig(
            ProfilerState.KINETO, False, True, False, False, False, _ExperimentalConfig(), ""
        )
    except (ImportError, TypeError):
        with _full_profile_memory_events() as full:
            yield events
        events.extend(full)
        return
    activities = {ProfilerActivity.CPU}
    _prepare_profiler(config, activities)
    # the stub lacks the scopes argument the binding takes
    _enable_profiler(config, activities, {RecordScope.USER_SCOPE})  # type: ignore[call-arg]
    try:
        yield events
    finally:
        result = _disable_profiler()
    events.extend(e for e in result.events() if e.name() == "[memory]")


@contextmanager
def _full_profile_memory_events() -> Iterator[list[Any]]:
    """:func:`_memory_events` through ``torch.profiler.profile`` (an event per op as well)."""
    from torch.profiler import ProfilerActivity, profile

    events: list[Any] = []
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        yield events
    events.extend(e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")


def memory_use(model: nn.Module, inputs: int, activations_peak_bytes: int) -> MemoryUse:
    """Weights, ``inputs`` bytes of input and the activation peak of a pass, together."""
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    return MemoryUse(
        weights, inputs, activations_peak_bytes, weights + inputs + activations_peak_bytes
    )


def peak_memory(
    model: nn.Module, resolution: int, batch: int = 1, threads: int = 1, warm: bool = False
) -> MemoryUse:
    """Profile one forward pass and return its peak memory (see the module docstring).

    ``warm``: the model has run a forward pass in this process already, so the unprofiled first
    pass (lazy initialisation is not inference) is skipped.
    """
    model.eval()
    x = torch.randn(batch, 3, resolution, resolution)
    peak = ActivationPeak()
    with torch_threads(threads), torch.inference_mode():
        if not warm:
            model(x)  # a first pass outside the profile: lazy initialisation is not inference
        with peak.record():
            model(x)
    assert peak.bytes is not None
    return memory_use(model, x.numel() * x.element_size(), peak.bytes)

"""Measurement in a fresh Python process, with a chosen allocator setting.

:func:`measure_in_subprocess` starts ``python -m archlab.measurement.child`` with the setting's
environment, sends it the model configs, and reads back its latencies. The child builds the models
from their configs (seeded as everywhere else), so what is measured there carries no state of the
calling process: no warm caches, no allocator history, no hooked passes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from archlab.measurement.allocator import allocator_env
from archlab.measurement.latency import Latency

__all__ = ["measure_in_subprocess"]


def measure_in_subprocess(
    configs: list[dict[str, Any]],
    resolution: int,
    *,
    allocator: str | None = "default",
    protocol: str = "plain",
    seed: int = 0,
    timeout_s: float = 3600.0,
    **options: Any,
) -> list[Latency]:
    """Measure models in a fresh Python process with the given allocator setting.

    Args:
        configs: model configs (``archlab.models.config_of(model)``), each with its ``family``.
        resolution: input size.
        allocator: a name from :data:`ALLOCATORS`, or None for this process's own setting
            (whatever ``GLIBC_TUNABLES`` holds, a custom value included).
        protocol: ``plain`` (``measure_latency`` per model, one after the other) or
            ``interleaved`` (``measure_many``: slices of runs spread round-robin).
        seed: ``torch.manual_seed`` before building each model.
        timeout_s: give up after this long.
        **options: passed on to ``measure_latency`` / ``measure_many`` (threads, batch,
            backend ...).

    Returns:
        One latency per config, with its environment (including the allocator) as measured there.

    Raises:
        ValueError: unknown allocator or protocol, or the child process failed (its error is given).
    """
    if protocol not in ("plain", "interleaved"):
        raise ValueError(f"unknown protocol {protocol!r}; choose from ['plain', 'interleaved']")
    job = {
        "configs": configs,
        "resolution": resolution,
        "protocol": protocol,
        "seed": seed,
        "options": options,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "archlab.measurement.child"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        env=dict(os.environ) if allocator is None else allocator_env(allocator),
        timeout=timeout_s,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    failure = {"error": proc.stderr.strip()[-2000:] or "no output"}
    reply: dict[str, Any] = json.loads(lines[-1]) if lines else failure
    if "error" in reply:
        raise ValueError(f"measurement in a fresh process failed: {reply['error']}")
    return [Latency.from_dict(d) for d in reply["latencies"]]

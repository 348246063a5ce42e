"""The memory allocator a latency depends on, and measurement in a fresh process that sets it.

With glibc's default malloc every forward pass maps and unmaps its large activation buffers
(thousands of page faults per pass); raising the mmap and trim thresholds made the models here
1.2–1.6× faster (MEASUREMENT.md). glibc reads ``GLIBC_TUNABLES`` only when a process starts, so
another setting needs another process: :func:`measure_in_subprocess` starts ``python -m
archlab.allocator`` with the chosen setting, builds the models there from their configs (seeded as
everywhere else) and returns its measurements. Latencies are comparable only under one setting,
which is why every :class:`~archlab.latency.LatencyEnv` records it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archlab.latency import Latency

__all__ = [
    "ALLOCATORS",
    "allocator_env",
    "allocator_name",
    "describe_allocator",
    "measure_in_subprocess",
]

#: Allocator setting name → the GLIBC_TUNABLES value it stands for (None: unset).
ALLOCATORS: dict[str, str | None] = {
    "default": None,
    "no-trim": "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296",
}


def allocator_name(environ: dict[str, str] | None = None) -> str:
    """``default``, ``no-trim``, or ``custom`` for any other GLIBC_TUNABLES value."""
    tunables = (os.environ if environ is None else environ).get("GLIBC_TUNABLES", "")
    for name, value in ALLOCATORS.items():
        if (value or "") == tunables:
            return name
    return "custom"


def describe_allocator(environ: dict[str, str] | None = None) -> str:
    """What ``LatencyEnv.allocator`` records: ``glibc default`` or ``glibc <name> (tunables)``."""
    tunables = (os.environ if environ is None else environ).get("GLIBC_TUNABLES", "")
    name = allocator_name(environ)
    return "glibc default" if not tunables else f"glibc {name} (GLIBC_TUNABLES={tunables})"


def allocator_env(name: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment with ``GLIBC_TUNABLES`` set for allocator ``name``.

    Raises:
        ValueError: unknown name; the message lists the known ones.
    """
    if name not in ALLOCATORS:
        raise ValueError(f"unknown allocator {name!r}; choose from {list(ALLOCATORS)}")
    env = dict(os.environ if base is None else base)
    env.pop("GLIBC_TUNABLES", None)
    tunables = ALLOCATORS[name]
    if tunables:
        env["GLIBC_TUNABLES"] = tunables
    return env


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
    from archlab.latency import Latency

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
        [sys.executable, "-m", "archlab.allocator"],
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


def _run_job(job: dict[str, Any]) -> list[dict[str, Any]]:
    import torch

    from archlab.interleave import measure_many
    from archlab.latency import measure_latency
    from archlab.models import build_model

    models = []
    for config in job["configs"]:
        torch.manual_seed(job["seed"])
        models.append(build_model(config).eval())
    options, resolution = job["options"], job["resolution"]
    if job["protocol"] == "interleaved":
        latencies = measure_many(models, resolution, **options)
    else:
        latencies = [measure_latency(m, resolution, **options) for m in models]
    return [lat.as_dict() for lat in latencies]


def _main() -> None:
    try:
        reply: dict[str, Any] = {"latencies": _run_job(json.loads(sys.stdin.read()))}
    except Exception as err:  # reported to the parent, which raises it as a ValueError
        reply = {"error": f"{type(err).__name__}: {err}"}
    print(json.dumps(reply))


if __name__ == "__main__":
    _main()

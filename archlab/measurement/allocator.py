"""The memory allocator a latency depends on: its settings and how a process is told to use one.

With glibc's default malloc every forward pass maps and unmaps its large activation buffers
(thousands of page faults per pass); raising the mmap and trim thresholds made the models here
1.2–1.6× faster (docs/measurement.md). glibc reads ``GLIBC_TUNABLES`` only when a process starts,
so another setting needs another process (:mod:`archlab.measurement.fresh_process`). Latencies are
comparable only under one setting, which is why every
:class:`~archlab.measurement.latency.LatencyEnv`
records it.
"""

from __future__ import annotations

import os

__all__ = [
    "ALLOCATORS",
    "allocator_env",
    "allocator_name",
    "describe_allocator",
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

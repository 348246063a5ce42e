"""Where a model's parameters, MACs and time go: per stage, and per module with latency shares.

Latency shares come from in-context timing (:func:`archlab.measurement.blocks.time_in_context`):
every listed module is timed with forward hooks inside a few whole forward passes, so the shares
refer to the model as it really runs. The remainder row holds what no stage accounts for (the
model's own glue: global pooling, reshapes; and the hooks' own small cost).
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from archlab.measurement.blocks import (
    ContextTiming,
    block_names,
    stage_names,
    stage_of,
    time_in_context,
)
from archlab.measurement.flops import MacCount, count_params

__all__ = ["REMAINDER", "add_latency", "module_timing", "stage_table"]

REMAINDER = "(rest of forward)"


def module_timing(
    model: nn.Module,
    resolution: int,
    names: list[str],
    *,
    threads: int = 1,
    batch: int = 1,
    runs: int = 10,
) -> ContextTiming:
    """Time ``names`` and every block in context (hooks inside whole forward passes)."""
    modules = dict(model.named_modules())
    wanted = [n for n in dict.fromkeys([*names, *block_names(model)]) if n in modules and n]
    callable_names = [n for n in wanted if type(modules[n]) is not nn.ModuleList]
    x = torch.randn(batch, 3, resolution, resolution)
    return time_in_context(model, x, callable_names, runs=runs, threads=threads)


def add_latency(modules: pd.DataFrame, timing: ContextTiming) -> pd.DataFrame:
    """The module table with ``latency_ms`` and ``latency_share`` columns (None if never called)."""
    out = modules.copy()
    out["latency_ms"] = [timing.module_ms.get(n) for n in out["module"]]
    out["latency_share"] = [timing.share(n) for n in out["module"]]
    return out


def _stage_latency(model: nn.Module, stages: list[str], timing: ContextTiming) -> dict[str, float]:
    per_stage: dict[str, float] = {}
    for block in block_names(model):
        stage = stage_of(block, stages)
        if stage is not None and block in timing.module_ms:
            per_stage[stage] = per_stage.get(stage, 0.0) + timing.module_ms[block]
    return per_stage


def stage_table(
    model: nn.Module, macs: MacCount, timing: ContextTiming | None = None
) -> pd.DataFrame:
    """One row per stage (see :func:`archlab.measurement.blocks.stage_names`) plus the remainder.

    Columns: ``stage``, ``type``, ``params``, ``macs``, ``latency_ms`` (None without ``timing``),
    and the three shares of the whole model.
    """
    modules = dict(model.named_modules())
    stages = stage_names(model)
    latency = _stage_latency(model, stages, timing) if timing else {}
    params = {s: count_params(modules[s]) for s in stages}
    stage_macs = {s: macs.by_module.get(s, 0) for s in stages}
    rows = [
        {
            "stage": s,
            "type": type(modules[s]).__name__,
            "params": params[s],
            "macs": stage_macs[s],
            "latency_ms": latency.get(s) if timing else None,
        }
        for s in stages
    ]
    total_params = count_params(model)
    rest = {
        "stage": REMAINDER,
        "type": "",
        "params": total_params - sum(params.values()),
        "macs": macs.total - sum(stage_macs.values()),
        "latency_ms": timing.whole_ms - sum(latency.values()) if timing else None,
    }
    frame = pd.DataFrame([*rows, rest])
    frame["params_share"] = frame["params"] / max(total_params, 1)
    frame["macs_share"] = frame["macs"] / max(macs.total, 1)
    whole = timing.whole_ms if timing else None
    frame["latency_share"] = [
        None if v is None or not whole else v / whole for v in frame["latency_ms"]
    ]
    return frame

"""Tables and reports shared by the CLI and the dashboard.

Trials, Pareto fronts, FLOP/param reports.

Raw numbers are stored everywhere else; formatting for people happens only here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from torch import nn

from archlab.measurement.flops import MacCount, count_macs, count_params, count_thop_macs
from archlab.measurement.latency import Latency, measure_latency
from archlab.measurement.onnx_runtime import Int8Agreement, int8_agreement
from archlab.models import Family, Preset, config_of

__all__ = [
    "markdown_table",
    "ModelReport",
    "fmt_count",
    "fmt_module_table",
    "model_report",
    "module_table",
]


def fmt_count(value: float | None, unit: str = "") -> str:
    """1234567 → '1.23M' (None → '–')."""
    if value is None:
        return "–"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:.2f}{suffix}{unit}"
    return f"{value:.0f}{unit}"


def module_table(model: nn.Module, macs: MacCount, depth: int = 2) -> pd.DataFrame:
    """Per-module params and MACs (from a ``count_macs`` result) down to ``depth`` levels."""
    total_macs = max(macs.total, 1)
    total_params = max(count_params(model), 1)
    rows = []
    for name, module in model.named_modules():
        level = 0 if not name else name.count(".") + 1
        if level == 0 or level > depth:
            continue
        params = count_params(module)
        m = macs.by_module.get(name, 0)
        rows.append(
            {
                "module": name,
                "type": type(module).__name__,
                "params": params,
                "macs": m,
                "params_share": params / total_params,
                "macs_share": m / total_macs,
            }
        )
    return pd.DataFrame(rows)


def markdown_table(frame: pd.DataFrame) -> str:
    """A frame as a GitHub Markdown table (header, separator, one line per row; no index)."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * frame.shape[1]]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def fmt_module_table(modules: pd.DataFrame) -> pd.DataFrame:
    """A :func:`module_table` for people: counts as '1.23M', shares as percent ('params %',
    'MACs %') to one decimal."""
    return modules.assign(
        params=modules["params"].map(fmt_count),
        macs=modules["macs"].map(fmt_count),
        params_share=(100 * modules["params_share"]).round(1),
        macs_share=(100 * modules["macs_share"]).round(1),
    ).rename(columns={"params_share": "params %", "macs_share": "MACs %"})


@dataclass
class ModelReport:
    """Everything ``archlab report`` prints for one model."""

    name: str
    family: str
    resolution: int
    params: int
    macs: int
    thop_macs: int
    latency: Latency | None
    config: dict[str, Any]
    modules: pd.DataFrame
    published: dict[str, Any] | None = None
    reconstructed: bool = False
    convention_zero_ops: dict[str, int] = field(default_factory=dict)
    unsupported_ops: dict[str, int] = field(default_factory=dict)
    stages: pd.DataFrame | None = None  # archlab.report.breakdown.stage_table
    counters: pd.DataFrame | None = None  # archlab.measurement.flops_compare.compare_counters
    int8: Int8Agreement | None = None  # int8 vs float outputs, when timed with onnxruntime-int8

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "resolution": self.resolution,
            "params": self.params,
            "macs": self.macs,
            "flops": 2 * self.macs,
            "thop_macs": self.thop_macs,
            "latency_ms": self.latency.median_ms if self.latency else None,
            "latency": self.latency.as_dict() if self.latency else None,
            "published": self.published,
            "reconstructed": self.reconstructed,
            "config": self.config,
            "convention_zero_ops": self.convention_zero_ops,
            "unsupported_ops": self.unsupported_ops,
            "modules": self.modules.to_dict(orient="records"),
            "stages": None if self.stages is None else self.stages.to_dict(orient="records"),
            "counters": None if self.counters is None else self.counters.to_dict(orient="records"),
            "int8_agreement": None if self.int8 is None else asdict(self.int8),
        }


def _published(preset: Preset | None) -> dict[str, Any] | None:
    if preset is None or preset.published is None:
        return None
    return {
        "name": preset.published,
        "params": None if preset.params_m is None else preset.params_m * 1e6,
        "macs": None if preset.macs_g is None else preset.macs_g * 1e9,
        "macs_reproducible": preset.macs_reproducible,
        "resolution": preset.resolution,
        "top1": preset.top1,
        "note": preset.note,
    }


def model_report(
    model: nn.Module,
    family: Family,
    name: str,
    resolution: int,
    *,
    preset: Preset | None = None,
    latency: bool = True,
    threads: int = 1,
    depth: int = 2,
    breakdown: bool = False,
    latency_options: dict[str, Any] | None = None,
) -> ModelReport:
    """Count, time and break down one model.

    Args:
        breakdown: also the per-stage table, each module's latency share (timed in context) and
            the op-by-op fvcore vs thop comparison.
        latency_options: passed to ``archlab.measurement.latency.measure_latency`` (``batch``,
            ``backend``, ``memory_format`` ...); ``allocator`` measures in a fresh process with
            that setting. With ``latency`` and the ``onnxruntime-int8`` backend, the report also
            gives the int8 model's top-1 agreement with the float one
            (:func:`archlab.measurement.onnx_runtime.int8_agreement`).

    Raises:
        ValueError: the model's config cannot run at ``resolution`` (e.g. a window larger than
            its stage's map).
    """
    check = getattr(getattr(model, "cfg", None), "check_resolution", None)
    if check is not None:
        check(resolution)
    model.eval()
    macs = count_macs(model, resolution)
    options = latency_options or {}
    modules = module_table(model, macs, depth)
    stages: pd.DataFrame | None = None
    counters: pd.DataFrame | None = None
    if breakdown:
        modules, stages, counters = _breakdown(
            model, resolution, macs, modules, latency, threads, options
        )
        thop_macs = int(counters["thop_macs"].iloc[-1])
    else:
        thop_macs = count_thop_macs(model, resolution)
    return ModelReport(
        name=name,
        family=family.name,
        resolution=resolution,
        params=count_params(model),
        macs=macs.total,
        thop_macs=thop_macs,
        latency=_latency(model, family, resolution, threads, options) if latency else None,
        config=config_of(model, family.name),
        modules=modules,
        published=_published(preset),
        reconstructed=bool(preset and preset.reconstructed),
        convention_zero_ops=macs.convention_zero_ops,
        unsupported_ops=macs.unsupported_ops,
        stages=stages,
        counters=counters,
        int8=int8_agreement(model, resolution, threads=threads)
        if latency and options.get("backend") == "onnxruntime-int8"
        else None,
    )


def _latency(
    model: nn.Module, family: Family, resolution: int, threads: int, options: dict[str, Any]
) -> Latency:
    options = dict(options)
    allocator = options.pop("allocator", None)
    if allocator is None:
        return measure_latency(model, resolution, threads=threads, **options)
    from archlab.measurement.fresh_process import measure_in_subprocess

    config = config_of(model, family.name)
    return measure_in_subprocess(
        [config], resolution, allocator=allocator, threads=threads, **options
    )[0]


def _breakdown(
    model: nn.Module,
    resolution: int,
    macs: MacCount,
    modules: pd.DataFrame,
    latency: bool,
    threads: int,
    options: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The module table with each module's latency share (timed in context, with ``latency``), the
    per-stage table and the op-by-op fvcore vs thop comparison."""
    from archlab.measurement.flops_compare import compare_counters
    from archlab.report.breakdown import add_latency, module_timing, stage_table

    timing = None
    if latency:
        timing = module_timing(
            model,
            resolution,
            list(modules["module"]),
            threads=threads,
            batch=int(options.get("batch", 1)),
        )
        modules = add_latency(modules, timing)
    counters = compare_counters(model, resolution)
    return modules, stage_table(model, macs, timing), counters

"""Rendering of FLOP/param reports for the terminal, Markdown, CSV and JSON (used by the CLI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from rich.console import Console
from rich.table import Table

from archlab.models import FAMILIES, Preset, find_preset, load_config
from archlab.report import ModelReport, fmt_count, model_report

__all__ = ["all_presets", "one_model", "preset_rows"]


def _resolve(
    preset: str | None, space: str | None, config: Path | None
) -> tuple[Any, Any, str, Preset | None]:
    if (preset is None) == (config is None):
        raise ValueError("give exactly one of --preset or --config (or --all-presets)")
    if preset is not None:
        family, key, found = find_preset(preset)
        if space is not None and space != family.name:
            raise ValueError(f"preset {preset!r} belongs to space {family.name!r}, not {space!r}")
        return family, found.cfg, key, found
    family, cfg = load_config(config)  # type: ignore[arg-type]
    return family, cfg, str(config), None


def _versus(measured: float, published: float | None) -> str:
    if not published:
        return "–"
    return f"{fmt_count(published)} ({100 * (measured / published - 1):+.1f}%)"


def _print_table(console: Console, rep: ModelReport) -> None:
    title = f"{rep.name} ({rep.family}) at {rep.resolution}×{rep.resolution}"
    if rep.reconstructed:
        title += " — reconstructed config (published layer table unknown)"
    table = Table(title=title, title_justify="left")
    for col in ("module", "type", "params", "MACs", "params %", "MACs %"):
        table.add_column(col, justify="left" if col in ("module", "type") else "right")
    for row in rep.modules.itertuples():
        table.add_row(row.module, row.type, fmt_count(row.params), fmt_count(row.macs),
                      f"{100 * row.params_share:.1f}", f"{100 * row.macs_share:.1f}")
    console.print(table)
    pub = rep.published or {}
    console.print(f"params   {fmt_count(rep.params)}   published {_versus(rep.params, pub.get('params'))}")
    macs_pub = _versus(rep.macs, pub.get("macs"))
    if pub.get("macs") and not pub.get("macs_reproducible", True):
        macs_pub += " — not reproducible by any counter, see note"
    console.print(f"MACs     {fmt_count(rep.macs)} (fvcore + handlers; FLOPs = 2 × MACs)   "
                  f"published {macs_pub}")
    console.print(f"thop     {fmt_count(rep.thop_macs)} MACs ({100 * (rep.thop_macs / max(rep.macs, 1) - 1):+.1f}% vs fvcore: "
                  "thop sees only registered modules, not functional attention matmuls or GRN)")
    if rep.latency:
        env = rep.latency.env
        console.print(f"latency  {rep.latency}  [{env.cpu}, {env.threads} thread(s), batch "
                      f"{env.batch}, {env.backend}, torch {env.torch_version}, {env.allocator}]")
    zero = ", ".join(f"{k.removeprefix('aten::')}×{v}" for k, v in sorted(rep.convention_zero_ops.items()))
    console.print(f"0 MACs by convention (element-wise): {zero or 'none'}")
    if rep.unsupported_ops:
        console.print(f"[red]ops with no handler: {rep.unsupported_ops}[/]")
    if pub.get("note"):
        console.print(f"note: {pub['note']}")


def _markdown(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def one_model(
    console: Console, preset: str | None, space: str | None, config: Path | None,
    resolution: int | None, fmt: str, latency: bool, threads: int, depth: int,
) -> None:
    """Report one preset or config file in the requested format."""
    family, cfg, name, found = _resolve(preset, space, config)
    res = resolution or (found.resolution if found else 224)
    torch.manual_seed(0)
    model = family.build(cfg)
    rep = model_report(model, family, name, res, preset=found, latency=latency, threads=threads,
                       depth=depth)
    if fmt == "json":
        print(json.dumps(rep.as_dict(), indent=2, default=str))
    elif fmt == "csv":
        print(rep.modules.to_csv(index=False), end="")
    elif fmt == "markdown":
        print(_markdown(rep.modules))
    else:
        _print_table(console, rep)


def preset_rows(resolution: int | None, latency: bool, threads: int) -> pd.DataFrame:
    """Measured vs. published params and MACs (and latency) for every preset of every family."""
    rows = []
    for family in FAMILIES.values():
        for key, preset in family.presets.items():
            res = resolution or preset.resolution
            torch.manual_seed(0)
            rep = model_report(family.build(preset.cfg), family, key, res, preset=preset,
                               latency=latency, threads=threads, depth=1)
            pub_params = preset.params_m * 1e6 if preset.params_m else None
            pub_macs = preset.macs_g * 1e9 if preset.macs_g else None
            rows.append({
                "family": family.name,
                "preset": key + (" (reconstructed)" if preset.reconstructed else ""),
                "published_as": preset.published,
                "resolution": res,
                "params_M": round(rep.params / 1e6, 2),
                "published_params_M": preset.params_m,
                "params_diff_%": round(100 * (rep.params / pub_params - 1), 1) if pub_params else None,
                "macs_G": round(rep.macs / 1e9, 3),
                "thop_macs_G": round(rep.thop_macs / 1e9, 3),
                "published_macs_G": preset.macs_g,
                "macs_diff_%": round(100 * (rep.macs / pub_macs - 1), 1) if pub_macs else None,
                "macs_reproducible": preset.macs_reproducible if pub_macs else None,
                "latency_ms": round(rep.latency.median_ms, 2) if rep.latency else None,
                "latency_iqr_ms": round(rep.latency.iqr_ms, 2) if rep.latency else None,
            })
    return pd.DataFrame(rows)


def all_presets(
    console: Console, resolution: int | None, fmt: str, latency: bool, threads: int
) -> None:
    """Print the measured-vs-published table of every preset."""
    frame = preset_rows(resolution, latency, threads)
    if fmt == "json":
        print(frame.to_json(orient="records", indent=2))
    elif fmt == "csv":
        print(frame.to_csv(index=False), end="")
    elif fmt == "markdown":
        print(_markdown(frame.fillna("–")))
    else:
        table = Table(title="Presets: measured vs. published", title_justify="left")
        for col in frame.columns:
            table.add_column(col, justify="left" if col in ("family", "preset", "published_as") else "right")
        for row in frame.fillna("–").itertuples(index=False):
            table.add_row(*(str(v) for v in row))
        console.print(table)

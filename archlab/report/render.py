"""Rendering of FLOP/param reports for the terminal, Markdown, CSV and JSON (used by the CLI).

A single model is a preset, a config file or a trial of a stored study (rebuilt from the space YAML
the study stores). Its report has three tables: modules (params, MACs, latency share timed in
context), stages, and fvcore vs thop op by op; ``--out DIR`` writes all of them as Markdown, CSV
and JSON, ``--figure`` draws the per-stage bars.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from rich.console import Console
from rich.table import Table

from archlab.models import FAMILIES, Preset, find_preset, load_config
from archlab.report.files import check_out_dir, check_out_file
from archlab.report.tables import ModelReport, fmt_count, markdown_table, model_report

__all__ = ["ModelSource", "all_presets", "one_model", "preset_rows", "report_markdown"]


@dataclass(frozen=True)
class ModelSource:
    """Which model to report: exactly one of a preset, a config file or a study's trial."""

    preset: str | None = None
    space: str | None = None
    config: Path | None = None
    study: str | None = None
    trial: int | None = None
    storage: str | None = None


def _resolve_trial(source: ModelSource) -> tuple[Any, Any, str, int]:
    from archlab.study.record import space_of
    from archlab.study.storage import load_study

    if source.trial is None or source.study is None:
        raise ValueError("--study and --trial go together")
    study = load_study(source.study, source.storage)
    space = space_of(study)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if source.trial not in trials:
        raise KeyError(
            f"study {source.study!r} has no trial {source.trial}; its trials are "
            f"0–{max(trials, default=-1)}"
        )
    cfg = space.to_cfg(trials[source.trial].params)
    return space.family, cfg, f"{source.study}#{source.trial}", space.resolution


def _resolve(
    preset: str | None, space: str | None, config: Path | None
) -> tuple[Any, Any, str, Preset | None]:
    if (preset is None) == (config is None):
        raise ValueError(
            "give exactly one of --preset, --config or --study/--trial (or --all-presets)"
        )
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
    _print_frame(console, _pretty(rep.modules), title)
    if rep.stages is not None:
        _print_frame(console, _pretty(rep.stages), "Per stage")
    if rep.counters is not None:
        counters = _pretty(rep.counters)
        _print_frame(console, counters.drop(columns="why"), "fvcore (+ handlers) vs thop, op by op")
        for row in counters.itertuples():
            if row.why and row.why != "same count":
                console.print(f"  {row.item}: {row.why}")
    pub = rep.published or {}
    console.print(
        f"params   {fmt_count(rep.params)}   published {_versus(rep.params, pub.get('params'))}"
    )
    macs_pub = _versus(rep.macs, pub.get("macs"))
    if pub.get("macs") and not pub.get("macs_reproducible", True):
        macs_pub += " — not reproducible by any counter, see note"
    console.print(
        f"MACs     {fmt_count(rep.macs)} (fvcore + handlers; FLOPs = 2 × MACs)   "
        f"published {macs_pub}"
    )
    thop_vs_fvcore = 100 * (rep.thop_macs / max(rep.macs, 1) - 1)
    console.print(
        f"thop     {fmt_count(rep.thop_macs)} MACs ({thop_vs_fvcore:+.1f}% vs fvcore: "
        "thop sees only registered modules, not functional attention matmuls or GRN)"
    )
    if rep.latency:
        env = rep.latency.env
        console.print(
            f"latency  {rep.latency}  [{env.cpu}, {env.threads} thread(s), batch "
            f"{env.batch}, {env.backend}, {env.memory_format}, "
            f"torch {env.torch_version}, {env.allocator}]"
        )
    if rep.int8:
        console.print(f"int8     {rep.int8}")
    zero = ", ".join(
        f"{k.removeprefix('aten::')}×{v}" for k, v in sorted(rep.convention_zero_ops.items())
    )
    console.print(f"0 MACs by convention (element-wise): {zero or 'none'}")
    if rep.unsupported_ops:
        console.print(f"[red]ops with no handler: {rep.unsupported_ops}[/]")
    if pub.get("note"):
        console.print(f"note: {pub['note']}")


def _pct(value: Any) -> str:
    return "–" if value is None or pd.isna(value) else f"{100 * value:.1f}%"


def _pretty(frame: pd.DataFrame) -> pd.DataFrame:
    """Counts as 1.23M, shares as percentages, milliseconds to 2 decimals (for people)."""
    out = frame.copy().astype(object)
    for col in out.columns:
        if col in ("params", "macs") or col.endswith("_macs"):
            out[col] = ["–" if v is None or pd.isna(v) else fmt_count(v) for v in frame[col]]
        elif col.endswith("_share"):
            out[col] = [_pct(v) for v in frame[col]]
        elif col.endswith("_ms"):
            out[col] = ["–" if v is None or pd.isna(v) else f"{v:.2f}" for v in frame[col]]
    return out.fillna("–")


def _print_frame(console: Console, frame: pd.DataFrame, title: str) -> None:
    table = Table(title=title, title_justify="left")
    for col in frame.columns:
        table.add_column(
            str(col),
            justify="left"
            if frame[col].map(lambda v: isinstance(v, str) and not v[:1].isdigit()).all()
            else "right",
        )
    for row in frame.itertuples(index=False):
        table.add_row(*(str(v) for v in row))
    console.print(table)


def report_markdown(rep: ModelReport) -> str:
    """The whole report of one model as a Markdown document."""
    pub = rep.published or {}
    lines = [f"# {rep.name} ({rep.family}) at {rep.resolution}×{rep.resolution}", ""]
    if rep.reconstructed:
        lines += ["Reconstructed config: the published layer table is unknown.", ""]
    lines += [
        f"- params: {fmt_count(rep.params)} (published {_versus(rep.params, pub.get('params'))})",
        f"- MACs: {fmt_count(rep.macs)} (fvcore + handlers; FLOPs = 2 × MACs; published "
        f"{_versus(rep.macs, pub.get('macs'))})",
        f"- thop: {fmt_count(rep.thop_macs)} MACs "
        f"({100 * (rep.thop_macs / max(rep.macs, 1) - 1):+.1f}% vs fvcore; see the last table)",
    ]
    if rep.latency:
        env = rep.latency.env
        lines.append(
            f"- latency: {rep.latency} [{env.cpu}, {env.threads} thread(s), batch "
            f"{env.batch}, {env.backend}, {env.memory_format}, torch "
            f"{env.torch_version}, {env.allocator}]"
        )
    if rep.int8:
        lines.append(f"- int8: {rep.int8}")
    lines += ["", "## Modules", "", _markdown(_pretty(rep.modules))]
    if rep.stages is not None:
        lines += ["", "## Stages", "", _markdown(_pretty(rep.stages))]
    if rep.counters is not None:
        lines += [
            "",
            "## fvcore (+ handlers) vs thop, op by op",
            "",
            _markdown(_pretty(rep.counters)),
        ]
    if pub.get("note"):
        lines += ["", f"Note: {pub['note']}"]
    return "\n".join(lines) + "\n"


_OUTPUT_SUFFIXES = (".md", ".json", "_modules.csv", "_stages.csv", "_counters.csv")


def _output_names(name: str) -> list[str]:
    """The files ``--out`` writes for a model of this name."""
    stem = re.sub(r"[^A-Za-z0-9_.@=-]+", "_", name)
    return [stem + suffix for suffix in _OUTPUT_SUFFIXES]


def _write_model_outputs(rep: ModelReport, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, js, modules, stages, counters = (out / n for n in _output_names(rep.name))
    paths = {
        md: report_markdown(rep),
        js: json.dumps(rep.as_dict(), indent=2, default=str),
        modules: rep.modules.to_csv(index=False),
    }
    if rep.stages is not None:
        paths[stages] = rep.stages.to_csv(index=False)
    if rep.counters is not None:
        paths[counters] = rep.counters.to_csv(index=False)
    for path, text in paths.items():
        path.write_text(text)
    return list(paths)


def _markdown(frame: pd.DataFrame) -> str:
    return markdown_table(frame)


def one_model(
    console: Console,
    source: ModelSource,
    resolution: int | None,
    fmt: str,
    latency: bool,
    threads: int,
    depth: int,
    *,
    figure: Path | None = None,
    out: Path | None = None,
    latency_options: dict[str, Any] | None = None,
    force: bool = False,
) -> None:
    """Report one preset, config file or study trial in the requested format.

    ``figure`` and the files in ``out`` are not overwritten unless ``force``
    (:class:`~archlab.report.files.OverwriteError`, raised before anything is measured).
    """
    if source.study is not None or source.trial is not None:
        if source.preset is not None or source.config is not None:
            raise ValueError("give exactly one of --preset, --config or --study/--trial")
        family, cfg, name, default_res = _resolve_trial(source)
        found = None
    else:
        family, cfg, name, found = _resolve(source.preset, source.space, source.config)
        default_res = found.resolution if found else 224
    if figure is not None:
        check_out_file(figure, force)
    if out is not None:
        check_out_dir(out, _output_names(name), force)
    res = resolution or default_res
    torch.manual_seed(0)
    model = family.build(cfg)
    rep = model_report(
        model,
        family,
        name,
        res,
        preset=found,
        latency=latency,
        threads=threads,
        depth=depth,
        breakdown=True,
        latency_options=latency_options,
    )
    if fmt == "json":
        print(json.dumps(rep.as_dict(), indent=2, default=str))
    elif fmt == "csv":
        print(rep.modules.to_csv(index=False), end="")
    elif fmt == "markdown":
        print(report_markdown(rep), end="")
    else:
        _print_table(console, rep)
    if figure is not None:
        from archlab.report.figure import save_stage_figure

        assert rep.stages is not None  # breakdown=True always fills it
        save_stage_figure(rep.stages, f"{rep.name} at {rep.resolution}px", figure)
        console.print(f"figure: {figure}", soft_wrap=True)
    if out is not None:
        paths = _write_model_outputs(rep, out)
        console.print(f"wrote {', '.join(str(p) for p in paths)}", soft_wrap=True)


def _thop_gap(model: Any, resolution: int) -> str:
    """The largest fvcore/thop difference of a model, e.g. 'scaled_dot_product_attention: −22M'."""
    from archlab.measurement.flops_compare import compare_counters

    rows = compare_counters(model, resolution)
    rows = rows[(rows["kind"] != "total") & (rows["diff_macs"] != 0)]
    if rows.empty:
        return "none"
    top = rows.iloc[0]
    sign = "+" if top["diff_macs"] > 0 else "−"
    return f"{top['item']}: {sign}{fmt_count(abs(top['diff_macs']))}"


def preset_rows(
    resolution: int | None,
    latency: bool,
    threads: int,
    *,
    why_thop: bool = False,
    latency_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Measured vs. published params and MACs (and latency) for every preset of every family.

    With ``why_thop`` a column names each preset's largest fvcore/thop difference.
    """
    rows = []
    for family in FAMILIES.values():
        for key, preset in family.presets.items():
            res = resolution or preset.resolution
            torch.manual_seed(0)
            model = family.build(preset.cfg)
            rep = model_report(
                model,
                family,
                key,
                res,
                preset=preset,
                latency=latency,
                threads=threads,
                depth=1,
                latency_options=latency_options,
            )
            pub_params = preset.params_m * 1e6 if preset.params_m else None
            pub_macs = preset.macs_g * 1e9 if preset.macs_g else None
            rows.append(
                {
                    "family": family.name,
                    "preset": key + (" (reconstructed)" if preset.reconstructed else ""),
                    "published_as": preset.published,
                    "resolution": res,
                    "params_M": round(rep.params / 1e6, 2),
                    "published_params_M": preset.params_m,
                    "params_diff_%": round(100 * (rep.params / pub_params - 1), 1)
                    if pub_params
                    else None,
                    "macs_G": round(rep.macs / 1e9, 3),
                    "thop_macs_G": round(rep.thop_macs / 1e9, 3),
                    "published_macs_G": preset.macs_g,
                    "macs_diff_%": round(100 * (rep.macs / pub_macs - 1), 1) if pub_macs else None,
                    "macs_reproducible": preset.macs_reproducible if pub_macs else None,
                    "latency_ms": round(rep.latency.median_ms, 2) if rep.latency else None,
                    "latency_iqr_ms": round(rep.latency.iqr_ms, 2) if rep.latency else None,
                }
            )
            if rep.int8:
                rows[-1]["int8_top1_agreement"] = round(rep.int8.top1_agreement, 3)
                rows[-1]["int8_centred_top1_agreement"] = round(rep.int8.centred_top1_agreement, 3)
            if why_thop:
                rows[-1]["thop_largest_gap"] = _thop_gap(model, res)
    return pd.DataFrame(rows)


def _presets_markdown(frame: pd.DataFrame, latency_env: str) -> str:
    notes = []
    for r in frame.itertuples():
        note = FAMILIES[r.family].presets[r.preset.split(" ")[0]].note
        if note:
            notes.append(f"- **{r.family}/{r.preset}**: {note}")
    lines = [
        "# Reproduction report: measured vs. published figures of every preset",
        "",
        "MACs: fvcore with archlab's handlers (one multiply-add = 1; FLOPs = 2 × MACs), counted at "
        "the published resolution. thop is shown beside; `thop_largest_gap` names the op or "
        "module type where the two counters differ most (see `archlab report --preset NAME`).",
    ]
    if latency_env:
        lines += ["", f"Latency: {latency_env}"]
    lines += ["", _markdown(frame.fillna("–"))]
    if notes:
        lines += ["", "## Notes", "", *notes]
    return "\n".join(lines) + "\n"


def _latency_env(latency: bool, threads: int, options: dict[str, Any]) -> str:
    if not latency:
        return ""
    from archlab.measurement.allocator import ALLOCATORS, describe_allocator
    from archlab.measurement.latency import cpu_model

    allocator = options.get("allocator")
    alloc = (
        describe_allocator()
        if allocator is None
        else describe_allocator({"GLIBC_TUNABLES": ALLOCATORS[allocator] or ""})
    )
    return (
        f"median of timed passes on {cpu_model()}, {threads} thread(s), batch "
        f"{options.get('batch', 1)}, {options.get('backend', 'eager')}, "
        f"{options.get('memory_format', 'contiguous')}, torch {torch.__version__}, {alloc}"
    )


def all_presets(
    console: Console,
    resolution: int | None,
    fmt: str,
    latency: bool,
    threads: int,
    *,
    out: Path | None = None,
    latency_options: dict[str, Any] | None = None,
    force: bool = False,
) -> None:
    """Print the measured-vs-published table of every preset; ``out``: also write it as files.

    With ``out``, ``DIR/presets.md`` (the reproduction report) and ``DIR/presets.csv`` are
    written (replacing earlier ones only with ``force``), and the table gets the
    ``thop_largest_gap`` column.
    """
    if out is not None:
        check_out_dir(out, ["presets.md", "presets.csv"], force)
    options = latency_options or {}
    frame = preset_rows(
        resolution, latency, threads, why_thop=out is not None, latency_options=options
    )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "presets.md").write_text(
            _presets_markdown(frame, _latency_env(latency, threads, options))
        )
        frame.to_csv(out / "presets.csv", index=False)
        console.print(f"wrote {out / 'presets.md'} and {out / 'presets.csv'}", soft_wrap=True)
    if fmt == "json":
        print(frame.to_json(orient="records", indent=2))
    elif fmt == "csv":
        print(frame.to_csv(index=False), end="")
    elif fmt == "markdown":
        print(_markdown(frame.fillna("–")))
    else:
        table = Table(title="Presets: measured vs. published", title_justify="left")
        for col in frame.columns:
            table.add_column(
                col, justify="left" if col in ("family", "preset", "published_as") else "right"
            )
        for row in frame.fillna("–").itertuples(index=False):
            table.add_row(*(str(v) for v in row))
        console.print(table)

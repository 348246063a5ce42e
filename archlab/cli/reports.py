"""``archlab report`` and ``archlab export``: FLOP/param reports and exported models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from archlab.cli.common import (
    Allocator,
    Backend,
    Fmt,
    MemoryFormat,
    _fail,
    _latency_options,
    _quiet_optuna,
    app,
    console,
    storage_option,
)


@app.command()
def report(
    preset: Annotated[str | None, typer.Option(help="Preset name, e.g. lw-plgvit-a.")] = None,
    space: Annotated[
        str | None, typer.Option(help="Space (family) the preset belongs to; checked if given.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="A config file (YAML/JSON with a 'family' key).")
    ] = None,
    all_presets: Annotated[
        bool,
        typer.Option(
            "--all-presets", help="One row per preset of every family: measured vs. published."
        ),
    ] = False,
    resolution: Annotated[
        int | None,
        typer.Option(
            min=32,
            max=2048,
            help="Input resolution. Default: the preset's published one, else 224.",
        ),
    ] = None,
    format: Annotated[Fmt, typer.Option(help="table, json, csv or markdown.")] = Fmt.table,
    latency: Annotated[bool, typer.Option(help="Measure CPU latency too.")] = True,
    threads: Annotated[
        int, typer.Option(min=1, max=1024, help="CPU threads for the latency measurement.")
    ] = 1,
    depth: Annotated[
        int, typer.Option(min=0, max=32, help="Module nesting depth of the per-module table.")
    ] = 2,
    study: Annotated[
        str | None, typer.Option(help="Report a trial of this study (with --trial).")
    ] = None,
    trial: Annotated[
        int | None,
        typer.Option(help="Trial number of --study; rebuilt from the study's stored space."),
    ] = None,
    storage: Annotated[
        str | None,
        storage_option("Optuna storage URL of --study. Default: studies/archlab.db."),
    ] = None,
    figure: Annotated[
        Path | None,
        typer.Option(
            help=(
                "Also draw per-stage stacked bars of MACs, params and latency (.png, .svg or .pdf)."
            )
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help=(
                "Also write the report into this folder (Markdown + CSV + JSON; with "
                "--all-presets: presets.md and presets.csv)."
            )
        ),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Batch size of the latency measurement.")] = 1,
    backend: Annotated[
        Backend,
        typer.Option(
            help=(
                "Inference backend timed: eager, torchscript (trace + freeze), onnxruntime or "
                "onnxruntime-int8 (linear layers' weights in int8; also prints its top-1 "
                "agreement with float)."
            )
        ),
    ] = Backend.eager,
    memory_format: Annotated[
        MemoryFormat, typer.Option(help="contiguous or channels_last (eager and torchscript).")
    ] = MemoryFormat.contiguous,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite files that --out or --figure would replace.")
    ] = False,
    allocator: Annotated[
        Allocator | None,
        typer.Option(
            help=(
                "Time the whole model in a fresh process with this glibc malloc setting (default "
                "or no-trim). Default: this process's."
            )
        ),
    ] = None,
) -> None:
    """FLOP/param report of a preset, config or study trial.

    Modules, stages, fvcore vs thop, latency.
    """
    from archlab.report import render as report_render

    _quiet_optuna()
    _check_parent(figure, "--figure")
    _check_parent(out, "--out")
    options = _latency_options(batch, backend, memory_format, allocator)
    try:
        if all_presets:
            report_render.all_presets(
                console,
                resolution,
                format.value,
                latency,
                threads,
                out=out,
                latency_options=options,
                force=force,
            )
        else:
            source = report_render.ModelSource(preset, space, config, study, trial, storage)
            report_render.one_model(
                console,
                source,
                resolution,
                format.value,
                latency,
                threads,
                depth,
                figure=figure,
                out=out,
                latency_options=options,
                force=force,
            )
    except (KeyError, ValueError) as err:
        _fail(str(err.args[0]) if err.args else str(err))


@app.command()
def export(
    study: Annotated[str | None, typer.Option(help="Study the trial belongs to.")] = None,
    trial: Annotated[
        int | None, typer.Option(help="Trial number (a complete trial of --study).")
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="Export a preset instead, e.g. lw-plgvit-a.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help=(
                "Output folder. Default: studies/STUDY/picks/FAMILY@LATms_GMACSgmacs/ (presets: "
                "studies/presets/…)."
            )
        ),
    ] = None,
    storage: Annotated[
        str | None,
        storage_option("Optuna storage URL of --study. Default: studies/archlab.db."),
    ] = None,
    resolution: Annotated[
        int | None,
        typer.Option(
            min=32,
            max=2048,
            help="Presets only: input resolution. Default: the preset's published one.",
        ),
    ] = None,
    latency: Annotated[
        bool,
        typer.Option(
            help=(
                "Presets only: measure CPU latency for the report (trials reuse the latency "
                "measured in the search)."
            )
        ),
    ] = True,
    onnx: Annotated[
        bool, typer.Option(help="Also write model.onnx, checked with onnx and ONNX Runtime.")
    ] = True,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the files of an earlier export there.")
    ] = False,
    weights: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help=(
                "Presets only: a checkpoint saved by the authors' released code (SBCFormer, "
                "Mobile-Former, ParC-Net and the ParC ConvNets), loaded into the preset key by key."
            ),
        ),
    ] = None,
) -> None:
    """Write config.yaml, model.pt, model.onnx and report.md for a trial or a preset."""
    from archlab.report import export as exporter

    _quiet_optuna()
    if (preset is None) == (study is None) or (study is not None) != (trial is not None):
        _fail("give --study NAME --trial N (a trial), or --preset NAME (a preset)")
    _check_parent(out, "--out")
    if weights is not None and preset is None:
        _fail("--weights applies to --preset only")
    try:
        if preset is not None:
            result = exporter.export_preset(preset, out, resolution, latency, onnx, force, weights)
        else:
            result = exporter.export_trial(study, trial, out, storage, onnx, force)  # type: ignore[arg-type]
    except (KeyError, ValueError) as err:
        _fail(str(err.args[0]) if err.args else str(err))
        return
    console.print(f"Exported to {result.out}", soft_wrap=True)
    for path in result.files:
        console.print(f"  {path.name}")
    console.print(f"ONNX: {result.onnx_note}", soft_wrap=True)


def _check_parent(path: Path | None, option: str) -> None:
    """Outputs go into existing folders only: a typo must not create folders anywhere."""
    if path is not None and not path.parent.is_dir():
        _fail(f"{option}: folder {path.parent} does not exist")

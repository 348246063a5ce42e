"""The ``archlab`` command line: each command parses its options, calls the library, prints."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from archlab.study.objectives import DEFAULT_OBJECTIVES, OBJECTIVES

app = typer.Typer(
    help="Hardware-aware architecture search over light-weight ViTs and CNN–transformer hybrids.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|min|h)?\s*$")
_UNIT_S = {"ms": 1e-3, "s": 1.0, None: 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """'1s', '250ms', '0.5s', '2m', '1h', or a bare number of seconds → seconds.

    Raises:
        typer.BadParameter: not a positive duration.
    """
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise typer.BadParameter(f"{text!r} is not a duration; write e.g. 1s, 250ms, 0.5s or 2m")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


class Fmt(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class Backend(str, Enum):
    eager = "eager"
    torchscript = "torchscript"
    onnxruntime = "onnxruntime"


class MemoryFormat(str, Enum):
    contiguous = "contiguous"
    channels_last = "channels_last"


class Allocator(str, Enum):
    default = "default"
    no_trim = "no-trim"


class LatencyMode(str, Enum):
    measured = "measured"
    predicted = "predicted"


class UnseenBlocks(str, Enum):
    auto = "auto"
    measure = "measure"
    estimate = "estimate"


def _latency_options(
    batch: int, backend: Backend, memory_format: MemoryFormat, allocator: Allocator | None
) -> dict[str, Any]:
    options: dict[str, Any] = {
        "batch": batch,
        "backend": backend.value,
        "memory_format": memory_format.value,
    }
    if allocator is not None:
        options["allocator"] = allocator.value
    return options


def _fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def _quiet_optuna() -> None:
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logging.getLogger("fvcore").setLevel(logging.ERROR)


def _frame_table(frame: Any, columns: list[str], title: str) -> Table:
    from archlab.report.tables import fmt_count

    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(
            col.replace("objective:", ""), justify="right" if col != "state" else "left"
        )
    for _, row in frame.iterrows():
        cells = []
        for col in columns:
            value = row.get(col)
            if col in ("params", "macs"):
                cells.append(fmt_count(value))
            elif isinstance(value, float):
                cells.append(f"{value:.2f}")
            else:
                cells.append(str(value))
        table.add_row(*cells)
    return table


def _print_front(study: Any, fmt: Fmt = Fmt.table) -> None:
    from archlab.report.tables import pareto_frame

    front = pareto_frame(study)
    if fmt is Fmt.json:
        records = [] if front.empty else front.to_dict(orient="records")
        typer.echo(
            json.dumps({"study": study.study_name, "pareto": records}, indent=2, default=str)
        )
        return
    if fmt is Fmt.csv:
        typer.echo(front.to_csv(index=False), nl=False)
        return
    if front.empty:
        console.print("[yellow]No feasible completed trial yet: the Pareto front is empty.[/]")
        return
    objective_cols = [c for c in front.columns if c.startswith("objective:")]
    cols = ["number", *objective_cols, "params", "macs", "latency_iqr_ms", "feasible"]
    if "latency_ms_predicted" in front and front["latency_ms_predicted"].notna().any():
        cols[-1:-1] = ["latency_ms_predicted", "latency_ms"]  # latency_ms: re-measured whole
    console.print(_frame_table(front, cols, f"Feasible Pareto front of {study.study_name!r}"))
    _print_prediction_check(study)


def _print_prediction_check(study: Any) -> None:
    from archlab.report.tables import prediction_check

    check = prediction_check(study)
    if check is None:
        return
    line = (
        f"Predicted vs re-measured latency of {check['models']:.0f} front models: median error "
        f"{100 * check['median_error']:+.1f}% (|{100 * check['median_abs_error']:.1f}|%)."
    )
    if "speed_vs_profile" in check:
        line += (
            f" Latencies here were ×{check['speed_vs_profile']:.2f} those of when the profile was "
            "made (its calibration models, timed alongside); on the profile's time base: "
            f"{100 * check['profile_time_median_error']:+.1f}% "
            f"(|{100 * check['profile_time_median_abs_error']:.1f}|%)."
        )
    console.print(line, soft_wrap=True)


@app.command()
def search(
    space: Annotated[
        str, typer.Option(help="Space name in search_spaces/ or a path to a space .yaml.")
    ] = "plgvit",
    target_latency: Annotated[
        str, typer.Option(help="Latency budget per image, e.g. 1s, 250ms, 0.5s.")
    ] = "1s",
    n_trials: Annotated[int, typer.Option(help="Trials to add in this run.")] = 20,
    timeout: Annotated[
        str | None, typer.Option(help="Stop starting trials after this long, e.g. 10m.")
    ] = None,
    study: Annotated[
        str | None,
        typer.Option(help="Study name; an existing name resumes it. Default: SPACE@TARGETms."),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help=(
                "Optuna storage URL (sqlite:///…, postgresql://…, journal:///file.log). Default: "
                "studies/archlab.db."
            )
        ),
    ] = None,
    sampler: Annotated[
        str,
        typer.Option(
            help="auto (multivariate TPE for 2 objectives, NSGA-III for 3-4), tpe, nsga2, nsga3 "
            "or random."
        ),
    ] = "auto",
    population: Annotated[int, typer.Option(help="Population size of NSGA-II/III.")] = 24,
    seed: Annotated[
        int, typer.Option(help="Sampler and weight-init seed (reproducible searches).")
    ] = 0,
    threads: Annotated[int, typer.Option(help="CPU threads for latency measurement.")] = 1,
    resolution: Annotated[
        int | None, typer.Option(help="Input resolution (multiple of 32). Default: the space's.")
    ] = None,
    objectives: Annotated[
        str,
        typer.Option(help=f"Two to four comma-separated objectives from: {', '.join(OBJECTIVES)}."),
    ] = ",".join(DEFAULT_OBJECTIVES),
    proxy_resolution: Annotated[
        int,
        typer.Option(
            help=(
                "Input size of the accuracy estimates (proxies, short training); the arch is "
                "reduced to it."
            )
        ),
    ] = 64,
    train_steps: Annotated[
        int, typer.Option(min=1, help="short_train: optimiser steps per trial.")
    ] = 100,
    train_batch: Annotated[int, typer.Option(min=1, help="short_train: images per step.")] = 32,
    train_time_limit: Annotated[
        str,
        typer.Option(
            help="short_train: stop training a trial after this long and evaluate, e.g. 2m."
        ),
    ] = "2m",
    data: Annotated[
        Path | None,
        typer.Option(
            help=(
                "short_train: an ImageFolder directory (class sub-folders of images). Default: "
                "scikit-learn digits."
            )
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help=(
                "Worker processes on this machine sharing the trials (each with --threads threads)."
            ),
        ),
    ] = 1,
    grace_period: Annotated[
        str,
        typer.Option(
            help="Fail (and retry once) a trial whose worker sent no heartbeat this long, e.g. 3m."
        ),
    ] = "3m",
    latency: Annotated[
        LatencyMode,
        typer.Option(
            help=(
                "measured (time every candidate) or predicted (device profile lookup; the final "
                "front is re-measured)."
            )
        ),
    ] = LatencyMode.measured,
    latency_model: Annotated[
        Path | None,
        typer.Option(help="Device profile for --latency predicted (archlab profile-device)."),
    ] = None,
    unseen_blocks: Annotated[
        UnseenBlocks,
        typer.Option(
            help=(
                "Predicted mode, blocks the profile lacks: measure (in context, added to the "
                "profile), estimate (the profile's cost model; faster, flagged), or auto (measure "
                "on the profile's own setup, else estimate)."
            )
        ),
    ] = UnseenBlocks.auto,
    max_memory: Annotated[
        str | None, typer.Option(help="Constraint on peak inference memory, e.g. 200MB or 1.5GB.")
    ] = None,
    backend: Annotated[
        Backend, typer.Option(help="Inference backend timed: eager, torchscript or onnxruntime.")
    ] = Backend.eager,
) -> None:
    """Search a space for the Pareto front of accuracy estimate vs. measured CPU latency."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from archlab.measurement.memory import parse_bytes
    from archlab.search.loop import (
        SearchError,
        SearchResult,
        SearchSpec,
        resolve_sampler,
        run_search,
    )
    from archlab.space import SpaceError
    from archlab.study.storage import StorageError, default_storage_url

    _quiet_optuna()
    try:
        max_memory_bytes = parse_bytes(max_memory) if max_memory else None
    except ValueError as err:
        _fail(str(err))
        return
    spec = SearchSpec(
        space=space,
        study_name=study,
        storage=storage,
        target_latency_s=parse_duration(target_latency),
        n_trials=n_trials,
        timeout_s=parse_duration(timeout) if timeout else None,
        sampler=sampler,
        population_size=population,
        seed=seed,
        threads=threads,
        resolution=resolution,
        objectives=tuple(o.strip() for o in objectives.split(",") if o.strip()),
        grace_period_s=round(parse_duration(grace_period)),
        proxy_resolution=proxy_resolution,
        train_steps=train_steps,
        train_batch=train_batch,
        train_time_limit_s=parse_duration(train_time_limit),
        data=str(data) if data else None,
        latency_mode=latency.value,
        latency_model=str(latency_model) if latency_model else None,
        unseen_blocks=unseen_blocks.value,
        max_memory_bytes=max_memory_bytes,
        backend=backend.value,
    )
    console.print(
        f"Searching [bold]{spec.space_name()}[/] under {spec.target_latency_s * 1e3:.0f} ms "
        f"as study [bold]{spec.resolved_name()}[/] ({n_trials} trials, {resolve_sampler(spec)}, "
        f"{threads} thread{'s' if threads > 1 else ''}"
        + (f" × {workers} workers)" if workers > 1 else ")")
    )
    if workers > 1 and workers * threads > (os.cpu_count() or 1):
        console.print(
            f"[yellow]{workers} workers × {threads} threads exceed the {os.cpu_count()} "
            "CPUs: workers will slow each other's latency measurements.[/]"
        )
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("trials", total=n_trials)
        training = progress.add_task("short training", total=train_steps, visible=False)

        def train_step(step: int, steps: int, loss: float) -> None:
            progress.update(
                training,
                completed=step,
                total=steps,
                visible=True,
                description=f"  training step {step}/{steps}, loss {loss:.3f}",
            )

        def advance(study_: Any, trial: Any) -> None:
            progress.update(
                task, advance=1, description=f"trial {trial.number} {trial.state.name.lower()}"
            )

        def finished(n: int) -> None:
            progress.update(task, completed=n, description=f"trials ({workers} workers)")

        result: SearchResult
        try:
            if workers > 1:
                from archlab.search.workers import run_workers

                result = run_workers(spec, workers, on_progress=finished)
                if spec.latency_mode == "predicted":
                    from archlab.search.loop import remeasure_study_front

                    remeasure_study_front(result.study, spec)
            else:
                result = run_search(spec, callbacks=[advance], progress=train_step)
        except (SearchError, SpaceError, StorageError, ValueError) as err:
            progress.stop()
            _fail(str(err))
            return
    _print_failed_workers(result)
    states = [t.state.name for t in result.study.trials]
    if result.interrupted:
        console.print(
            "[yellow]Interrupted: finished trials are kept; run the same command to resume.[/]"
        )
    console.print(
        f"{result.new_trials} new trials; study now has {len(states)} "
        f"({states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned, "
        f"{states.count('FAIL')} failed)."
    )
    _print_front(result.study)
    out = _write_outputs(result)
    console.print(
        f"Storage: {storage or default_storage_url()}   study: {result.study.study_name}",
        soft_wrap=True,
    )
    console.print(f"Outputs: {out}", soft_wrap=True)
    storage_opt = f" --storage '{storage}'" if storage else ""
    console.print(
        f"Front again: archlab pareto --study '{result.study.study_name}'{storage_opt}",
        soft_wrap=True,
    )
    console.print(
        f"Dashboard:   archlab dashboard{storage_opt}   (then open the URL it prints; "
        "from a clone without an activated venv: .venv/bin/archlab dashboard)",
        soft_wrap=True,
    )


def _print_failed_workers(result: Any) -> None:
    if result.interrupted:  # Ctrl-C stopped every worker; each marked its running trial failed
        return
    failed = result.failed_workers() if hasattr(result, "failed_workers") else []
    for index, code, log in failed:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        console.print(
            f"[yellow]Worker {index} {how}; its log: {log}. A trial it left running is "
            "failed and retried once by the next worker that joins after the grace "
            "period.[/]",
            soft_wrap=True,
        )


@app.command()
def worker(
    study: Annotated[
        str, typer.Option(help="Name of the study to join (created by archlab search).")
    ],
    storage: Annotated[
        str | None,
        typer.Option(
            help=(
                "Its storage URL (sqlite:///…, postgresql://…, journal:///file.log). Default: "
                "studies/archlab.db."
            )
        ),
    ] = None,
    n_trials: Annotated[
        int | None, typer.Option(min=1, help="Trials to run. Default: until --timeout or Ctrl-C.")
    ] = None,
    timeout: Annotated[
        str | None, typer.Option(help="Stop starting trials after this long, e.g. 10m.")
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Sampler seed. Default: drawn from the OS, so workers differ."),
    ] = None,
) -> None:
    """Join an existing study from this process or machine and run its trials.

    The space and every setting come from the study itself; only its name and storage are needed.
    """
    from archlab.search.workers import run_worker
    from archlab.space import SpaceError
    from archlab.study.heartbeat import worker_id
    from archlab.study.storage import StorageError

    _quiet_optuna()

    def show(study_: Any, trial: Any) -> None:
        values = ", ".join(f"{v:.4g}" for v in trial.values or [])
        console.print(
            f"trial {trial.number} {trial.state.name.lower()}" + (f" ({values})" if values else "")
        )

    try:
        result = run_worker(
            study,
            storage,
            n_trials=n_trials,
            seed=seed,
            callbacks=[show],
            timeout_s=parse_duration(timeout) if timeout else None,
        )
    except (SpaceError, StorageError, ValueError) as err:
        _fail(str(err))
        return
    console.print(
        f"Worker {worker_id()} ran {result.new_trials} trials; study "
        f"{study!r} now has {len(result.study.trials)}."
    )
    if result.interrupted:
        raise typer.Exit(130)


def _write_outputs(result: Any) -> Path:
    import yaml

    from archlab.report.tables import pareto_frame
    from archlab.study.storage import study_dir

    out = study_dir(result.study.study_name)
    (out / "spec.yaml").write_text(yaml.safe_dump(result.stored_spec, sort_keys=False))
    pareto_frame(result.study).to_csv(out / "pareto.csv", index=False)
    return out


@app.command()
def pareto(
    study: Annotated[str, typer.Option(help="Study name.")],
    storage: Annotated[
        str | None, typer.Option(help="Optuna storage URL. Default: studies/archlab.db.")
    ] = None,
    format: Annotated[Fmt, typer.Option(help="table, json or csv.")] = Fmt.table,
) -> None:
    """Print the feasible Pareto front of a stored study."""
    from archlab.study.storage import StorageError, load_study

    _quiet_optuna()
    try:
        loaded = load_study(study, storage)
    except StorageError as err:
        _fail(str(err))
        return
    _print_front(loaded, Fmt.table if format is Fmt.markdown else format)


@app.command()
def spaces(
    format: Annotated[Fmt, typer.Option(help="table or json.")] = Fmt.table,
) -> None:
    """List every shipped search space with its knobs and the family's presets."""
    from archlab.space import SpaceError, list_spaces, load_space

    entries: list[dict[str, Any]] = []
    names = list_spaces()
    if not names:
        _fail("no search spaces found: archlab's search_spaces/ folder is empty or missing")
        return
    for name in names:
        try:
            sp = load_space(name)
        except SpaceError as err:
            _fail(str(err))
            return
        entries.append(
            {
                "name": name,
                "family": sp.family.name,
                "description": sp.description,
                "resolution": sp.resolution,
                "knobs": {k: knob.describe() for k, knob in sp.knobs.items()},
                "presets": [
                    {"name": p, "published": pr.published, "reconstructed": pr.reconstructed}
                    for p, pr in sp.family.presets.items()
                ],
            }
        )
    if format is Fmt.json:
        typer.echo(json.dumps(entries, indent=2))
        return
    for e in entries:
        table = Table(
            title=f"{e['name']} — {e['description']} (family {e['family']}, {e['resolution']}px)",
            title_justify="left",
        )
        table.add_column("knob")
        table.add_column("choices")
        for k, v in e["knobs"].items():
            table.add_row(k, v)
        console.print(table)
        presets = ", ".join(
            p["name"] + (" (reconstructed)" if p["reconstructed"] else "") for p in e["presets"]
        )
        console.print(f"presets: {presets}\n")


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
        typer.Option(help="Input resolution. Default: the preset's published one, else 224."),
    ] = None,
    format: Annotated[Fmt, typer.Option(help="table, json, csv or markdown.")] = Fmt.table,
    latency: Annotated[bool, typer.Option(help="Measure CPU latency too.")] = True,
    threads: Annotated[int, typer.Option(help="CPU threads for the latency measurement.")] = 1,
    depth: Annotated[int, typer.Option(help="Module nesting depth of the per-module table.")] = 2,
    study: Annotated[
        str | None, typer.Option(help="Report a trial of this study (with --trial).")
    ] = None,
    trial: Annotated[
        int | None,
        typer.Option(help="Trial number of --study; rebuilt from the study's stored space."),
    ] = None,
    storage: Annotated[
        str | None, typer.Option(help="Optuna storage URL of --study. Default: studies/archlab.db.")
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
            help="Inference backend timed: eager, torchscript (trace + freeze) or onnxruntime."
        ),
    ] = Backend.eager,
    memory_format: Annotated[
        MemoryFormat, typer.Option(help="contiguous or channels_last (eager and torchscript).")
    ] = MemoryFormat.contiguous,
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
        str | None, typer.Option(help="Optuna storage URL of --study. Default: studies/archlab.db.")
    ] = None,
    resolution: Annotated[
        int | None,
        typer.Option(help="Presets only: input resolution. Default: the preset's published one."),
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
) -> None:
    """Write config.yaml, model.pt, model.onnx and report.md for a trial or a preset."""
    from archlab.report import export as exporter
    _quiet_optuna()
    if (preset is None) == (study is None) or (study is not None) != (trial is not None):
        _fail("give --study NAME --trial N (a trial), or --preset NAME (a preset)")
    try:
        if preset is not None:
            result = exporter.export_preset(preset, out, resolution, latency, onnx)
        else:
            result = exporter.export_trial(study, trial, out, storage, onnx)  # type: ignore[arg-type]
    except (KeyError, ValueError) as err:
        _fail(str(err.args[0]) if err.args else str(err))
        return
    console.print(f"Exported to {result.out}", soft_wrap=True)
    for path in result.files:
        console.print(f"  {path.name}")
    console.print(f"ONNX: {result.onnx_note}", soft_wrap=True)


@app.command()
def dashboard(
    storage: Annotated[
        str | None, typer.Option(help="Optuna storage URL to show. Default: studies/archlab.db.")
    ] = None,
    port: Annotated[int, typer.Option(help="Local port to serve the dashboard on.")] = 8501,
    address: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0 to reach it from other machines).")
    ] = "localhost",
) -> None:
    """Open the Pareto explorer (Streamlit) on the studies of a storage; Ctrl-C stops it."""
    from archlab.dashboard.launch import run_dashboard

    try:
        code = run_dashboard(storage, port, address)
    except ValueError as err:
        _fail(str(err))
        return
    raise typer.Exit(code)


@app.command("profile-device")
def profile_device(
    space: Annotated[
        str, typer.Option(help="Space name in search_spaces/ or a path to a space .yaml.")
    ],
    out: Annotated[Path, typer.Option(help="Profile file to write (JSON).")],
    threads: Annotated[int, typer.Option(min=1, help="CPU threads the latencies are for.")] = 1,
    backend: Annotated[
        Backend,
        typer.Option(help="Backend of the whole-model calibration (blocks are timed eagerly)."),
    ] = Backend.eager,
    batch: Annotated[int, typer.Option(min=1, help="Batch size.")] = 1,
    n_models: Annotated[
        int, typer.Option(min=1, help="Sampled architectures whose blocks are timed in context.")
    ] = 24,
    calibration: Annotated[
        int, typer.Option(min=1, help="How many of them are measured whole to fit the calibration.")
    ] = 24,
    runs: Annotated[int, typer.Option(min=1, help="Hooked forward passes per architecture.")] = 30,
    calibration_processes: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Fresh processes timing the calibration models at once (each builds them all; "
            "fewer on a board short of RAM). Default: one per free core.",
        ),
    ] = None,
    resolution: Annotated[
        int | None, typer.Option(help="Input resolution. Default: the space's.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
) -> None:
    """Measure a device profile: in-context block latencies of a space plus a calibration."""
    from archlab.predict.profile import profile_device as run_profile
    from archlab.space import SpaceError

    _quiet_optuna()
    try:
        profile = run_profile(
            space,
            threads=threads,
            backend=backend.value,
            batch=batch,
            n_models=n_models,
            n_calibration=calibration,
            runs=runs,
            seed=seed,
            resolution=resolution,
            calibration_processes=calibration_processes,
            on_progress=console.print,
        )
    except (SpaceError, ValueError) as err:
        _fail(str(err))
        return
    profile.save(out)
    cal = profile.calibration
    error = "–" if cal.fit_error is None else f"{100 * cal.fit_error:.1f}%"
    console.print(
        f"{len(profile.entries)} distinct blocks; calibration: latency ≈ "
        f"{cal.slope:.3f} × Σ blocks + {cal.intercept_ms:.2f} ms over {cal.n_models} "
        f"models (leave-one-out median error {error})"
    )
    console.print(f"Profile: {out}", soft_wrap=True)


def main() -> None:  # pragma: no cover - entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())

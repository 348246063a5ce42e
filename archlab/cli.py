"""The ``archlab`` command line: each command parses its options, calls the library, prints."""

from __future__ import annotations

import json
import logging
import re
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

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


def _fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("fvcore").setLevel(logging.ERROR)


def _frame_table(frame: Any, columns: list[str], title: str) -> Table:
    from archlab.report import fmt_count

    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col.replace("objective:", ""), justify="right" if col != "state" else "left")
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
    from archlab.report import pareto_frame

    front = pareto_frame(study)
    if fmt is Fmt.json:
        records = [] if front.empty else front.to_dict(orient="records")
        typer.echo(json.dumps({"study": study.study_name, "pareto": records}, indent=2, default=str))
        return
    if fmt is Fmt.csv:
        typer.echo(front.to_csv(index=False), nl=False)
        return
    if front.empty:
        console.print("[yellow]No feasible completed trial yet: the Pareto front is empty.[/]")
        return
    objective_cols = [c for c in front.columns if c.startswith("objective:")]
    cols = ["number", *objective_cols, "params", "macs", "latency_iqr_ms", "feasible"]
    console.print(_frame_table(front, cols, f"Feasible Pareto front of {study.study_name!r}"))


@app.command()
def search(
    space: Annotated[str, typer.Option(help="Space name in search_spaces/ or a path to a space .yaml.")] = "plgvit",
    target_latency: Annotated[str, typer.Option(help="Latency budget per image, e.g. 1s, 250ms, 0.5s.")] = "1s",
    n_trials: Annotated[int, typer.Option(help="Trials to add in this run.")] = 20,
    timeout: Annotated[str | None, typer.Option(help="Stop starting trials after this long, e.g. 10m.")] = None,
    study: Annotated[str | None, typer.Option(help="Study name; an existing name resumes it. Default: SPACE@TARGETms.")] = None,
    storage: Annotated[str | None, typer.Option(help="Optuna storage URL (sqlite:///…, postgresql://…, journal:///file.log). Default: studies/archlab.db.")] = None,
    sampler: Annotated[str, typer.Option(help="nsga2 (default), tpe, random or nsga3.")] = "nsga2",
    population: Annotated[int, typer.Option(help="Population size of NSGA-II/III.")] = 24,
    seed: Annotated[int, typer.Option(help="Sampler and weight-init seed (reproducible searches).")] = 0,
    threads: Annotated[int, typer.Option(help="CPU threads for latency measurement.")] = 1,
    resolution: Annotated[int | None, typer.Option(help="Input resolution (multiple of 32). Default: the space's.")] = None,
    objectives: Annotated[str, typer.Option(help="Comma-separated objectives from: naswot, latency, macs, params.")] = "naswot,latency",
) -> None:
    """Search a space for the Pareto front of accuracy estimate vs. measured CPU latency."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from archlab.search import SearchError, SearchSpec, run_search
    from archlab.space import SpaceError
    from archlab.storage import StorageError, default_storage_url

    _quiet_optuna()
    spec = SearchSpec(
        space=space, study_name=study, storage=storage,
        target_latency_s=parse_duration(target_latency), n_trials=n_trials,
        timeout_s=parse_duration(timeout) if timeout else None, sampler=sampler,
        population_size=population, seed=seed, threads=threads, resolution=resolution,
        objectives=tuple(o.strip() for o in objectives.split(",") if o.strip()),
    )
    console.print(f"Searching [bold]{spec.space_name()}[/] under {spec.target_latency_s * 1e3:.0f} ms "
                  f"as study [bold]{spec.resolved_name()}[/] ({n_trials} trials, {sampler}, "
                  f"{threads} thread{'s' if threads > 1 else ''})")
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        task = progress.add_task("trials", total=n_trials)

        def advance(study_: Any, trial: Any) -> None:
            progress.update(task, advance=1, description=f"trial {trial.number} {trial.state.name.lower()}")

        try:
            result = run_search(spec, callbacks=[advance])
        except (SearchError, SpaceError, StorageError, ValueError) as err:
            progress.stop()
            _fail(str(err))
            return
    states = [t.state.name for t in result.study.trials]
    if result.interrupted:
        console.print("[yellow]Interrupted: finished trials are kept; run the same command to resume.[/]")
    console.print(f"{result.new_trials} new trials; study now has {len(states)} "
                  f"({states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned, "
                  f"{states.count('FAIL')} failed).")
    _print_front(result.study)
    out = _write_outputs(result)
    console.print(f"Storage: {storage or default_storage_url()}   study: {result.study.study_name}",
                  soft_wrap=True)
    console.print(f"Outputs: {out}", soft_wrap=True)
    console.print(f"Front again: archlab pareto --study '{result.study.study_name}'"
                  + (f" --storage '{storage}'" if storage else ""), soft_wrap=True)


def _write_outputs(result: Any) -> Path:
    import yaml

    from archlab.report import pareto_frame
    from archlab.storage import study_dir

    out = study_dir(result.study.study_name)
    (out / "spec.yaml").write_text(yaml.safe_dump(result.stored_spec, sort_keys=False))
    pareto_frame(result.study).to_csv(out / "pareto.csv", index=False)
    return out


@app.command()
def pareto(
    study: Annotated[str, typer.Option(help="Study name.")],
    storage: Annotated[str | None, typer.Option(help="Optuna storage URL. Default: studies/archlab.db.")] = None,
    format: Annotated[Fmt, typer.Option(help="table, json or csv.")] = Fmt.table,
) -> None:
    """Print the feasible Pareto front of a stored study."""
    from archlab.storage import StorageError, load_study

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

    entries = []
    for name in list_spaces():
        try:
            sp = load_space(name)
        except SpaceError as err:
            _fail(str(err))
            return
        entries.append({
            "name": name,
            "family": sp.family.name,
            "description": sp.description,
            "resolution": sp.resolution,
            "knobs": {k: knob.describe() for k, knob in sp.knobs.items()},
            "presets": [{"name": p, "published": pr.published, "reconstructed": pr.reconstructed}
                        for p, pr in sp.family.presets.items()],
        })
    if format is Fmt.json:
        typer.echo(json.dumps(entries, indent=2))
        return
    for e in entries:
        table = Table(title=f"{e['name']} — {e['description']} (family {e['family']}, {e['resolution']}px)",
                      title_justify="left")
        table.add_column("knob")
        table.add_column("choices")
        for k, v in e["knobs"].items():
            table.add_row(k, v)
        console.print(table)
        presets = ", ".join(p["name"] + (" (reconstructed)" if p["reconstructed"] else "")
                            for p in e["presets"])
        console.print(f"presets: {presets}\n")


@app.command()
def report(
    preset: Annotated[str | None, typer.Option(help="Preset name, e.g. lw-plgvit-a.")] = None,
    space: Annotated[str | None, typer.Option(help="Space (family) the preset belongs to; checked if given.")] = None,
    config: Annotated[Path | None, typer.Option(help="A config file (YAML/JSON with a 'family' key).")] = None,
    all_presets: Annotated[bool, typer.Option("--all-presets", help="One row per preset of every family: measured vs. published.")] = False,
    resolution: Annotated[int | None, typer.Option(help="Input resolution. Default: the preset's published one, else 224.")] = None,
    format: Annotated[Fmt, typer.Option(help="table, json, csv or markdown.")] = Fmt.table,
    latency: Annotated[bool, typer.Option(help="Measure CPU latency too.")] = True,
    threads: Annotated[int, typer.Option(help="CPU threads for the latency measurement.")] = 1,
    depth: Annotated[int, typer.Option(help="Module nesting depth of the per-module table.")] = 2,
) -> None:
    """FLOP/param report of a preset or config: per-module table, totals vs. published figures."""
    from archlab import report_render

    _quiet_optuna()
    try:
        if all_presets:
            report_render.all_presets(console, resolution, format.value, latency, threads)
        else:
            report_render.one_model(console, preset, space, config, resolution, format.value,
                                    latency, threads, depth)
    except (KeyError, ValueError) as err:
        _fail(str(err.args[0]) if err.args else str(err))


def main() -> None:  # pragma: no cover - entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())

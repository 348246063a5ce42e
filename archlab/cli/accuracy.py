"""``archlab estimate`` (every accuracy estimate of one arch) and ``archlab train`` (for real)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from archlab.cli.common import TableOrJson, _fail, _quiet_optuna, app, console, storage_option

if TYPE_CHECKING:
    from archlab.search.train_trials import TrainReport


def _numbers(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        _fail(f"--trials takes trial numbers separated by commas, e.g. 3,7; got {text!r}")
        raise


@app.command()
def train(
    study: Annotated[str, typer.Option(help="Study name.")],
    storage: Annotated[
        str | None,
        storage_option("Optuna storage URL. Default: studies/archlab.db."),
    ] = None,
    trials: Annotated[
        str | None,
        typer.Option(help="Trial numbers to train, e.g. 3,7. Default: the feasible Pareto front."),
    ] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Training seeds per arch (0, 1, ...).")] = 2,
    data: Annotated[
        str | None,
        typer.Option(help="fashion-mnist (default), digits, a folder of IDX files or images."),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(min=1, help="Override the recipe's steps (the evidence is at its default)."),
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="CPU threads (1: deterministic).")] = 1,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "cpu",
    references: Annotated[
        bool, typer.Option(help="Also train the space's reference presets the same way.")
    ] = False,
    test: Annotated[
        bool,
        typer.Option(
            help="Also score each trained model on the test split (Fashion-MNIST's 10,000 test "
            "images): the final report of chosen archs; archlab never chooses by it."
        ),
    ] = False,
    reuse: Annotated[
        bool,
        typer.Option(
            help="Take a seed another study in the storage trained for the same arch, recipe "
            "and data instead of training it again (the recipe repeats a seed exactly)."
        ),
    ] = True,
) -> None:
    """Train chosen trials with the ground-truth recipe and store their accuracy in the study.

    Each arch's reduced copy is trained for every seed (docs/accuracy.md); the mean validation
    accuracy and its spread are stored with the study after each arch, so Ctrl-C keeps what
    finished and the same command resumes.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from archlab.estimate.fashion_mnist import FashionMnistMissing
    from archlab.estimate.training import GROUND_TRUTH
    from archlab.search.train_trials import train_trials, with_data
    from archlab.study.storage import StorageError, load_study

    _quiet_optuna()
    numbers = _numbers(trials)
    spec = with_data(GROUND_TRUTH, data)
    if steps:
        spec = spec.with_steps(steps)
    columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    try:
        loaded = load_study(study, storage)
        with Progress(
            "[progress.description]{task.description}", *columns, console=console, transient=True
        ) as bar:
            task = bar.add_task("training", total=None)

            def step(done: int, total: int, what: str) -> None:
                bar.update(task, completed=done, total=total, description=f"training {what}")

            report = train_trials(
                loaded,
                numbers,
                seeds=range(seeds),
                spec=spec,
                device=device,
                threads=threads,
                references=references,
                test=test,
                reuse=reuse,
                storage=storage,
                on_progress=step,
            )
    except FashionMnistMissing as err:
        _fail(str(err))
        return
    except (KeyError, StorageError, ValueError) as err:
        _fail(str(err.args[0]) if isinstance(err, KeyError) else str(err))
        return
    for line in report.reused:
        console.print(f"taken from another study, not trained again: {line}")
    _print_trained(report, spec.budget_label(), len(range(seeds)))
    if report.interrupted:
        console.print("[yellow]Interrupted: finished archs are kept; run again to resume.[/]")
        raise typer.Exit(130)


def _print_trained(report: TrainReport, budget: str, seeds: int) -> None:
    from rich.table import Table

    table = Table(title=f"Trained accuracy (validation, {budget}, {seeds} seed(s))")
    outcomes = [*report.outcomes.items(), *report.references.items()]
    tested = any("test_accuracy" in out for _, out in outcomes)
    columns = ["trial / preset", "accuracy", "± std"]
    columns += ["test acc", "± std"] if tested else []
    for column in (*columns, "seconds", "note"):
        table.add_column(column)
    for key, out in outcomes:
        if "error" in out:
            table.add_row(key, *["–"] * (len(columns) - 1), "–", f"failed: {out['error'][:60]}")
            continue
        cells = [key, f"{out['accuracy']:.4f}", f"{out['accuracy_std']:.4f}"]
        if tested:
            test_acc, test_std = out.get("test_accuracy"), out.get("test_accuracy_std")
            cells += [f"{test_acc:.4f}", f"{test_std:.4f}"] if test_acc is not None else ["–", "–"]
        note = (
            f"seeds {out['failed_seeds']} failed: {out['seed_error'][:50]}"
            if "seed_error" in out
            else ""
        )
        table.add_row(*cells, f"{out['seconds']:.0f}", note)
    console.print(table)


@app.command()
def estimate(
    space: Annotated[str, typer.Option(help="Space name or path to a space .yaml.")],
    arch: Annotated[
        str,
        typer.Option(help="The arch as JSON, one value per knob, e.g. '{\"stages.2.depth\": 4}'."),
    ],
    data: Annotated[
        str, typer.Option(help="Probe images: fashion-mnist (as the evidence), digits or a folder.")
    ] = "fashion-mnist",
    resolution: Annotated[int, typer.Option(help="Input side of the reduced copy.")] = 32,
    short_train: Annotated[
        bool, typer.Option(help="Also train 1/8 and 1/4 of the ground-truth budget (minutes).")
    ] = False,
    threads: Annotated[
        int, typer.Option(help="torch threads; 1 is how the evidence timed every estimate.")
    ] = 1,
    format: Annotated[TableOrJson, typer.Option(help="table or json.")] = TableOrJson.table,
) -> None:
    """Every accuracy estimate of one arch, with the seconds each took (docs/accuracy.md)."""
    from archlab.estimate.arch_estimates import all_estimates
    from archlab.estimate.fashion_mnist import FashionMnistMissing
    from archlab.measurement.latency import torch_threads
    from archlab.space import SpaceError, load_space

    try:
        if threads < 1:
            raise ValueError(f"--threads must be at least 1; got {threads}")
        loaded = load_space(space)
        values = _arch_values(arch, loaded)
        with torch_threads(threads):
            result = all_estimates(loaded, values, data, resolution, short_train)
    except (FashionMnistMissing, SpaceError, KeyError, ValueError) as err:
        _fail(str(err.args[0]) if isinstance(err, KeyError) else str(err))
        return
    if format is TableOrJson.json:
        typer.echo(json.dumps(result, indent=2))
        return
    _print_estimates(result)


def _arch_values(text: str, space: Any) -> dict[str, Any]:
    """The arch from its JSON; knobs it leaves out take the space's default value."""
    try:
        given = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--arch is not valid JSON: {err}") from None
    if not isinstance(given, dict):
        raise ValueError("--arch must be a JSON object of knob → value")
    return {**space.default(), **given}


def _print_estimates(result: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"Accuracy estimates ({result['settings']})")
    for column in ("estimate", "value", "seconds"):
        table.add_column(column)
    for name, value in result["estimates"].items():
        table.add_row(name, f"{value:.6g}", f"{result['seconds'][name]:.2f}")
    console.print(table)
    console.print(f"Default estimate: {result['default']} ({result['default_source']})")

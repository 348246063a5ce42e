"""``archlab search``, ``archlab worker`` and ``archlab pareto``: run a study and show its front."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from archlab.cli.common import (
    Backend,
    FrontFmt,
    LatencyMode,
    UnseenBlocks,
    _fail,
    _quiet_optuna,
    _shorten,
    app,
    console,
    parse_duration,
    storage_option,
)
from archlab.cli.search_output import plural, print_front, print_target_use, print_where
from archlab.study.objectives import OBJECTIVES


@app.command()
def search(
    space: Annotated[
        str, typer.Option(help="Space name in search_spaces/ or a path to a space .yaml.")
    ] = "plgvit",
    target_latency: Annotated[
        str, typer.Option(help="Latency budget per image, with its unit: 1s, 250ms, 0.5s.")
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
        storage_option(
            "Optuna storage URL (sqlite:///…, postgresql://…, journal:///file.log). Default: "
            "studies/archlab.db."
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
        str | None,
        typer.Option(
            help=(
                f"Two to four comma-separated objectives from: {', '.join(OBJECTIVES)}. Default: "
                "the accuracy estimate the shipped evidence picks for the space (archlab spaces "
                "--format json, default_estimate) and latency; a resumed study keeps its own."
            )
        ),
    ] = None,
    proxy_resolution: Annotated[
        int | None,
        typer.Option(
            help=(
                "Input size of the accuracy estimates (proxies, short training); the arch is "
                "reduced to it. Default: 32, as the accuracy evidence was measured (a resumed "
                "study keeps its own)."
            )
        ),
    ] = None,
    proxy_data: Annotated[
        str | None,
        typer.Option(
            help=(
                "Probe images of the training-free estimates: fashion-mnist (default, as the "
                "evidence), digits, or a folder. A resumed study keeps its own."
            )
        ),
    ] = None,
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
        LatencyMode | None,
        typer.Option(
            help=(
                "measured (time every candidate) or predicted (device profile lookup; the final "
                "front is re-measured). Default: predicted with --latency-model, else measured."
            )
        ),
    ] = None,
    latency_model: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Device profile for --latency predicted (archlab profile-device).",
        ),
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
        Backend,
        typer.Option(
            help=(
                "Inference backend timed: eager, torchscript, onnxruntime or onnxruntime-int8 "
                "(linear layers' weights in int8)."
            )
        ),
    ] = Backend.eager,
    remeasure_budget: Annotated[
        int,
        typer.Option(
            help=(
                "Predicted mode: models re-measured beyond the front, to fill it when members "
                "measure over the target."
            )
        ),
    ] = 32,
    calibrate_after: Annotated[
        int,
        typer.Option(
            help=(
                "Predicted mode: after this many trials, measure a few front members and judge "
                "the rest of the search on corrected predictions (0: only at the end)."
            )
        ),
    ] = 40,
) -> None:
    """Search a space for the Pareto front of accuracy estimate vs. measured CPU latency."""
    from archlab.measurement.memory import parse_bytes
    from archlab.search.loop import check_search
    from archlab.space import SpaceError
    from archlab.study.settings import SearchError, SearchSpec, check_workers
    from archlab.study.storage import StorageError

    _quiet_optuna()
    try:
        max_memory_bytes = parse_bytes(max_memory) if max_memory else None
    except ValueError as err:
        _fail(f"--max-memory: {err}")
        return
    except OverflowError:
        _fail(f"--max-memory: {_shorten(max_memory or '')!r} is too large")
        return
    spec = SearchSpec(
        space=space,
        study_name=study,
        storage=storage,
        target_latency_s=parse_duration(target_latency, "--target-latency"),
        n_trials=n_trials,
        timeout_s=parse_duration(timeout, "--timeout") if timeout else None,
        sampler=sampler,
        population_size=population,
        seed=seed,
        threads=threads,
        resolution=resolution,
        objectives=tuple(o.strip() for o in objectives.split(",") if o.strip())
        if objectives is not None
        else None,
        grace_period_s=round(parse_duration(grace_period, "--grace-period")),
        proxy_resolution=proxy_resolution,
        proxy_data=proxy_data,
        train_steps=train_steps,
        train_batch=train_batch,
        train_time_limit_s=parse_duration(train_time_limit, "--train-time-limit"),
        data=str(data) if data else None,
        latency_mode=(latency or _default_latency(latency_model)).value,
        latency_model=str(latency_model) if latency_model else None,
        unseen_blocks=unseen_blocks.value,
        max_memory_bytes=max_memory_bytes,
        backend=backend.value,
        remeasure_budget=remeasure_budget,
        calibrate_after=calibrate_after,
    )
    try:
        check_workers(workers)
        check_search(spec)  # settings, space, profile, storage, a resumed study's settings
    except (SearchError, SpaceError, StorageError, ValueError) as err:
        _fail(str(err))
        return
    _print_banner(spec, workers)
    result = _run_with_progress(spec, workers)
    if result is not None:
        _print_summary(result, storage)
        _end(result)


def _default_latency(latency_model: Path | None) -> LatencyMode:
    return LatencyMode.measured if latency_model is None else LatencyMode.predicted


def _end(result: Any) -> None:
    """Last line: trials a dead worker left RUNNING; exit 128 + signal if one stopped the search,
    1 if a worker failed."""
    note = result.still_running_note() if hasattr(result, "still_running_note") else None
    if note:
        console.print(f"[yellow]{note}[/]", soft_wrap=True)
    if result.stop_signal:
        raise typer.Exit(128 + result.stop_signal)
    if hasattr(result, "failures") and result.failures():
        raise typer.Exit(1)


def _print_banner(spec: Any, workers: int) -> None:
    from archlab.study.settings import resolve_sampler

    threads = spec.threads
    console.print(
        f"Searching [bold]{spec.space_name()}[/] under {spec.target_latency_s * 1e3:.0f} ms "
        f"as study [bold]{spec.resolved_name()}[/] ({plural(spec.n_trials, 'trial')}, "
        f"{resolve_sampler(spec)}, {threads} thread{'s' if threads > 1 else ''}"
        + (f" × {workers} workers)" if workers > 1 else ")")
    )
    if workers > 1 and workers * threads > (os.cpu_count() or 1):
        console.print(
            f"[yellow]{workers} workers × {threads} threads exceed the {os.cpu_count()} "
            "CPUs: workers will slow each other's latency measurements.[/]"
        )


def _run_with_progress(spec: Any, workers: int) -> Any:
    """Run the search (in this process, or in ``workers`` processes) under a progress bar;
    None after printing why it could not run."""
    from rich.progress import BarColumn, Progress, TimeElapsedColumn

    from archlab.search.loop import run_search
    from archlab.search.workers import run_workers
    from archlab.space import SpaceError
    from archlab.study.settings import SearchError
    from archlab.study.storage import StorageError

    columns = (BarColumn(bar_width=20), TimeElapsedColumn())
    with Progress("[progress.description]{task.description}", *columns, console=console) as bar:
        task = bar.add_task("trials", total=spec.n_trials)
        training = bar.add_task("short training", total=spec.train_steps, visible=False)

        def train_step(step: int, steps: int, loss: float) -> None:
            description = f"  training step {step}/{steps}, loss {loss:.3f}"
            bar.update(training, completed=step, total=steps, visible=True, description=description)

        done: list[int] = []

        def advance(study_: Any, trial: Any) -> None:
            done.append(trial.number)
            text = _progress_text(study_, trial, len(done), spec.n_trials)
            bar.update(task, advance=1, description=text)

        def finished(n: int) -> None:
            bar.update(task, completed=n, description=f"trials ({workers} workers)")

        try:
            if workers > 1:
                return run_workers(spec, workers, on_progress=finished)
            return run_search(spec, callbacks=[advance], progress=train_step)
        except (SearchError, SpaceError, StorageError, ValueError) as err:
            bar.stop()
            _fail(str(err))
            return None


def _progress_text(study: Any, trial: Any, k: int, n: int) -> str:
    """'trial 4/20 complete · front 3 · best grad_norm within target 0.812' (k counts from 1)."""
    from archlab.study.objectives import OBJECTIVES

    text = f"trial {k}/{n} {trial.state.name.lower()}"
    try:
        front = study.best_trials
    except ValueError:  # no complete trial yet
        return text
    text += f" · front {len(front)}"
    estimates = {o.name: o for o in OBJECTIVES.values() if o.description.startswith("accuracy")}
    names = study.metric_names or []
    for i, name in enumerate(names):
        if name in estimates and front:
            values = [t.values[i] for t in front]
            best = max(values) if estimates[name].direction == "maximize" else min(values)
            return text + f" · best {name} within target {best:.4g}"
    return text


def _print_summary(result: Any, storage: str | None) -> None:
    _print_failed_workers(result)
    states = [t.state.name for t in result.study.trials]
    if result.interrupted:
        console.print(
            "[yellow]Interrupted: finished trials are kept (a trial cut short is failed, "
            "reason: interrupted); run the same command to resume.[/]"
        )
    console.print(
        f"{plural(result.new_trials, 'new trial')}; study now has {len(states)} "
        f"({states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned, "
        f"{states.count('FAIL')} failed)."
    )
    print_target_use(result.study)
    print_front(result.study)
    print_where(result.study.study_name, storage)
    console.print(f"Outputs: {result.outputs}", soft_wrap=True, markup=False)


def _print_failed_workers(result: Any) -> None:
    if result.interrupted:  # a stop signal reached every worker; each failed its running trial
        return
    for line in result.failures() if hasattr(result, "failures") else []:
        console.print(
            f"[yellow]{line}. A trial it left running is failed and retried once by the next "
            "worker that joins after the grace period.[/]",
            soft_wrap=True,
        )


@app.command()
def worker(
    study: Annotated[
        str, typer.Option(help="Name of the study to join (created by archlab search).")
    ],
    storage: Annotated[
        str | None,
        storage_option(
            "Its storage URL (sqlite:///…, postgresql://…, journal:///file.log). Default: "
            "studies/archlab.db."
        ),
    ] = None,
    n_trials: Annotated[
        int | None,
        typer.Option(
            min=1, max=1_000_000, help="Trials to run. Default: until --timeout or Ctrl-C."
        ),
    ] = None,
    timeout: Annotated[
        str | None, typer.Option(help="Stop starting trials after this long, e.g. 10m.")
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=2**31 - 1,
            help="Sampler seed. Default: drawn from the OS, so workers differ.",
        ),
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
            timeout_s=parse_duration(timeout, "--timeout") if timeout else None,
        )
    except (SpaceError, StorageError, ValueError) as err:
        _fail(str(err))
        return
    console.print(
        f"Worker {worker_id()} ran {result.new_trials} trials; study "
        f"{study!r} now has {len(result.study.trials)}."
    )
    if result.stop_signal:
        raise typer.Exit(128 + result.stop_signal)


@app.command()
def pareto(
    study: Annotated[str, typer.Option(help="Study name.")],
    storage: Annotated[
        str | None,
        storage_option("Optuna storage URL. Default: studies/archlab.db."),
    ] = None,
    format: Annotated[FrontFmt, typer.Option(help="table, json or csv.")] = FrontFmt.table,
) -> None:
    """Print the feasible Pareto front of a stored study."""
    from archlab.study.storage import StorageError, load_study

    _quiet_optuna()
    try:
        loaded = load_study(study, storage)
    except StorageError as err:
        _fail(str(err))
        return
    print_front(loaded, format)

"""``archlab dashboard`` and ``archlab profile-device``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from archlab.cli.common import (
    Backend,
    _fail,
    _quiet_optuna,
    app,
    console,
    storage_option,
)


@app.command()
def dashboard(
    storage: Annotated[
        str | None,
        storage_option("Optuna storage URL to show. Default: studies/archlab.db."),
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

"""Shared pieces of the command line: the Typer app, consoles, option types, printing helpers."""

from __future__ import annotations

import logging
import re
from enum import Enum
from typing import Any

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

"""Shared pieces of the command line: the Typer app, consoles, option types, printing helpers."""

from __future__ import annotations

import logging
import re
from enum import Enum
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
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
_UNIT_S = {"ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_UNITS = ", ".join(_UNIT_S)
# No duration the CLI takes means more than a year; longer ones only overflow later arithmetic.
MAX_DURATION_S = 366 * 86400.0


def parse_duration(text: str, option: str | None = None) -> float:
    """'1s', '250ms', '0.5s', '2m', '1h' → seconds.

    A bare number is refused: ``--target-latency 60`` could mean 60 ms as well as 60 s, and a
    study named after the wrong one is easy to miss.

    Args:
        text: the duration as typed.
        option: the option it was given to, named in the error.

    Raises:
        typer.BadParameter: no unit, or not a positive duration of at most
            :data:`MAX_DURATION_S`.
    """
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise typer.BadParameter(
            f"{_shorten(text)!r} is not a duration; write e.g. 1s, 250ms, 0.5s or 2m",
            param_hint=option,
        )
    if match.group(2) is None:
        raise typer.BadParameter(
            f"{_shorten(text)!r} has no unit; write it with one of {_UNITS} (e.g. "
            f"{match.group(1)}ms or {match.group(1)}s)",
            param_hint=option,
        )
    seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if not seconds <= MAX_DURATION_S:  # also refuses inf
        raise typer.BadParameter(
            f"{_shorten(text)!r} is longer than a year ({MAX_DURATION_S:.0f} s)",
            param_hint=option,
        )
    return seconds


def _shorten(text: str, keep: int = 40) -> str:
    return text if len(text) <= keep else text[:keep] + "…"


# The storage URL when --storage is not given: it keeps a database password off command lines
# (visible to every user in ps). The dashboard's app reads the same variable.
STORAGE_ENV = "ARCHLAB_STORAGE"


def storage_option(help: str) -> Any:
    """The ``--storage`` option of a command, also read from ``$ARCHLAB_STORAGE``."""
    return typer.Option(
        envvar=STORAGE_ENV,
        show_envvar=False,
        help=f"{help} Also read from ${STORAGE_ENV} (keeps a password out of ps).",
    )


class Fmt(str, Enum):
    """Output of a report: every format."""

    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class FrontFmt(str, Enum):
    """Output of a Pareto front."""

    table = "table"
    json = "json"
    csv = "csv"


class TableOrJson(str, Enum):
    table = "table"
    json = "json"


class Backend(str, Enum):
    eager = "eager"
    torchscript = "torchscript"
    onnxruntime = "onnxruntime"
    onnxruntime_int8 = "onnxruntime-int8"


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
    """Print ``message`` as one line (never wrapped, never read as markup) and exit with 2."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
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

"""The ``archlab`` command line: each command parses its options, calls the library, prints.

The commands live in the modules of this package, grouped by what they work on; importing the
package registers them all on :data:`app`.
"""

from __future__ import annotations

# Importing a command module registers its commands; the order here is their order in --help.
# isort: off
import archlab.cli.search
import archlab.cli.spaces
import archlab.cli.reports
import archlab.cli.accuracy
import archlab.cli.tools  # noqa: F401

# isort: on
from archlab.cli.common import app, parse_duration

__all__ = ["app", "main", "parse_duration"]


def main() -> None:  # pragma: no cover - entry point
    app()

"""``archlab spaces``: the shipped search spaces."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from archlab.cli.common import (
    Fmt,
    _fail,
    app,
    console,
)


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

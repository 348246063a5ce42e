"""``archlab spaces``: the shipped search spaces."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from archlab.cli.common import (
    TableOrJson,
    _fail,
    app,
    console,
)


@app.command()
def spaces(
    format: Annotated[TableOrJson, typer.Option(help="table or json.")] = TableOrJson.table,
) -> None:
    """List every shipped search space with its knobs and the family's presets."""
    from archlab.estimate.evidence import default_estimate, evidence_sentence, load_evidence
    from archlab.space import SpaceError, list_spaces, load_space

    entries: list[dict[str, Any]] = []
    try:
        evidence = load_evidence()
    except ValueError as err:
        _fail(str(err))
        return
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
                "accuracy_evidence": {
                    **_evidence_of(evidence, name),
                    "reference_models": _references_of(evidence, sp.references),
                },
            }
        )
    if format is TableOrJson.json:
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
        console.print(f"presets: {presets}")
        sentence = evidence_sentence(default_estimate(e["name"], evidence), e["name"], evidence)
        console.print(f"default accuracy estimate: {sentence}\n")


def _references_of(evidence: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The space's reference presets and the plain CNN as the ground-truth recipe trained them
    (any space's table: the recipe does not depend on the space), where it did."""
    from archlab.estimate.reference_cnn import REFERENCE_CNN

    known = evidence.references if evidence is not None else {}
    return {
        name: {k: known[name][k] for k in ("accuracy", "accuracies", "seeds", "budget", "data")}
        for name in (*names, REFERENCE_CNN)
        if name in known
    }


def _evidence_of(evidence: Any, space: str) -> dict[str, Any]:
    """Each estimate's rank agreement with real training on this space, and what it rests on."""
    from archlab.estimate.evidence import default_estimate

    default = default_estimate(space, evidence)  # what a new search of the space optimises
    if evidence is None or space not in evidence.spaces:
        shown: dict[str, Any] = {
            "measured": None,
            "note": "not yet validated against training",
            "default_estimate": default,
        }
        if evidence is not None:
            shown["default_rule"] = evidence.rule  # the pooled pick: no evidence of its own
        if evidence is not None and evidence.pooled is not None and evidence.spaces:
            # what the estimates showed on the spaces that have a ground truth: a hint, no more
            shown["pooled_over_other_spaces"] = {
                "spaces": sorted(evidence.spaces),
                "archs": evidence.pooled.archs,
                "estimates": {
                    name: {"spearman": score.spearman, "spearman_ci": list(score.spearman_ci)}
                    for name, score in evidence.pooled.estimates.items()
                },
            }
        return shown
    entry = evidence.spaces[space]
    return {
        "measured": evidence.measured,
        "ground_truth": {
            "data": entry.data,
            "budget": entry.budget,
            "archs": entry.archs,
            "seeds": entry.seeds,
            "seed_agreement_spearman": (
                entry.seed_agreement.spearman if entry.seed_agreement else None
            ),
        },
        "estimates": {
            name: {
                "spearman": s.spearman,
                "spearman_ci": list(s.spearman_ci),
                "kendall": s.kendall,
                "top20_recall": s.top20_recall,
                "seconds_per_arch": s.seconds_per_arch,
            }
            for name, s in entry.estimates.items()
        },
        "default_estimate": default,
        "default_rule": evidence.space_rule if space in evidence.space_defaults else evidence.rule,
        # searches differing only in their estimate, their fronts trained (docs/accuracy.md)
        "front_checks": [dataclasses.asdict(check) for check in entry.front_checks],
    }

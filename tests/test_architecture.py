"""The subsystems keep to their layers (docs/architecture.md); no module is in an import cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
SEARCH_LOOP = ("archlab.search.loop", "archlab.search.workers", "archlab.search.remeasure")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("archlab")


def test_import_linter_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _cycle(graph: grimp.ImportGraph) -> list[str] | None:
    """One import cycle among archlab's modules (the lazy root package left out), or None."""
    modules = sorted(m for m in graph.modules if m != "archlab")
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported == "archlab":
                continue
            if state.get(imported) == 1:
                return stack[stack.index(imported) :] + [imported]
            if imported not in state:
                found = visit(imported)
                if found:
                    return found
        stack.pop()
        state[module] = 2
        return None

    for module in modules:
        if module not in state:
            found = visit(module)
            if found:
                return found
    return None


def test_no_module_is_in_an_import_cycle(graph: grimp.ImportGraph) -> None:
    assert _cycle(graph) is None, " → ".join(_cycle(graph) or [])


def _archlab_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("archlab"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("archlab"))
    return found


def test_the_app_never_reaches_the_search_loop(graph: grimp.ImportGraph) -> None:
    files = sorted((ROOT / "app").rglob("*.py"))
    assert files
    imported = {m for f in files for m in _archlab_imports(f) if m in graph.modules}
    assert imported, "the app imports nothing from archlab?"
    reached = set(imported)
    for module in imported:
        reached |= graph.find_upstream_modules(module)
    assert not reached & set(SEARCH_LOOP), sorted(reached & set(SEARCH_LOOP))


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for name in ("archlab", "archlab.a", "archlab.b", "archlab.c"):
        graph.add_module(name)
    graph.add_import(importer="archlab.a", imported="archlab.b")
    graph.add_import(importer="archlab.b", imported="archlab.c")
    assert _cycle(graph) is None
    graph.add_import(importer="archlab.c", imported="archlab.a")
    assert _cycle(graph) == ["archlab.a", "archlab.b", "archlab.c", "archlab.a"]

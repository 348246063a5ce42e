"""Reading a space file within bounds, whoever wrote it.

Workers, exports, reports and the dashboard parse the space text a study stores, which anyone who
can write to a shared storage could have planted. So the text is read with hard limits: no
anchors or aliases (a few lines of them expand into billions of nodes), a bounded size, nesting
depth and length of every list and mapping. Errors name the key where the limit was hit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent
from yaml.nodes import Node, ScalarNode

from archlab.space.knobs import SpaceError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_ITEMS", "parse_space_yaml", "read_space_file"]

MAX_BYTES = 64 * 1024  # the shipped space files are under 3 kB
MAX_DEPTH = 12  # a space nests four levels (choices: knob: {low, high}); fixed configs a few more
MAX_ITEMS = 1024  # entries of one list or mapping


class _Refused(Exception):
    def __init__(self, path: list[str], problem: str) -> None:
        super().__init__(problem)
        self.path, self.problem = path, problem


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases and anchors and bounding depth and width."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.key_path: list[str] = []

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        # The scanner looks up to 1,024 characters ahead, so refuse deep brackets as it reads.
        if self.flow_level >= MAX_DEPTH:
            where = f" (line {self.line + 1})"
            raise _Refused(self.key_path, f"nested deeper than {MAX_DEPTH} levels{where}")
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        outer = self.key_path
        if parent is not None:  # a mapping's key, a mapping's value or a list's entry
            step = index.value if isinstance(index, ScalarNode) else index
            self.key_path = [*outer, "<key>" if step is None else str(step)]
        try:
            return self._checked_node(parent, index)
        finally:
            self.key_path = outer

    def _checked_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        line = f" (line {event.start_mark.line + 1})"
        if isinstance(index, int) and index >= MAX_ITEMS:
            raise _Refused(self.key_path[:-1], f"a list of more than {MAX_ITEMS} entries{line}")
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused(self.key_path, f"YAML anchors and aliases are not allowed{line}")
        nested = isinstance(event, CollectionStartEvent)
        if nested and len(self.key_path) >= MAX_DEPTH:
            raise _Refused(self.key_path, f"nested deeper than {MAX_DEPTH} levels{line}")
        node: Node = super().compose_node(parent, index)
        if nested and len(node.value) > MAX_ITEMS:  # a mapping's entries
            raise _Refused(self.key_path, f"a mapping of more than {MAX_ITEMS} entries{line}")
        return node


def parse_space_yaml(text: str, source: str) -> Any:
    """The YAML ``text`` as plain data, within the bounds above.

    Raises:
        SpaceError: too long, not YAML, or past a bound; names the key where it happened.
    """
    if len(text) > MAX_BYTES:
        raise SpaceError(source, "<file>", f"longer than {MAX_BYTES // 1024} kB")
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except _Refused as err:
        key = ".".join(err.path) or "<file>"
        raise SpaceError(source, key, err.problem) from None
    except (yaml.YAMLError, ValueError) as err:  # ValueError: e.g. an integer of 5,000 digits
        raise SpaceError(source, "<file>", f"not valid YAML: {err}") from None
    finally:
        loader.dispose()


def read_space_file(path: Path) -> str:
    """The text of a space file, refusing anything but a regular file of at most MAX_BYTES.

    Raises:
        SpaceError: missing, not a regular file, unreadable or too long.
    """
    try:
        if not path.is_file():
            raise SpaceError(str(path), "<file>", "not a regular file")
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as err:
        raise SpaceError(str(path), "<file>", f"cannot read: {err.strerror}") from None
    if len(data) > MAX_BYTES:
        raise SpaceError(str(path), "<file>", f"longer than {MAX_BYTES // 1024} kB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpaceError(str(path), "<file>", "not UTF-8 text") from None

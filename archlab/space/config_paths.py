"""Dotted paths into a nested config (``stages.2.depth``): copy, set, check."""

from __future__ import annotations

from typing import Any

__all__ = ["check_path", "copy_tree", "set_path", "with_path"]


def copy_tree(node: Any) -> Any:
    """Copy nested dicts/lists of scalars (much faster than ``copy.deepcopy`` for configs)."""
    if isinstance(node, dict):
        return {k: copy_tree(v) for k, v in node.items()}
    if isinstance(node, list):
        return [copy_tree(v) for v in node]
    return node


def with_path(node: Any, parts: list[str], value: Any) -> Any:
    """A copy of ``node`` with one path replaced; untouched branches are shared, not copied."""
    if not parts:
        return value
    head, rest = parts[0], parts[1:]
    if isinstance(node, list):
        out = list(node)
        out[int(head)] = with_path(node[int(head)], rest, value)
        return out
    return {**node, head: with_path(node[head], rest, value)}


def set_path(config: dict[str, Any], dotted: str, value: Any) -> None:
    node: Any = config
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def check_path(config: dict[str, Any], dotted: str) -> str | None:
    """None if ``dotted`` addresses an existing field of ``config``, else what is wrong."""
    node: Any = config
    for i, part in enumerate(dotted.split(".")):
        where = ".".join(dotted.split(".")[:i]) or "the config"
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                return f"{where} is a list of {len(node)}; {part!r} is not an index into it"
            node = node[int(part)]
        elif isinstance(node, dict):
            if part not in node:
                return f"no field {part!r} in {where}; fields: {sorted(node)}"
            node = node[part]
        else:
            return f"{where} is a value, not a mapping"
    return None

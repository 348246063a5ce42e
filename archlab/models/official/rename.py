"""What a family's official-name mapping is made of: a renaming function and regex rules."""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["Rename", "substitute"]

#: One of our state-dict keys → its official name, then any alias the official model registers
#: the same tensor under.
Rename = Callable[[str], list[str]]


def substitute(key: str, rules: list[tuple[str, str]]) -> str:
    """``key`` with each ``(pattern, replacement)`` of ``rules`` applied in order."""
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    return key

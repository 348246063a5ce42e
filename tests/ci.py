"""What CI must provide: tests needing it skip elsewhere and fail in CI, naming what is missing."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

__all__ = ["in_ci", "missing", "require_module"]


def in_ci() -> bool:
    """True when the ``CI`` variable says so (``true``, ``1`` or ``yes``, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(what: str, how: str) -> NoReturn:
    """Stop a test whose requirement ``what`` is absent: a failure in CI, a skip elsewhere."""
    if in_ci():
        pytest.fail(f"CI must provide {what} ({how})")
    pytest.skip(f"{what} is not available ({how})")


def require_module(name: str, how: str = "pip install -e '.[onnx]'") -> None:
    """Import ``name`` or stop the test as :func:`missing` does."""
    try:
        __import__(name)
    except ImportError:
        missing(f"the module {name}", how)

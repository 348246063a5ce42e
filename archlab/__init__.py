"""archlab: hardware-aware architecture search over light-weight ViTs and CNN–transformer hybrids.

Public API: :func:`build_model`, :func:`load_pretrained`, :func:`load_space`, :func:`measure`,
:func:`run_search`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archlab._version import __version__

__all__ = [
    "SearchSpec",
    "build_model",
    "load_pretrained",
    "load_space",
    "measure",
    "run_search",
    "__version__",
]

if TYPE_CHECKING:
    from archlab.measurement.model import measure
    from archlab.models import build_model
    from archlab.models.pretrained import load_pretrained
    from archlab.search.loop import run_search
    from archlab.space import load_space
    from archlab.study.settings import SearchSpec

_LAZY = {
    "build_model": "archlab.models",
    "load_pretrained": "archlab.models.pretrained",
    "load_space": "archlab.space",
    "measure": "archlab.measurement.model",
    "run_search": "archlab.search.loop",
    "SearchSpec": "archlab.study.settings",
}


def __getattr__(name: str) -> Any:
    # Imported on first use so that `import archlab` stays cheap (torch loads only when needed).
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'archlab' has no attribute {name!r}")

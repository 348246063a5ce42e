"""Files shipped with archlab besides its modules: the space files and the dashboard app.

In a source checkout they are the top-level ``search_spaces/`` and ``app/`` folders; an installed
wheel carries copies of both inside the package (``archlab/search_spaces``, ``archlab/app``; see
``pyproject.toml``), found through :mod:`importlib.resources`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["shipped_dir"]

_CHECKOUT = Path(__file__).resolve().parent.parent


def shipped_dir(name: str) -> Path:
    """The folder ``name`` (``search_spaces`` or ``app``): inside the installed package if it is
    there, else in the source checkout.

    Raises:
        FileNotFoundError: neither holds it (a broken installation).
    """
    packaged = Path(str(resources.files("archlab").joinpath(name)))
    for candidate in (packaged, _CHECKOUT / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"archlab's {name}/ folder is missing: looked in {packaged} and {_CHECKOUT / name}; "
        "reinstall archlab"
    )

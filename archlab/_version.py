"""The package version, importable without the package's lazy public API."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

__version__ = "0.1.0"


@cache
def source_revision() -> str:
    """The version plus, in a git checkout, the commit of the package's code, e.g.
    ``0.1.0+g4b291ad`` (``-dirty`` when files under ``archlab/`` differ from it).

    Training repeats exactly only with the code it ran with, so results that are kept (the
    ground truth) record this."""
    package = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(package), *args], capture_output=True, text=True, timeout=10
        )
        if done.returncode:
            raise OSError(done.stderr.strip())
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "."))
    except (OSError, subprocess.SubprocessError):
        return __version__  # an installed copy, or no git: the version is all there is
    return f"{__version__}+g{commit}{'-dirty' if dirty else ''}"

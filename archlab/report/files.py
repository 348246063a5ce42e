"""Output files of reports and exports: never overwritten unless asked (``--force``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["OverwriteError", "check_out_dir", "check_out_file"]


class OverwriteError(ValueError):
    """An output would replace an existing file, or a folder is in the way of a file (or back)."""


def check_out_file(path: Path, force: bool, option: str = "--figure") -> None:
    """Refuse to write ``path`` over an existing file without ``force``, or over a folder.

    Raises:
        OverwriteError: the path is a folder, or an existing file and ``force`` is False.
    """
    if path.is_dir():
        raise OverwriteError(f"{option}: {path} is a folder")
    if path.exists() and not force:
        raise OverwriteError(f"{option}: {path} exists; pass --force to overwrite it")


def check_out_dir(out: Path, names: Iterable[str], force: bool, option: str = "--out") -> None:
    """Refuse an output folder that is a file, or (without ``force``) already holds any of
    ``names``.

    Raises:
        OverwriteError: as above; the message lists the files that would be replaced.
    """
    if out.exists() and not out.is_dir():
        raise OverwriteError(f"{option}: {out} is a file, not a folder")
    there = [name for name in names if (out / name).exists()]
    if there and not force:
        raise OverwriteError(
            f"{option}: {out} already holds {', '.join(there)}; pass --force to overwrite"
        )

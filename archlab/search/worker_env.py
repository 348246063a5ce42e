"""Handing the storage URL to a worker process without putting its password on the command line.

Any user can read another process's command line (``ps``), but not its environment. So the
``--storage URL`` of a worker's command moves into ``$ARCHLAB_STORAGE``, which ``archlab worker``
reads when it is given no ``--storage``.
"""

from __future__ import annotations

from archlab.study.storage import STORAGE_ENV

__all__ = ["storage_in_environment"]


def storage_in_environment(cmd: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """``cmd`` without its ``--storage URL`` and ``env`` with the URL in :data:`STORAGE_ENV`.

    Without ``--storage`` in ``cmd``, both come back unchanged (copies).
    """
    if "--storage" not in cmd:
        return list(cmd), dict(env)
    at = cmd.index("--storage")
    return cmd[:at] + cmd[at + 2 :], {**env, STORAGE_ENV: cmd[at + 1]}

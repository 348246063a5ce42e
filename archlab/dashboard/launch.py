"""Launching the dashboard: ``archlab dashboard`` runs ``streamlit run app/streamlit_app.py``.

The storage URL reaches the app in the environment variable :data:`STORAGE_ENV`; the app reads
it back with :func:`storage_url`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from types import FrameType
from typing import Any

from archlab.resources import shipped_dir
from archlab.study.storage import default_storage_url, home

__all__ = [
    "APP",
    "STORAGE_ENV",
    "check_storage",
    "dashboard_command",
    "run_dashboard",
    "storage_url",
]

APP = shipped_dir("app") / "streamlit_app.py"
STORAGE_ENV = "ARCHLAB_STORAGE"


def storage_url() -> str:
    """The storage the dashboard shows: ``$ARCHLAB_STORAGE`` or the default SQLite file."""
    return os.environ.get(STORAGE_ENV) or default_storage_url()


def check_storage(url: str | None) -> None:
    """Refuse a storage the dashboard could not open, before starting a server.

    The default storage may not exist yet (the dashboard then says there are no studies).

    Raises:
        StorageError: malformed URL, missing SQLite file, or an unreachable server.
    """
    from archlab.dashboard.data import open_dashboard_storage

    if url is None and not (home() / "archlab.db").exists():
        return
    open_dashboard_storage(url)


def dashboard_command(port: int = 8501, address: str = "localhost") -> list[str]:
    """The ``streamlit run`` command line: headless, no usage statistics, on ``address:port``."""
    if not 0 < port < 65536:
        raise ValueError(f"port must be between 1 and 65535, got {port}")
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]


def run_dashboard(url: str | None = None, port: int = 8501, address: str = "localhost") -> int:
    """Serve the dashboard on ``address:port`` until interrupted; returns Streamlit's exit code.

    Raises:
        StorageError: the storage cannot be opened (see :func:`check_storage`).
        ValueError: a bad port, or the app folder is missing (archlab installed without it).
    """
    if not APP.is_file():
        raise ValueError(f"the dashboard app is not at {APP}; install archlab from its repository")
    check_storage(url)
    env = dict(os.environ)
    env[STORAGE_ENV] = url or default_storage_url()
    server = subprocess.Popen(dashboard_command(port, address), env=env)
    with _stop_child_on_exit(server):
        try:
            return server.wait()
        except KeyboardInterrupt:
            return 0


class _stop_child_on_exit:  # noqa: N801 - used as a context manager
    """Terminate the server when this process is told to stop (SIGTERM) or leaves otherwise, so
    that stopping ``archlab dashboard`` never leaves a Streamlit server behind."""

    def __init__(self, child: subprocess.Popen[bytes]) -> None:
        self.child = child
        self.previous: Any = None

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._on_term)

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        if self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.child.kill()

"""Stopping a search on SIGINT or SIGTERM without stranding a trial, and workers that end with
the process that started them.

SIGTERM is what ``timeout``, CI cancellation, systemd and ``docker stop`` send; a search treats it
as Ctrl-C. While a candidate is evaluated, the signal stops the evaluation at once: the trial is
failed with ``fail_reason`` "interrupted". Anywhere else (sampling, storage writes, the stale-trial
check) it is only noted, so no storage write is cut in half and no trial is left RUNNING: the
trial under way finishes, or fails as interrupted if its evaluation had not begun, and no other
trial starts. A third signal stops at once wherever the process is; the first two may be the same
stop, sent to a worker both by its parent and by a process manager that signals the whole group.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any

__all__ = ["STOP_SIGNALS", "Interrupted", "StopSignals", "die_with_parent", "exit_code"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_FORCE_AFTER = 3  # signals received before one stops the process wherever it is


def exit_code(signum: int) -> int:
    """The shell's exit status of a process stopped by ``signum`` (130 for SIGINT, 143 for
    SIGTERM)."""
    return 128 + signum


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived while a candidate was evaluated (a ``KeyboardInterrupt``, so that
    code catching ``Exception`` lets it through, as it does Ctrl-C)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """Note SIGINT and SIGTERM while it is entered; raise :class:`Interrupted` only inside
    :meth:`interruptible`.

    Handlers can only be installed in the main thread; elsewhere the context installs none, and
    Python's own Ctrl-C handling stays.

    Args:
        on_signal: called with each signal received (e.g. to forward it to child processes).

    Example:
        >>> with StopSignals() as stop:
        ...     with stop.interruptible():
        ...         pass  # long work that a signal may cut short
        >>> stop.signum is None
        True
    """

    def __init__(self, on_signal: Callable[[int], None] | None = None) -> None:
        self.signum: int | None = None  # the first stop signal received
        self._received = 0
        self._on_signal = on_signal
        self._interruptible = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self._received += 1
        if self.signum is None:
            self.signum = signum
        if self._on_signal is not None:
            self._on_signal(signum)
        if self._interruptible or self._received >= _FORCE_AFTER:
            raise Interrupted(signum)

    def check(self) -> None:
        """Raise :class:`Interrupted` if a stop signal has arrived."""
        if self.signum is not None:
            raise Interrupted(self.signum)

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A block that a stop signal cuts short (it raises :class:`Interrupted`), also when the
        signal came just before it."""
        self.check()
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
#: The kernel's notice that the parent exited. It comes once for every thread of the parent that
#: exits while this process is its child (the child is handed from thread to thread as they die),
#: so a parent with a few threads sends it two or three times. Only the first counts: it becomes
#: one SIGTERM, so that a parent's death is one stop, never the third signal that forces a stop
#: in the middle of recording the interrupted trial.
_PARENT_DIED = signal.SIGHUP
_parent_death_told = threading.Lock()  # taken by the first notice; a lock, as handlers can nest


def die_with_parent(parent_pid: int) -> None:
    """Get one SIGTERM when the process ``parent_pid`` (this one's parent) exits, however it
    exits.

    On Linux the kernel sends the notice (``prctl(PR_SET_PDEATHSIG)``); elsewhere a thread checks
    every second whether this process has been handed to another parent. If the parent is already
    gone, the SIGTERM is sent at once. Call it from the main thread (it installs a handler).
    """
    if sys.platform.startswith("linux"):
        signal.signal(_PARENT_DIED, _on_parent_death)
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, _PARENT_DIED, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    if os.getppid() != parent_pid:  # it exited before the line above took effect
        _on_parent_death()


def _on_parent_death(*_args: object) -> None:
    """Turn the first notice of the parent's death into one SIGTERM; ignore the rest."""
    if _parent_death_told.acquire(blocking=False):
        os.kill(os.getpid(), signal.SIGTERM)


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    _on_parent_death()

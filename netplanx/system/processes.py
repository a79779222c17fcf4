"""Daemons netx starts (wireguard-go) and the lab starts (BIRD, gobgpd): found by recorded PID, stopped by PID."""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path


def command_line(pid: int) -> list[bytes]:
    """The arguments ``pid`` runs with; [] when it is gone (a recorded PID may have been reused)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def terminate(pid: int, timeout: float = 10.0, on_timeout: Callable[[int], None] | None = None) -> None:
    """SIGTERM ``pid`` and wait until it has exited: its pidfd becomes readable (no polling loop). When it
    outlives ``timeout``, ``on_timeout(pidfd)`` decides (raise, or SIGKILL with ``kill``)."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        signal.pidfd_send_signal(handle, signal.SIGTERM)
        if not select.select([handle], [], [], timeout)[0] and on_timeout is not None:
            on_timeout(handle)
    finally:
        os.close(handle)
    with suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it when it was our own child


def kill(pidfd: int) -> None:
    signal.pidfd_send_signal(pidfd, signal.SIGKILL)

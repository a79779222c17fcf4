"""Processes by recorded PID: daemons netx or the lab starts (stopped by PID), an apply a watchdog follows."""

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


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot): with the PID, the identity of a process; None when
    it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def watch_exit(pid: int, started: int | None) -> int | None:
    """A pidfd that becomes readable when the process ``pid`` that started at ``started`` exits; None
    when it is gone already (or the PID now belongs to another process)."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    if start_time(pid) != started:  # checked after opening: the pidfd is the process we asked about
        os.close(handle)
        return None
    return handle


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

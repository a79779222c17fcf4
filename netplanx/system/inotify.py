"""Waiting for files to change without polling: inotify on a folder (and optionally a process's exit)."""

from __future__ import annotations

import ctypes
import os
import select
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x2, 0x8, 0x80, 0x100, 0x200
IN_NONBLOCK = 0o4000
_libc = ctypes.CDLL(None, use_errno=True)


class FolderWatch:
    """Open before the thing you wait for can happen (no lost event), then ``wait``."""

    def __init__(self, folder: Path):
        self.fd = _libc.inotify_init1(IN_NONBLOCK)
        mask = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE
        if self.fd < 0 or _libc.inotify_add_watch(self.fd, str(folder).encode(), mask) < 0:
            raise OSError(ctypes.get_errno(), f"inotify on {folder}: {os.strerror(ctypes.get_errno())}")

    def wait(self, done: Callable[[], bool], deadline: float, also: tuple[int, ...] = ()) -> bool:
        """Until ``done()`` holds (True), or the deadline passes or an ``also`` fd gets ready (False)."""
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        for fd in also:
            poller.register(fd, select.POLLIN)
        while not done():
            remaining = deadline - time.time()
            if remaining <= 0:
                return False
            events = poller.poll(remaining * 1000)
            if any(fd in also for fd, _ in events):
                return done()
            with suppress(BlockingIOError):
                os.read(self.fd, 65536)
        return True

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> FolderWatch:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

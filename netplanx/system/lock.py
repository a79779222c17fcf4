"""One apply at a time per namespace: an flock on a file in the state directory."""

from __future__ import annotations

import fcntl
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from netplanx.errors import LockTimeout


class _Expired(Exception):
    pass


def _expire(_signum: int, _frame: object) -> None:
    raise _Expired


@contextmanager
def exclusive(path: Path, timeout: float) -> Iterator[bool]:
    """Hold an exclusive lock on ``path``; yields whether we had to wait. Raises LockTimeout."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a lock file found there keeps no other mode
        waited = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waited = True
            _wait(fd, path, timeout)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield waited
    finally:
        os.close(fd)


def _wait(fd: int, path: Path, timeout: float) -> None:
    """Block in flock until the holder releases it, interrupted by a timer after ``timeout`` seconds."""
    holder = Path(path).read_text().strip() or "unknown"
    if timeout <= 0:
        raise LockTimeout(f"another netx (pid {holder}) holds {path}; not waiting (--lock-timeout 0)")
    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except _Expired:
        raise LockTimeout(f"another netx (pid {holder}) held {path} for more than {timeout:g}s "
                          "(--lock-timeout); nothing was changed") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

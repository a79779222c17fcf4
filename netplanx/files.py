"""The files netx reads and writes. What it is given (specs, saved plans, secrets): regular files only, never
more than a limit, names printed so that no character in them can break a message. What it writes: whole
new files of the mode it means, renamed into place."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from pathlib import Path

STDIN = "-"  # the path that means standard input
KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device",
         stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


class InputError(OSError):
    """A file netx refuses to read, with why in words."""


def display(name: str | Path) -> str:
    """A file name as messages print it: control characters (a newline...) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(name))


def read_bounded(path: str | Path, limit: int, stdin: bool = False, what: str = "the file") -> bytes:
    """The bytes of a regular file (or of standard input for ``-`` when ``stdin``), at most ``limit``:
    a directory, FIFO or device is refused without blocking, and no more than ``limit + 1`` bytes are
    read to find out that a file is too large. ``what`` names the file in messages."""
    if stdin and str(path) == STDIN:
        return _bounded(sys.stdin.buffer.fileno(), limit, "standard input")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(exc.errno, f"cannot read {what} ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            allowed = "a regular file, or - for standard input" if stdin else "a regular file"
            raise InputError(0, f"it is {kind} (allowed: {allowed})")
        if info.st_size > limit:
            raise InputError(0, f"file is {info.st_size} bytes (allowed: at most {limit})")
        return _bounded(fd, limit, "the file")
    finally:
        os.close(fd)


def _bounded(fd: int, limit: int, what: str) -> bytes:
    chunks = []
    size = 0
    while size <= limit:
        chunk = os.read(fd, min(1 << 20, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    raise InputError(0, f"{what} is larger than {limit} bytes (allowed: at most {limit})")


def write_atomically(path: str | Path, data: bytes | str, mode: int = 0o600, replace: bool = True) -> None:
    """Put ``data`` at ``path`` as a new file of exactly ``mode``: written to a fresh temporary file in the
    same folder and renamed over (a file already there never lends its mode or owner, a reader never sees
    half of it, a symbolic link at ``path`` is replaced, not followed). Without ``replace``, an existing
    ``path`` is kept and FileExistsError raised."""
    target = Path(path)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, target)
        else:
            os.link(temporary, target)  # fails when the target exists: no check-then-write race
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)  # after a replace it is gone already; after a link, or a failure, it goes now

"""Reading secrets (WireGuard keys, BGP passwords) from files that only their owner may read."""

from __future__ import annotations

import os
import stat

from netplanx.errors import NetxError

MAX_SECRET = 4096  # a key or a password; a bigger file is not one

def read_secret(path: str, what: str) -> str:
    """The text of ``path``, refusing symlinks, non-regular files and files group or others may read.

    ``what`` names the secret in messages ("private key file").
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a FIFO is refused, not waited on
    except OSError as exc:
        reason = "is a symbolic link" if exc.errno == 40 else exc.strerror
        raise NetxError(f"{what} {path} {reason} (allowed: a regular file, mode 0600)") from None
    with os.fdopen(fd) as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise NetxError(f"{what} {path} is not a regular file (allowed: a regular file, mode 0600)")
        if info.st_mode & 0o077:
            raise NetxError(f"{what} {path} is readable by group or others (mode "
                            f"{stat.S_IMODE(info.st_mode):04o}); refusing it (allowed: chmod 600 {path})")
        text = handle.read(MAX_SECRET + 1)
        if len(text) > MAX_SECRET:
            raise NetxError(f"{what} {path} is larger than {MAX_SECRET} bytes (allowed: a key or password)")
        return text

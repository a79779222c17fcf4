"""Network namespaces entered with setns(2) in-process (``ip netns exec`` would hide bpffs)."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from netplanx.errors import NetxError

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


def set_namespace(fd: int) -> None:
    """Move this process (a child before it runs a program) into the namespace ``fd`` refers to."""
    _setns(fd)


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def enter(name: str) -> None:
    """Move this process into the named namespace for good; it must exist (we never create one here)."""
    path = netns_path(name)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise NetxError(f"network namespace '{name}' does not exist (create it with: ip netns add {name})") from None
    try:
        _setns(fd)
    finally:
        os.close(fd)


@contextmanager
def inside(name: str) -> Iterator[None]:
    """Run the block inside another namespace, then return to the current one."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(netns_path(name), os.O_RDONLY)
    try:
        _setns(target)
        yield
    finally:
        _setns(home)
        os.close(home)
        os.close(target)


def call_inside(name: str, function: Callable[[], T]) -> T:
    """Call ``function`` inside namespace ``name`` (sockets it opens stay bound to that namespace)."""
    with inside(name):
        return function()


def exists(name: str) -> bool:
    return netns_path(name).exists()


def named() -> list[str]:
    """Names of the namespaces in /run/netns."""
    return sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.is_dir() else []

"""Programs on a cgroup v2 directory through BPF links (libbpf as linked by libbcc).

A link pinned in bpffs keeps its program attached after the process exits; ``link_update`` swaps the program
in place (the cgroup never runs without one); removing the last pin (or ``link_detach``) detaches it. Links
are "multi" attachments: they run alongside programs others attach to the same cgroup, and programs on a
cgroup apply to every process in it and in its descendants. ``attached`` (BPF_PROG_QUERY) lists what is
attached to a cgroup itself, whoever attached it.

    with open_cgroup(cgroup2_root() / "netx-workloads") as fd:
        link = link_create(prog_fd, fd, "connect4")
        obj_pin(link, "/sys/fs/bpf/netx/host/lb/links/connect4")
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from netplanx.system.bpf.maps import checked, libbpf, obj_info

# enum bpf_attach_type (uapi/linux/bpf.h) of the hooks netx uses, by name
ATTACH_TYPES = {"connect4": 10, "connect6": 11, "sendmsg4": 14, "sendmsg6": 15, "recvmsg4": 19, "recvmsg6": 20,
                "getpeername4": 29, "getpeername6": 30, "sock_release": 34}
ATTACH_NAMES = {number: name for name, number in ATTACH_TYPES.items()}
PROG_TYPE_CGROUP_SOCK, PROG_TYPE_CGROUP_SOCK_ADDR = 9, 18
MOUNTS = Path("/proc/mounts")


class CgroupError(OSError):
    """The cgroup v2 hierarchy or a cgroup is not there."""


def program_type(hook: str) -> int:
    """The program type a hook takes: sock_release gets a socket, the others a socket address."""
    return PROG_TYPE_CGROUP_SOCK if hook == "sock_release" else PROG_TYPE_CGROUP_SOCK_ADDR


def cgroup2_root(mounts: Path = MOUNTS) -> Path:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host)."""
    for line in mounts.read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] == "cgroup2":
            return Path(fields[1].replace("\\040", " "))
    raise CgroupError(2, "no cgroup v2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup/unified)")


def cgroup_id(path: Path) -> int:
    """The kernel's id of a cgroup v2 directory (its inode number)."""
    return os.stat(path).st_ino


@contextmanager
def open_cgroup(path: Path) -> Iterator[int]:
    """A descriptor of the cgroup directory (what attaching and querying take), closed afterwards."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)


@cache
def _lib() -> ctypes.CDLL:
    lib = libbpf()
    void, u32p = ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)
    signatures = {"bpf_link_create": [ctypes.c_int, ctypes.c_int, ctypes.c_int, void],
                  "bpf_link_update": [ctypes.c_int, ctypes.c_int, void],
                  "bpf_link_detach": [ctypes.c_int],
                  "bpf_prog_query": [ctypes.c_int, ctypes.c_int, ctypes.c_uint32, u32p, u32p, u32p]}
    for name, arguments in signatures.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = arguments, ctypes.c_int
    return lib


def link_create(prog_fd: int, cgroup_fd: int, hook: str) -> int:
    """A link attaching the program to the cgroup's ``hook`` (an fd: pin it, or it dies with the process)."""
    return checked(_lib().bpf_link_create(prog_fd, cgroup_fd, ATTACH_TYPES[hook], None), f"link {hook}")


def link_update(link_fd: int, prog_fd: int) -> None:
    """Swap the program behind a link in place (BPF_LINK_UPDATE)."""
    checked(_lib().bpf_link_update(link_fd, prog_fd, None), "link update")


def link_detach(link_fd: int) -> None:
    """Detach now, even while pins or fds of the link remain (they become defunct)."""
    checked(_lib().bpf_link_detach(link_fd), "link detach")


def attached(cgroup_fd: int, hook: str) -> list[int]:
    """Ids of the programs attached to the cgroup's ``hook`` itself (links included; not inherited ones)."""
    flags, count = ctypes.c_uint32(), ctypes.c_uint32(64)
    ids = (ctypes.c_uint32 * 64)()
    checked(_lib().bpf_prog_query(cgroup_fd, ATTACH_TYPES[hook], 0, ctypes.byref(flags), ids, ctypes.byref(count)),
           f"query {hook}")
    return list(ids[:count.value])


class _LinkInfo(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("id", ctypes.c_uint32), ("prog_id", ctypes.c_uint32),
                ("pad", ctypes.c_uint32), ("cgroup_id", ctypes.c_uint64), ("attach_type", ctypes.c_uint32),
                ("rest", ctypes.c_uint8 * 60)]


@dataclass(frozen=True)
class LinkInfo:
    """A cgroup link: its program, its cgroup (0 once detached) and hook."""

    id: int
    prog_id: int
    cgroup_id: int
    hook: str


def link_info(fd: int) -> LinkInfo:
    """What the kernel says about the cgroup link behind ``fd``."""
    info = obj_info(fd, _LinkInfo, "link info")
    return LinkInfo(info.id, info.prog_id, info.cgroup_id, ATTACH_NAMES.get(info.attach_type, str(info.attach_type)))

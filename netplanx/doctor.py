"""``netx doctor``: what this host offers netx, each missing piece with what to do about it."""

from __future__ import annotations

import ctypes
import os
import platform
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from netplanx.providers.kernel.features import link_kind_error

BPF_FS_MAGIC = 0xCAFE4A11


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = False


def _link(kind: str, required: bool, fix: str) -> Check:
    error = link_kind_error(kind)
    return Check(f"kernel: {kind} links", error is None, error or "supported", "" if error is None else fix, required)


def _bpffs() -> Check:
    class StatFs(ctypes.Structure):
        _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_long * 15)]

    result = StatFs()
    libc = ctypes.CDLL(None, use_errno=True)
    mounted = libc.statfs(b"/sys/fs/bpf", ctypes.byref(result)) == 0 and result.f_type == BPF_FS_MAGIC
    return Check("bpffs at /sys/fs/bpf", mounted, "mounted" if mounted else "not mounted",
                 "mount -t bpf bpf /sys/fs/bpf")


def _bcc() -> Check:
    headers = Path(f"/lib/modules/{platform.release()}/build")
    try:
        import bcc  # noqa: F401  (Debian's python3-bpfcc)
    except ImportError:
        return Check("bcc (BPF programs)", False, "python module bcc not importable",
                     "apt-get install --no-install-recommends python3-bpfcc linux-headers-amd64 bpftool")
    if not headers.exists():
        return Check("bcc (BPF programs)", False, f"no kernel headers at {headers}",
                     f"ln -s /usr/src/linux-headers-<version>-amd64 {headers} (see ../shared/PLATFORM.md)")
    return Check("bcc (BPF programs)", True, f"bcc and headers at {headers}")


def _tool(name: str, purpose: str, fix: str, required: bool = False) -> Check:
    path = shutil.which(name)
    return Check(f"{name} ({purpose})", path is not None, path or "not installed", fix, required)


def _wireguard() -> Check:
    kernel = link_kind_error("wireguard") is None
    userspace = shutil.which("wireguard-go")
    ok = kernel or userspace is not None
    detail = "kernel WireGuard" if kernel else (f"wireguard-go at {userspace} (kernel lacks wireguard)"
                                                if userspace else "kernel lacks wireguard, no wireguard-go")
    return Check("WireGuard (encryption)", ok, detail, "apt-get install --no-install-recommends wireguard-go")


CHECKS: list[Callable[[], Check]] = [
    lambda: Check("running as root", os.geteuid() == 0, f"uid {os.geteuid()}", "run netx with sudo", True),
    lambda: _tool("ip", "namespaces, lab", "apt-get install iproute2", True),
    lambda: _link("veth", True, "a kernel with CONFIG_VETH"),
    lambda: _link("bridge", True, "a kernel with CONFIG_BRIDGE"),
    lambda: _link("vxlan", False, "a kernel with CONFIG_VXLAN (tunnel mode)"),
    lambda: _link("macvlan", False, "a kernel with CONFIG_MACVLAN"),
    lambda: _link("geneve", False, "a kernel with CONFIG_GENEVE, or tunnel protocol vxlan"),
    _wireguard,
    _bpffs,
    _bcc,
    lambda: _tool("gobgpd", "BGP", "apt-get install --no-install-recommends gobgpd"),
]


def checks() -> list[Check]:
    return [check() for check in CHECKS]

"""What the eBPF features (services, policy) share: the doctor checks and preflight of bpffs and bcc."""

from __future__ import annotations

import ctypes
import platform
from pathlib import Path

from netplanx.engine.feature import DoctorCheck

BPF_FS_MAGIC = 0xCAFE4A11
BCC_FIX = "apt-get install --no-install-recommends python3-bpfcc linux-headers-amd64 bpftool"


def bpffs_mounted() -> bool:
    class StatFs(ctypes.Structure):
        _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_long * 15)]

    result = StatFs()
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.statfs(b"/sys/fs/bpf", ctypes.byref(result)) == 0 and result.f_type == BPF_FS_MAGIC


def bpffs_check() -> DoctorCheck:
    mounted = bpffs_mounted()
    return DoctorCheck("bpffs at /sys/fs/bpf", mounted, "mounted" if mounted else "not mounted",
                       "mount -t bpf bpf /sys/fs/bpf")


def bcc_check() -> DoctorCheck:
    headers = Path(f"/lib/modules/{platform.release()}/build")
    try:
        import bcc  # noqa: F401  (Debian's python3-bpfcc)
    except ImportError:
        return DoctorCheck("bcc (BPF programs)", False, "python module bcc not importable", BCC_FIX)
    if not headers.exists():
        return DoctorCheck("bcc (BPF programs)", False, f"no kernel headers at {headers}",
                           f"ln -s /usr/src/linux-headers-<version>-amd64 {headers} (see ../shared/PLATFORM.md)")
    return DoctorCheck("bcc (BPF programs)", True, f"bcc and headers at {headers}")


def ebpf_missing(address: str) -> list[str]:
    """Plan errors when this host cannot run eBPF programs (bpffs not mounted, no bcc)."""
    if not bpffs_mounted():
        return [f"{address}: bpffs is not mounted at /sys/fs/bpf (fix: mount -t bpf bpf /sys/fs/bpf)"]
    try:
        import bcc  # noqa: F401
    except ImportError:
        return [f"{address}: the bcc Python bindings are missing (apt-get install python3-bpfcc)"]
    return []

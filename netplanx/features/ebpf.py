"""What the eBPF features (services, policy) share: the doctor checks and preflight of bpffs and bcc, and
the program versions pinned in a scope."""

from __future__ import annotations

import ctypes
import platform
from pathlib import Path

from netplanx.engine.feature import DoctorCheck
from netplanx.system.bpf.loader import PIN_ROOT, BpfSource, remove_pins
from netplanx.system.state import StateStore

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


class PinnedVersions:
    """The versions of one C source pinned in a scope (``prog-VERSION`` and ``maps-VERSION`` folders), and
    those held only so that a rollback can attach them again (netx's record ``NAME-held``).

    Loading a version for an apply holds every other pinned one: if the apply fails, or is not confirmed
    in time, the undo plan re-attaches the previous programs (their maps are still there). Once the apply
    is final (verified, and confirmed when it had to be) or rolled back, ``release`` removes them."""

    def __init__(self, source: BpfSource, scope: str, store: StateStore):
        self.folder = PIN_ROOT / scope / source.name
        self.store = store
        self.record = f"{source.name}-held"

    def pinned(self, kind: str) -> list[str]:
        """Every pinned version of ``kind`` ("prog" or "maps")."""
        return sorted(p.name.removeprefix(f"{kind}-") for p in self.folder.glob(f"{kind}-*"))

    def current(self, kind: str) -> list[str]:
        """The pinned versions of ``kind`` that are not held for a rollback."""
        held = self.store.load(self.record).get(kind, [])
        return [version for version in self.pinned(kind) if version not in held]

    def hold_others(self, program: str, maps: str) -> None:
        """``program`` (with ``maps``) is now in use: hold every other pinned version until released."""
        held = {"prog": [v for v in self.pinned("prog") if v != program],
                "maps": [v for v in self.pinned("maps") if v != maps]}
        if any(held.values()):
            self.store.save(self.record, held)
        else:
            self.store.remove(self.record)

    def release(self) -> None:
        """Remove the held versions' pins (attached programs live on until replaced)."""
        for kind, versions in self.store.load(self.record).items():
            for version in versions:
                remove_pins(self.folder / f"{kind}-{version}")
        self.store.remove(self.record)

"""Compile, load, pin and attach eBPF programs (bcc + pyroute2), shared by the eBPF providers.

Pins live under ``/sys/fs/bpf/netx/<scope>/<name>/`` (``scope``: netx's per-namespace name, since bpffs is
shared by every network namespace):

* ``maps-<digest of the maps header>/MAP``: the C code pins its maps there with
  ``BPF_TABLE_PINNED(..., PIN_DIR "/MAP")`` (the loader defines ``PIN_DIR``). A program change that keeps
  the header keeps the maps and their contents (connection tracking survives an upgrade); a header change
  gets fresh maps, so a pin with another definition is never silently re-used.
* ``prog-<digest of the C source, headers and cflags>/FUNCTION``: the loaded programs. ``load`` re-opens
  them without compiling when they exist.

Attachments (they outlive the process): XDP here (``xdp_attach``/``xdp_state``/``xdp_detach``, native or
generic); tc filters on clsact hooks in ``tc.py``. Every function acts in the network namespace the
process is in.

    LB = BpfSource("lb", BPF_DIR / "lb.c", BPF_DIR / "lb_maps.h", {"lb_ingress": "tc", "lb_xdp": "xdp"})
    loaded = load(LB, scope)              # compiles only when this version is not pinned yet
    xdp_attach("eth0", loaded.fd("lb_xdp"), "native")
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from netplanx.errors import NetxError
from netplanx.system.bpf.maps import obj_get, obj_pin, prog_info
from netplanx.system.bpf.programs import describe, load_recorded, recorded, save

PIN_ROOT = Path("/sys/fs/bpf/netx")
XDP_FLAGS = {"generic": 2, "native": 4}
XDP_MODES = {1: "native", 2: "generic", 3: "offload"}
TC_ACT_UNSPEC, TC_ACT_OK, TC_ACT_SHOT = -1, 0, 2


class BpfError(NetxError):
    """Compiling, loading, pinning or attaching a program failed."""


@dataclass(frozen=True)
class BpfSource:
    """One C file and the programs (function -> "tc" or "xdp") it provides.

    ``maps_header`` holds the map definitions: its digest versions the map pins. ``headers`` are other
    files the source includes (part of the program version). ``cflags`` are passed to clang.
    """

    name: str
    source: Path
    maps_header: Path
    programs: Mapping[str, str]
    headers: tuple[Path, ...] = ()
    cflags: tuple[str, ...] = ()

    @property
    def map_version(self) -> str:
        return _digest([self.maps_header])

    @property
    def version(self) -> str:
        """The program version: the source, every header and the flags."""
        return _digest([self.source, self.maps_header, *self.headers], " ".join(self.cflags))

    def map_dir(self, scope: str) -> Path:
        return PIN_ROOT / scope / self.name / f"maps-{self.map_version}"

    def prog_dir(self, scope: str, version: str | None = None) -> Path:
        return PIN_ROOT / scope / self.name / f"prog-{version or self.version}"


def _digest(paths: Sequence[Path], extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@dataclass
class Loaded:
    """Programs of one version, open (fds) and pinned."""

    source: BpfSource
    scope: str
    version: str
    fds: dict[str, int] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def fd(self, function: str) -> int:
        return self.fds[function]

    @property
    def map_dir(self) -> Path:
        return self.source.map_dir(self.scope)

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


def open_pinned(source: BpfSource, scope: str, version: str) -> Loaded:
    """The programs of a version that is pinned (nothing is compiled: its C source may be gone). An older
    version may lack functions the source has now (programs added since): those are left out."""
    prog_dir = source.prog_dir(scope, version)
    pinned = [f for f in source.programs if (prog_dir / f).exists()]
    if not pinned:
        raise BpfError(f"{source.name} programs of version {version} are not pinned in {scope}: they cannot be "
                       "attached again")
    loaded = Loaded(source, scope, version)
    for function in pinned:
        loaded.fds[function] = obj_get(prog_dir / function)
        loaded.ids[function] = prog_info(loaded.fds[function]).id
    return loaded


def load(source: BpfSource, scope: str, programs: Path | None = None) -> Loaded:
    """The programs of this version: re-opened from their pins, loaded from the host's record of the version
    (``programs``: the folder of records, see programs.py; another scope compiled it), or compiled with bcc,
    pinned and recorded."""
    prog_dir = source.prog_dir(scope)
    if all((prog_dir / f).exists() for f in source.programs):
        return open_pinned(source, scope, source.version)
    record = recorded(programs, source.name, source.version) if programs else None
    if record is not None:
        try:
            fds = load_recorded(record, source.map_dir(scope))
        except OSError as exc:
            raise BpfError(f"{source.source.name}: loading the recorded version {source.version} failed: {exc}") \
                from exc
        return _pinned(Loaded(source, scope, source.version), fds, prog_dir)
    try:
        from bcc import BPF
    except ImportError as exc:
        raise BpfError("bcc is not installed (apt-get install python3-bpfcc; see scripts/install.sh)") from exc
    source.map_dir(scope).mkdir(parents=True, exist_ok=True)
    flags = [f'-DPIN_DIR="{source.map_dir(scope)}"', f"-I{source.source.parent}", *source.cflags]
    try:
        module = BPF(src_file=str(source.source).encode(), cflags=flags)
        kinds = {"tc": BPF.SCHED_CLS, "xdp": BPF.XDP}
        functions = {f: module.load_func(f.encode(), kinds[kind]) for f, kind in source.programs.items()}
    except Exception as exc:  # bcc raises plain Exceptions with the compiler's or verifier's text
        raise BpfError(f"{source.source.name}: compiling or loading failed: {exc}") from exc
    if programs:
        described = describe(module, {f: (kinds[source.programs[f]], p.fd) for f, p in functions.items()},
                             source.map_dir(scope))
        if described is not None:
            save(programs, source.name, source.version, described)
    loaded = _pinned(Loaded(source, scope, source.version), {f: os.dup(p.fd) for f, p in functions.items()},
                     prog_dir)
    module.cleanup()
    return loaded


def _pinned(loaded: Loaded, fds: Mapping[str, int], prog_dir: Path) -> Loaded:
    """``loaded`` holding ``fds`` (function -> program fd, now its own), pinned in ``prog_dir`` all at once."""
    temporary = prog_dir.with_name(f"tmp-{os.getpid()}-{prog_dir.name}")  # bpffs names have no dots
    temporary.mkdir(parents=True, exist_ok=True)
    for function, fd in fds.items():
        loaded.fds[function] = fd
        loaded.ids[function] = prog_info(fd).id
        obj_pin(fd, temporary / function)
    try:
        temporary.rename(prog_dir)  # all programs appear at once; a concurrent loader's pins win
    except OSError:
        remove_pins(temporary)
    return loaded


def pinned_versions(source: BpfSource, scope: str) -> dict[int, tuple[str, str]]:
    """Program id -> (version, function) for every pinned version of this source in the scope."""
    found: dict[int, tuple[str, str]] = {}
    base = PIN_ROOT / scope / source.name
    for folder in sorted(base.glob("prog-*")) if base.exists() else []:
        for pin in folder.iterdir():
            fd = obj_get(pin)
            try:
                found[prog_info(fd).id] = (folder.name.removeprefix("prog-"), pin.name)
            finally:
                os.close(fd)
    return found


def remove_pins(path: Path) -> None:
    """Remove a pin folder (the objects live on while attached or open)."""
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)


def remove_scope(scope: str, name: str) -> None:
    """Remove every pin of ``name`` in the scope, and the scope folder when it is left empty."""
    remove_pins(PIN_ROOT / scope / name)
    for folder in (PIN_ROOT / scope, PIN_ROOT):
        try:
            folder.rmdir()
        except OSError:
            break


def device_exists(device: str) -> bool:
    """In this process's network namespace (/sys/class/net shows the namespace sysfs was mounted in)."""
    return bool(ctypes.CDLL(None).if_nametoindex(device.encode()))


def ifindex(device: str) -> int:
    """The device's index in this network namespace."""
    index = ctypes.CDLL(None).if_nametoindex(device.encode())
    if not index:
        raise BpfError(f"device {device} does not exist")
    return index


@dataclass(frozen=True)
class XdpState:
    prog_id: int
    mode: str  # native, generic or offload


def xdp_state(device: str) -> XdpState | None:
    """The XDP program attached to a device, if any."""
    done = subprocess.run(["ip", "-j", "-d", "link", "show", "dev", device], capture_output=True, text=True)
    if done.returncode != 0 or not done.stdout.strip():
        return None
    xdp = json.loads(done.stdout)[0].get("xdp")
    if not xdp or "prog" not in xdp:
        return None
    return XdpState(int(xdp["prog"]["id"]), XDP_MODES.get(int(xdp.get("mode", 0)), str(xdp.get("mode"))))


def xdp_attach(device: str, fd: int, mode: str) -> None:
    """Attach an XDP program in ``mode`` (native or generic), or replace the one there.

    In the mode the device already runs, the replacement is atomic (no packet misses the program). In
    the other mode the kernel refuses a second program, so the old one is detached first: packets that
    arrive before the new one is attached pass without any."""
    from netplanx.system.bpf.maps import libbpf

    lib = libbpf()
    lib.bpf_attach_xdp.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32]
    current = xdp_state(device)
    if current and current.mode != mode:
        xdp_detach(device)
    if lib.bpf_attach_xdp(device.encode(), fd, XDP_FLAGS[mode]) != 0:
        raise BpfError(f"{device}: attaching XDP in {mode} mode failed")


def xdp_detach(device: str) -> None:
    state = xdp_state(device)
    if state is None:
        return
    from netplanx.system.bpf.maps import libbpf

    lib = libbpf()
    lib.bpf_attach_xdp.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32]
    lib.bpf_attach_xdp(device.encode(), -1, XDP_FLAGS.get(state.mode, 0))

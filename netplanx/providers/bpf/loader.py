"""Compile, load, pin and attach eBPF programs (bcc + pyroute2), shared by the eBPF providers.

Pins live under ``/sys/fs/bpf/netx/<scope>/<name>/`` (``scope``: netx's per-namespace name, since bpffs is
shared by every network namespace):

* ``maps-<digest of the maps header>/MAP``: the C code pins its maps there with
  ``BPF_TABLE_PINNED(..., PIN_DIR "/MAP")`` (the loader defines ``PIN_DIR``). A program change that keeps
  the header keeps the maps and their contents (connection tracking survives an upgrade); a header change
  gets fresh maps, so a pin with another definition is never silently re-used.
* ``prog-<digest of the C source, headers and cflags>/FUNCTION``: the loaded programs. ``load`` re-opens
  them without compiling when they exist.

Attachments (they outlive the process): tc filters on clsact ingress/egress (``tc_attach``/``tc_filters``/
``tc_detach``, named, at a given prio, replaced in place) and XDP (``xdp_attach``/``xdp_state``/
``xdp_detach``, native or generic). Every function acts in the network namespace the process is in.

    LB = BpfSource("lb", BPF_DIR / "lb.c", BPF_DIR / "lb_maps.h", {"lb_ingress": "tc", "lb_xdp": "xdp"})
    loaded = load(LB, scope)              # compiles only when this version is not pinned yet
    tc_attach("ep-web", "ingress", loaded.fd("lb_ingress"), prio=100, name="netx-lb-ingress")
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
from netplanx.providers.bpf.maps import obj_get, obj_pin, prog_info

PIN_ROOT = Path("/sys/fs/bpf/netx")
BPF_DIR_VARIABLE = "NETX_BPF_DIR"  # another folder of C sources (tests of program upgrades)
BPF_DIR = Path(os.environ.get(BPF_DIR_VARIABLE) or Path(__file__).resolve().parents[3] / "bpf")
HOOKS = {"ingress": "ffff:fff2", "egress": "ffff:fff3"}
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


def load(source: BpfSource, scope: str) -> Loaded:
    """The programs of this version: re-opened from their pins, or compiled with bcc and pinned."""
    prog_dir = source.prog_dir(scope)
    loaded = Loaded(source, scope, source.version)
    if all((prog_dir / f).exists() for f in source.programs):
        for function in source.programs:
            loaded.fds[function] = obj_get(prog_dir / function)
            loaded.ids[function] = prog_info(loaded.fds[function]).id
        return loaded
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
    temporary = prog_dir.with_name(f"tmp-{os.getpid()}-{prog_dir.name}")  # bpffs names have no dots
    temporary.mkdir(parents=True, exist_ok=True)
    for function, program in functions.items():
        loaded.fds[function] = os.dup(program.fd)
        loaded.ids[function] = prog_info(program.fd).id
        obj_pin(program.fd, temporary / function)
    try:
        temporary.rename(prog_dir)  # all programs appear at once; a concurrent loader's pins win
    except OSError:
        remove_pins(temporary)
    module.cleanup()
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


@dataclass(frozen=True)
class TcFilter:
    """A cls_bpf filter on a clsact hook."""

    device: str
    hook: str
    prio: int
    name: str
    prog_id: int


def _run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise BpfError(f"{' '.join(command)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def device_exists(device: str) -> bool:
    """In this process's network namespace (/sys/class/net shows the namespace sysfs was mounted in)."""
    return bool(ctypes.CDLL(None).if_nametoindex(device.encode()))


def ifindex(device: str) -> int:
    """The device's index in this network namespace."""
    index = ctypes.CDLL(None).if_nametoindex(device.encode())
    if not index:
        raise BpfError(f"device {device} does not exist")
    return index


def tc_filters(device: str, hook: str) -> list[TcFilter]:
    """The BPF filters on a device's clsact hook ("ingress" or "egress"); [] without clsact."""
    done = subprocess.run(["tc", "-j", "filter", "show", "dev", device, hook], capture_output=True, text=True)
    if done.returncode != 0 or not done.stdout.strip():
        return []
    found = []
    for entry in json.loads(done.stdout):
        options = entry.get("options") or {}
        if entry.get("kind") != "bpf" or "prog" not in options:
            continue
        found.append(TcFilter(device, hook, int(entry.get("pref", 0)), options.get("bpf_name", ""),
                              int(options["prog"].get("id", 0))))
    return found


def tc_attach(device: str, hook: str, fd: int, *, prio: int, name: str) -> None:
    """Attach (or replace in place, hitless) the program at ``prio`` on the device's clsact ``hook``."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    index = ifindex(device)
    with IPRoute() as ipr:
        try:
            ipr.tc("add", "clsact", index)
        except NetlinkError as exc:
            if exc.code != 17:  # EEXIST: clsact is there already
                raise BpfError(f"{device}: adding clsact failed: {exc}") from exc
        exists = any(f.prio == prio for f in tc_filters(device, hook))
        try:
            ipr.tc("replace-filter" if exists else "add-filter", "bpf", index, ":1", fd=fd, name=name,
                   parent=HOOKS[hook], classid=1, direct_action=True, prio=prio)
        except NetlinkError as exc:
            raise BpfError(f"{device} {hook}: attaching {name} at prio {prio} failed: {exc}") from exc


def tc_detach(device: str, hook: str, prio: int) -> None:
    """Remove the filter at ``prio`` (absent device or filter: nothing to do)."""
    if not device_exists(device):
        return
    if any(f.prio == prio for f in tc_filters(device, hook)):
        _run("tc", "filter", "del", "dev", device, hook, "pref", str(prio))


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


def xdp_attach(device: str, fd: int, mode: str = "auto") -> str:
    """Attach (or replace) an XDP program; ``mode`` native, generic or auto (native, else generic).
    Returns the mode used."""
    from netplanx.providers.bpf.maps import libbpf

    lib = libbpf()
    lib.bpf_attach_xdp.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32]
    current = xdp_state(device)
    tries = ["native", "generic"] if mode == "auto" else [mode]
    if current and current.mode in tries:
        tries.remove(current.mode)
        tries.insert(0, current.mode)  # replace in the mode it runs in: no gap
    for attempt in tries:
        if current and current.mode != attempt:
            xdp_detach(device)
            current = None
        if lib.bpf_attach_xdp(device.encode(), fd, XDP_FLAGS[attempt]) == 0:
            return attempt
    raise BpfError(f"{device}: attaching XDP failed (tried {', '.join(tries)})")


def xdp_detach(device: str) -> None:
    state = xdp_state(device)
    if state is None:
        return
    from netplanx.providers.bpf.maps import libbpf

    lib = libbpf()
    lib.bpf_attach_xdp.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32]
    lib.bpf_attach_xdp(device.encode(), -1, XDP_FLAGS.get(state.mode, 0))


class _TestRunOpts(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("data_in", ctypes.c_void_p), ("data_out", ctypes.c_void_p),
                ("data_size_in", ctypes.c_uint32), ("data_size_out", ctypes.c_uint32),
                ("ctx_in", ctypes.c_void_p), ("ctx_out", ctypes.c_void_p), ("ctx_size_in", ctypes.c_uint32),
                ("ctx_size_out", ctypes.c_uint32), ("retval", ctypes.c_uint32), ("repeat", ctypes.c_int),
                ("duration", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("cpu", ctypes.c_uint32),
                ("batch_size", ctypes.c_uint32)]


@dataclass(frozen=True)
class ProgTestRun:
    retval: int
    duration_ns: int  # mean per run, as the kernel measures it
    data_out: bytes


def prog_test_run(fd: int, packet: bytes, repeat: int = 1) -> ProgTestRun:
    """Run a program on ``packet`` in the kernel (BPF_PROG_TEST_RUN), ``repeat`` times on the same buffer
    (a program that rewrites the packet sees its own output from the second run on)."""
    from netplanx.providers.bpf.maps import libbpf

    function = libbpf().bpf_prog_test_run_opts
    function.argtypes, function.restype = [ctypes.c_int, ctypes.c_void_p], ctypes.c_int
    data_in = ctypes.create_string_buffer(packet, len(packet))
    data_out = ctypes.create_string_buffer(len(packet) + 256)
    opts = _TestRunOpts(sz=ctypes.sizeof(_TestRunOpts), data_in=ctypes.addressof(data_in),
                        data_out=ctypes.addressof(data_out), data_size_in=len(packet),
                        data_size_out=len(data_out), repeat=repeat)
    result = function(fd, ctypes.byref(opts))
    if result < 0:
        raise BpfError(f"BPF_PROG_TEST_RUN failed: {os.strerror(-result)}")
    return ProgTestRun(ctypes.c_int32(opts.retval).value, opts.duration, data_out.raw[:opts.data_size_out])

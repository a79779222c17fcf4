"""The policy datapath's pinned objects: where they live, their byte layouts (bpf/policy.h), and access.

Maps are opened from their pins through libbcc (no compiling); the programs are compiled with bcc only
when the datapath is created or its source changed.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

from netplanx.errors import NetxError
from netplanx.policy.compile import Key, Verdict

BPF_ROOT = Path("/sys/fs/bpf")
SOURCE_DIR = Path(__file__).resolve().parents[3] / "bpf"
LAYOUT = "v1"  # bump with any change of bpf/policy.h: old pins are then never re-used
MAPS = ("policy", "ipcache", "ct", "stats", "names", "flows")
PROGRAMS = ("from_endpoint", "to_endpoint")
RULE_SLOTS = 16384
NAME_RULE, NAME_IDENTITY = 1, 2
POLICY_KEY = struct.Struct("<IIBBH")
POLICY_VALUE = struct.Struct("<B3xI")
IP_KEY = struct.Struct("<I4s")
IP_VALUE = struct.Struct("<I44s")
NAME_KEY = struct.Struct("<II")
NAME_VALUE = struct.Struct("<64s")
STATS_VALUE = struct.Struct("<QQ")
FLOW_EVENT = struct.Struct("<Q4s4sHHBBBBIIIII")


def source_digest() -> str:
    """Identifies the program build: the C source and its header."""
    digest = hashlib.sha256()
    for name in ("policy.h", "policy.c"):
        digest.update((SOURCE_DIR / name).read_bytes())
    return digest.hexdigest()[:12]


def pin_dir(scope: str) -> Path:
    return BPF_ROOT / "netx" / scope / f"policy-{LAYOUT}"


def program_pin(scope: str, program: str, digest: str) -> Path:
    return pin_dir(scope) / f"prog-{program.replace('_', '-')}-{digest}"


def _lib() -> ctypes.CDLL:
    from bcc import libbcc  # ctypes bindings of libbcc (Debian's python3-bpfcc)

    return libbcc.lib


def obj_get(path: Path) -> int:
    fd = _lib().bpf_obj_get(str(path).encode())
    if fd < 0:
        raise NetxError(f"cannot open the pinned BPF object {path} ({os.strerror(ctypes.get_errno() or errno.ENOENT)})")
    return fd


def obj_pin(fd: int, path: Path) -> None:
    if _lib().bpf_obj_pin(fd, str(path).encode()) != 0:
        raise NetxError(f"cannot pin a BPF object at {path}")


class PinnedMap:
    """A pinned map opened by path; keys and values are bytes."""

    def __init__(self, path: Path, key_size: int, value_size: int):
        self.path = path
        self.fd = obj_get(path)
        self.key_size = key_size
        self.value_size = value_size

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> PinnedMap:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def get(self, key: bytes) -> bytes | None:
        value = ctypes.create_string_buffer(self.value_size)
        if _lib().bpf_lookup_elem(self.fd, ctypes.c_char_p(key), value) != 0:
            return None
        return value.raw

    def put(self, key: bytes, value: bytes) -> None:
        if _lib().bpf_update_elem(self.fd, ctypes.c_char_p(key), ctypes.c_char_p(value), 0) != 0:
            raise NetxError(f"cannot write an entry of {self.path} (map full?)")

    def remove(self, key: bytes) -> None:
        _lib().bpf_delete_elem(self.fd, ctypes.c_char_p(key))

    def keys(self) -> Iterator[bytes]:
        current = ctypes.create_string_buffer(self.key_size)
        following = ctypes.create_string_buffer(self.key_size)
        if _lib().bpf_get_next_key(self.fd, None, following) != 0:
            return
        while True:
            yield following.raw
            ctypes.memmove(current, following, self.key_size)
            if _lib().bpf_get_next_key(self.fd, current, following) != 0:
                return

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for key in list(self.keys()):
            value = self.get(key)
            if value is not None:
                yield key, value


def open_map(scope: str, name: str) -> PinnedMap:
    sizes = {"policy": (POLICY_KEY.size, POLICY_VALUE.size), "ipcache": (IP_KEY.size, IP_VALUE.size),
             "names": (NAME_KEY.size, NAME_VALUE.size), "stats": (4, STATS_VALUE.size * _cpus())}
    return PinnedMap(pin_dir(scope) / name, *sizes[name])


def _cpus() -> int:
    text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    return sum(int(b) - int(a) + 1 if "-" in part else 1 for part in text.split(",")
               for a, _s, b in [part.partition("-")])


def pack_policy(ifindex: int, key: Key, verdict: Verdict) -> tuple[bytes, bytes]:
    return (POLICY_KEY.pack(ifindex, key.identity, key.egress, key.protocol, key.port),
            POLICY_VALUE.pack(int(verdict.deny), verdict.rule))


def unpack_policy(key: bytes, value: bytes) -> tuple[int, Key, Verdict]:
    ifindex, identity, egress, protocol, port = POLICY_KEY.unpack(key)
    deny, rule = POLICY_VALUE.unpack(value)
    return ifindex, Key(egress, identity, protocol, port), Verdict(bool(deny), rule)


def pack_prefix(cidr: str) -> bytes:
    address, _s, length = cidr.partition("/")
    return IP_KEY.pack(int(length), socket.inet_aton(address))


def unpack_prefix(key: bytes) -> str:
    length, address = IP_KEY.unpack(key)
    return f"{socket.inet_ntoa(address)}/{length}"


def pack_ip_value(identity: int, name: str) -> bytes:
    return IP_VALUE.pack(identity, name.encode()[:43])


def unpack_ip_value(value: bytes) -> tuple[int, str]:
    identity, name = IP_VALUE.unpack(value)
    return identity, name.rstrip(b"\0").decode(errors="replace")


def pack_name(kind: int, number: int, text: str) -> tuple[bytes, bytes]:
    return NAME_KEY.pack(kind, number), NAME_VALUE.pack(text.encode()[:63])


def read_names(scope: str) -> dict[tuple[int, int], str]:
    """Rule and identity names the datapath carries (for flows and counters)."""
    with open_map(scope, "names") as names:
        return {NAME_KEY.unpack(k): v.rstrip(b"\0").decode(errors="replace") for k, v in names.items()}


def rule_counters(scope: str) -> dict[int, tuple[int, int]]:
    """Rule -> (packets, bytes), summed over CPUs, for rules that saw traffic."""
    found = {}
    with open_map(scope, "stats") as stats:
        for rule in range(RULE_SLOTS):
            value = stats.get(struct.pack("<I", rule))
            if value is None:
                continue
            cells = [STATS_VALUE.unpack_from(value, i * STATS_VALUE.size) for i in range(_cpus())]
            packets, size = sum(c[0] for c in cells), sum(c[1] for c in cells)
            if packets:
                found[rule] = (packets, size)
    return found

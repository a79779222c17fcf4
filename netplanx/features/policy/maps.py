"""The policy datapath's pinned objects: the program source, the byte layouts of bpf/policy.h as ctypes
structures, and typed access to the maps (through the shared loader and map modules).
"""

from __future__ import annotations

import ctypes
import socket
import struct
from pathlib import Path

from netplanx.features.policy.entries import Key, Verdict
from netplanx.system.bpf.loader import PIN_ROOT, BpfSource
from netplanx.system.bpf.maps import BpfMap
from netplanx.system.bpf.sources import BPF_DIR

POLICY = BpfSource("policy", BPF_DIR / "policy.c", BPF_DIR / "policy.h",
                   {"from_endpoint": "tc", "to_endpoint": "tc", "from_remote": "tc", "from_remote_ip": "tc"})
NAME_RULE, NAME_IDENTITY = 1, 2
FLOW_EVENT = struct.Struct("<Q16s16sHHBBBBIIIII")  # struct flow_event, as the ring buffer delivers it
MAPPED = b"\0" * 10 + b"\xff\xff"  # IPv4 as ::ffff:a.b.c.d, the datapath's one address form
u8, u16, u32, u64 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64


PREFIX_ANY, PREFIX_PROTOCOL = 72, 80  # bpf/policy.h: POL_PREFIX_ANY, POL_PREFIX_PROTOCOL


class PolicyKey(ctypes.Structure):
    """An LPM trie key: ``prefixlen`` bits of (ifindex, identity, egress, protocol, port) match; the port is
    in network order (its leading bits are the prefix)."""

    _fields_ = [("prefixlen", u32), ("ifindex", u32), ("identity", u32), ("egress", u8), ("protocol", u8),
                ("port", u16)]


class PolicyValue(ctypes.Structure):
    _fields_ = [("deny", u8), ("proxy", u8), ("pad", u8 * 2), ("rule", u32)]


class IpKey(ctypes.Structure):
    _fields_ = [("prefixlen", u32), ("addr", u8 * 16)]


class IpValue(ctypes.Structure):
    _fields_ = [("identity", u32), ("name", ctypes.c_char * 44)]


class EndpointKey(ctypes.Structure):
    _fields_ = [("addr", u8 * 16)]


class NameKey(ctypes.Structure):
    _fields_ = [("kind", u32), ("id", u32)]


class NameValue(ctypes.Structure):
    _fields_ = [("text", ctypes.c_char * 64)]


class RuleStats(ctypes.Structure):
    _fields_ = [("packets", u64), ("bytes", u64)]


TYPES = {"policy": (PolicyKey, PolicyValue), "ipcache": (IpKey, IpValue), "names": (NameKey, NameValue),
         "stats": (u32, RuleStats), "endpoints": (EndpointKey, u32)}


def scope_dir(scope: str) -> Path:
    """Every pin of the policy datapath in this scope (maps and program versions)."""
    return PIN_ROOT / scope / POLICY.name


def map_path(scope: str, name: str) -> Path:
    return POLICY.map_dir(scope) / name


def loaded(scope: str) -> bool:
    return map_path(scope, "policy").exists()


def open_map(scope: str, name: str) -> BpfMap:
    return BpfMap.open(map_path(scope, name), *TYPES[name])


def policy_entry(ifindex: int, key: Key, verdict: Verdict | None = None) -> tuple[PolicyKey, PolicyValue]:
    value = (PolicyValue(deny=int(verdict.deny), proxy=int(verdict.proxy), rule=verdict.rule) if verdict
             else PolicyValue())
    prefix = PREFIX_PROTOCOL + key.bits if key.protocol else PREFIX_ANY
    return PolicyKey(prefix, ifindex, key.identity, key.egress, key.protocol, socket.htons(key.port)), value


def unpack_policy(key: PolicyKey, value: PolicyValue) -> tuple[int, Key, Verdict]:
    bits = max(key.prefixlen - PREFIX_PROTOCOL, 0)
    entry = Key(key.egress, key.identity, key.protocol, socket.ntohs(key.port), bits)
    return key.ifindex, entry, Verdict(bool(value.deny), value.rule, bool(value.proxy))


def address_bytes(address: str) -> bytes:
    """16 bytes: IPv6 as is, IPv4 mapped."""
    return socket.inet_pton(socket.AF_INET6, address) if ":" in address else MAPPED + socket.inet_aton(address)


def endpoint_key(address: str) -> EndpointKey:
    return EndpointKey((u8 * 16)(*address_bytes(address)))


def address_text(raw: bytes) -> str:
    return socket.inet_ntoa(raw[12:]) if raw[:12] == MAPPED else socket.inet_ntop(socket.AF_INET6, raw)


def prefix_key(cidr: str) -> IpKey:
    address, _s, length = cidr.partition("/")
    return IpKey(int(length) + (0 if ":" in address else 96), (u8 * 16)(*address_bytes(address)))


def prefix_text(key: IpKey) -> str:
    raw = bytes(key.addr)
    mapped = raw[:12] == MAPPED and key.prefixlen >= 96
    return f"{address_text(raw)}/{key.prefixlen - 96 if mapped else key.prefixlen}"


def ip_value(identity: int, name: str) -> IpValue:
    return IpValue(identity, name.encode()[:43])


def name_entry(kind: int, number: int, text: str) -> tuple[NameKey, NameValue]:
    return NameKey(kind, number), NameValue(text.encode()[:63])


def read_names(scope: str) -> dict[tuple[int, int], str]:
    """Rule and identity names the datapath carries (for flows and counters)."""
    if not map_path(scope, "names").exists():
        return {}
    with open_map(scope, "names") as names:
        return {(k.kind, k.id): v.text.decode(errors="replace") for k, v in names.items()}


def rule_counters(scope: str) -> dict[int, tuple[int, int]]:
    """Rule -> (packets, bytes), summed over CPUs, for rules that saw traffic."""
    found = {}
    with open_map(scope, "stats") as stats:
        for rule, cells in stats.items():
            packets = sum(c.packets for c in cells)
            if packets:
                found[rule] = (packets, sum(c.bytes for c in cells))
    return found

"""The load balancer's maps: ctypes mirrors of bpf/lb_maps.h and the program set that uses them.

Keep these structures in step with the header (tests compare their sizes with the pinned maps').
"""

from __future__ import annotations

import ctypes
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from netplanx.system.bpf.loader import BpfSource
from netplanx.system.bpf.maps import BpfMap
from netplanx.system.bpf.sources import BPF_DIR

# Source ports of masqueraded flows: above the kernel's default ephemeral range (32768-60999), and reserved
# on the node (net.ipv4.ip_local_reserved_ports) so that its own connections never take one, whatever its
# ip_local_port_range. The datapath gets the same numbers as -D flags.
MASQ_PORTS = (61000, 65535)
RESERVED_PORTS = "net.ipv4.ip_local_reserved_ports"
LB = BpfSource("lb", BPF_DIR / "lb.c", BPF_DIR / "lb_maps.h",
               {"lb_ingress": "tc", "lb_egress": "tc", "lb_xdp": "xdp"},
               cflags=(f"-DLB_MASQ_PORT_MIN={MASQ_PORTS[0]}", f"-DLB_MASQ_PORT_MAX={MASQ_PORTS[1]}"))
AFFINITY_CLIENT_IP = 1
DIR_FORWARD, DIR_REPLY, DIR_MASQ_REPLY = 0, 1, 2
PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
PROTOCOL_NAMES = {number: name for name, number in PROTOCOLS.items()}
u8, u16, u32, u64 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64


class SvcKey(ctypes.Structure):
    _fields_ = [("vip", u32), ("port", u16), ("proto", u8), ("pad", u8)]


class SvcVal(ctypes.Structure):
    _fields_ = [("id", u32), ("count", u32), ("size", u32), ("flags", u32)]


class BackendVal(ctypes.Structure):
    _fields_ = [("addr", u32), ("port", u16), ("weight", u16), ("svc", u32)]


class CtKey(ctypes.Structure):
    _fields_ = [("src", u32), ("dst", u32), ("sport", u16), ("dport", u16), ("proto", u8), ("dir", u8),
                ("pad", u16)]


class CtVal(ctypes.Structure):
    _fields_ = [("addr", u32), ("port", u16), ("nat_port", u16), ("backend", u32), ("nat_addr", u32)]


class Masq(ctypes.Structure):
    _fields_ = [("addr", u32), ("flags", u32)]


class Stats(ctypes.Structure):
    _fields_ = [("packets", u64), ("bytes", u64)]


class Name(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 48)]


def addr_in(text: str) -> int:
    """An IPv4 address as the u32 the datapath stores (network byte order in memory)."""
    return int.from_bytes(ipaddress.IPv4Address(text).packed, "little")


def addr_out(value: int) -> str:
    return str(ipaddress.IPv4Address(value.to_bytes(4, "little")))


def port_in(port: int) -> int:
    return socket.htons(port)


def port_out(value: int) -> int:
    return socket.ntohs(value)


MAP_TYPES = {"lb_svc": (SvcKey, SvcVal), "lb_be": (u32, BackendVal), "lb_maglev": (u32, u32),
             "lb_ct": (CtKey, CtVal), "lb_stats": (u32, Stats), "lb_names": (u32, Name), "lb_masq": (u32, Masq)}


@dataclass
class LbMaps:
    """The pinned maps of one scope, open."""

    svc: BpfMap
    be: BpfMap
    maglev: BpfMap
    ct: BpfMap
    stats: BpfMap
    names: BpfMap
    masq: BpfMap

    @classmethod
    def open(cls, scope: str) -> LbMaps | None:
        """The scope's maps, or None when the load balancer was never loaded there."""
        folder = LB.map_dir(scope)
        if not (folder / "lb_svc").exists():
            return None
        return cls(**{name.removeprefix("lb_"): BpfMap.open(folder / name, *types)
                      for name, types in MAP_TYPES.items()})

    @staticmethod
    def folder(scope: str) -> Path:
        return LB.map_dir(scope)

    def close(self) -> None:
        for bpf_map in (self.svc, self.be, self.maglev, self.ct, self.stats, self.names, self.masq):
            bpf_map.close()

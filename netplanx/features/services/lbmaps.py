"""The load balancer's maps: ctypes mirrors of bpf/lb_maps.h and the program set that uses them.

Keep these structures in step with the header (tests compare their sizes with the pinned maps'). Every
address is 16 bytes, IPv4 stored IPv4-mapped (::ffff:a.b.c.d): ``addr_in``/``addr_out`` convert.
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
# on the node (net.ipv4.ip_local_reserved_ports, for IPv6 sockets too) so that its own connections never take
# one, whatever its ip_local_port_range. The datapath gets the same numbers as -D flags.
MASQ_PORTS = (61000, 65535)
RESERVED_PORTS = "net.ipv4.ip_local_reserved_ports"
# How long a conntrack entry lives without a packet in either direction, in seconds (Cilium's defaults): TCP,
# UDP, and a TCP flow after a FIN or RST.
CT_LIFETIMES = {"tcp": 21600, "udp": 60, "close": 10}
# The socket programs: cgroup hook -> function (bpf/lb.c)
SOCKET_HOOKS = {"connect4": "lb_connect4", "connect6": "lb_connect6", "sendmsg4": "lb_sendmsg4",
                "sendmsg6": "lb_sendmsg6", "recvmsg4": "lb_recvmsg4", "recvmsg6": "lb_recvmsg6",
                "getpeername4": "lb_peername4", "getpeername6": "lb_peername6", "sock_release": "lb_sock_release"}
LB = BpfSource("lb", BPF_DIR / "lb.c", BPF_DIR / "lb_maps.h",
               {"lb_ingress": "tc", "lb_egress": "tc", "lb_xdp": "xdp",
                **{function: hook for hook, function in SOCKET_HOOKS.items()}},
               headers=(BPF_DIR / "lb_packet.h",),
               cflags=(f"-DLB_MASQ_PORT_MIN={MASQ_PORTS[0]}", f"-DLB_MASQ_PORT_MAX={MASQ_PORTS[1]}",
                       *(f"-DLB_CT_{kind.upper()}_SECONDS={seconds}" for kind, seconds in CT_LIFETIMES.items())))
AFFINITY_CLIENT_IP = 1
CT_CLOSING = 1
DIR_FORWARD, DIR_REPLY, DIR_MASQ_REPLY = 0, 1, 2
PROTOCOLS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
PROTOCOL_NAMES = {number: name for name, number in PROTOCOLS.items()}
u8, u16, u32, u64 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64
Addr = u8 * 16


class SvcKey(ctypes.Structure):
    _fields_ = [("vip", Addr), ("port", u16), ("proto", u8), ("pad", u8)]


class SvcVal(ctypes.Structure):
    _fields_ = [("id", u32), ("count", u32), ("size", u32), ("flags", u32)]


class BackendVal(ctypes.Structure):
    _fields_ = [("addr", Addr), ("port", u16), ("weight", u16), ("svc", u32)]


class CtKey(ctypes.Structure):
    _fields_ = [("src", Addr), ("dst", Addr), ("sport", u16), ("dport", u16), ("proto", u8), ("dir", u8),
                ("pad", u16)]


class CtVal(ctypes.Structure):
    _fields_ = [("addr", Addr), ("nat_addr", Addr), ("seen", u64), ("port", u16), ("nat_port", u16),
                ("backend", u32), ("flags", u8), ("pad", u8 * 7)]


class Masq(ctypes.Structure):
    _fields_ = [("v4", Addr), ("v6", Addr)]


class Stats(ctypes.Structure):
    _fields_ = [("packets", u64), ("bytes", u64), ("sockets", u64)]


class Name(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 48), ("family", u8), ("pad", u8 * 3)]


class SkRevKey(ctypes.Structure):
    _fields_ = [("cookie", u64), ("addr", Addr), ("port", u16), ("pad", u16), ("pad2", u32)]


class SkRevVal(ctypes.Structure):
    _fields_ = [("vip", Addr), ("port", u16), ("pad", u16), ("svc", u32)]


class SkClient(ctypes.Structure):
    _fields_ = [("v4", Addr), ("v6", Addr)]


def addr_in(text: str | None) -> Addr:
    """An address as the datapath stores it (16 bytes, IPv4 as ::ffff:a.b.c.d); None: zero, none."""
    if text is None:
        return Addr()
    address = ipaddress.ip_address(text)
    packed = address.packed if address.version == 6 else b"\0" * 10 + b"\xff\xff" + address.packed
    return Addr.from_buffer_copy(packed)


def addr_out(value: Addr) -> str:
    """The text of a stored address."""
    address = ipaddress.IPv6Address(bytes(value))
    return str(address.ipv4_mapped or address)


def backend_key(address: str, port: int) -> str:
    """ADDRESS:PORT, an IPv6 address in brackets: how backends are named."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def split_backend(text: str) -> tuple[str, int]:
    address, _, port = text.rpartition(":")
    return address.strip("[]"), int(port)


def port_in(port: int) -> int:
    return socket.htons(port)


def port_out(value: int) -> int:
    return socket.ntohs(value)


MAP_TYPES = {"lb_svc": (SvcKey, SvcVal), "lb_be": (u32, BackendVal), "lb_maglev": (u32, u32),
             "lb_ct": (CtKey, CtVal), "lb_stats": (u32, Stats), "lb_names": (u32, Name), "lb_masq": (u32, Masq),
             "lb_sk_rev": (SkRevKey, SkRevVal), "lb_sk_client": (u64, SkClient)}


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
    sk_rev: BpfMap
    sk_client: BpfMap

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
        for name in MAP_TYPES:
            getattr(self, name.removeprefix("lb_")).close()

"""rtnetlink messages netx reads (links, addresses, rules, neighbours), decoded by table over the lean socket.

A message keeps its fixed header fields (``message["index"]``) and decodes only the attributes its table
names (``message.get_attr("IFLA_MTU")``), so reading a namespace needs neither pyroute2 nor its import
time. Link kinds decode their own ``IFLA_INFO_DATA`` with the table they pass in (``Table``).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from netplanx.system.netlink import NetlinkSocket, attr, attrs

Decoder = Callable[[memoryview], Any]
Table = Mapping[int, tuple[str, Decoder]]  # attribute type -> (name, how to decode its payload)

RTM_GETLINK, RTM_GETADDR, RTM_GETNEIGH, RTM_GETRULE, RTM_GETNSID = 18, 22, 30, 34, 90
IFINFOMSG = struct.Struct("=BxHiII")
IFADDRMSG = struct.Struct("=BBBBi")
NDMSG = struct.Struct("=BxxxiHBB")
FIB_RULE_HDR = struct.Struct("=BBBBBBBBI")
RTGENMSG = struct.Struct("=Bxxx")
NETNSA_NSID, NETNSA_FD = 1, 3


def u8(data: memoryview) -> int:
    return data[0]


def u16(data: memoryview) -> int:
    return int.from_bytes(data[:2], "little")


def be16(data: memoryview) -> int:
    return int.from_bytes(data[:2], "big")


def be32(data: memoryview) -> int:
    return int.from_bytes(data[:4], "big")


def u32(data: memoryview) -> int:
    return int.from_bytes(data[:4], "little")


def s32(data: memoryview) -> int:
    return int.from_bytes(data[:4], "little", signed=True)


def text(data: memoryview) -> str:
    return bytes(data).split(b"\0", 1)[0].decode(errors="replace")


def mac(data: memoryview) -> str:
    return ":".join(f"{b:02x}" for b in bytes(data))


def ip(data: memoryview) -> str:
    raw = bytes(data)
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def flag(_data: memoryview) -> bool:
    return True


def nested(table: Table) -> Decoder:
    return lambda data: Attrs.parse(data, 0, len(data), table)


class Attrs:
    """Decoded attributes by name (the ones the table names; others are skipped)."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, Any]):
        self.values = values

    @classmethod
    def parse(cls, data: memoryview, offset: int, end: int, table: Table) -> Attrs:
        values = {}
        for kind, start, stop in attrs(data, offset, end):
            entry = table.get(kind)
            if entry is not None:
                values[entry[0]] = entry[1](data[start:stop])
        return cls(values)

    def get_attr(self, name: str) -> Any:
        return self.values.get(name)


class Message(Attrs):
    """A message: its fixed header fields by name, and its decoded attributes."""

    __slots__ = ("header",)

    def __init__(self, header: dict[str, Any], values: dict[str, Any]):
        super().__init__(values)
        self.header = header

    def __getitem__(self, field: str) -> Any:
        return self.header[field]


LINK_INFO: Table = {1: ("IFLA_INFO_KIND", text)}
LINK: Table = {
    1: ("IFLA_ADDRESS", mac), 3: ("IFLA_IFNAME", text), 4: ("IFLA_MTU", u32), 5: ("IFLA_LINK", u32),
    10: ("IFLA_MASTER", u32), 20: ("IFLA_IFALIAS", text), 37: ("IFLA_LINK_NETNSID", s32),
}
ADDRESS: Table = {1: ("IFA_ADDRESS", ip), 2: ("IFA_LOCAL", ip), 8: ("IFA_FLAGS", u32), 11: ("IFA_PROTO", u8)}
NEIGHBOUR: Table = {1: ("NDA_DST", ip), 2: ("NDA_LLADDR", mac), 12: ("NDA_PROTOCOL", u8)}
RULE: Table = {
    1: ("FRA_DST", ip), 2: ("FRA_SRC", ip), 3: ("FRA_IIFNAME", text), 6: ("FRA_PRIORITY", u32),
    10: ("FRA_FWMARK", u32), 15: ("FRA_TABLE", u32), 16: ("FRA_FWMASK", u32), 17: ("FRA_OIFNAME", text),
    21: ("FRA_PROTOCOL", u8),
}


def links(nl: NetlinkSocket, info_data: Mapping[str, Table], index: int = 0) -> list[Message]:
    """Every link of the namespace (or the one at ``index``); ``IFLA_LINKINFO`` carries ``IFLA_INFO_KIND``
    and, for a kind ``info_data`` has a table for, its decoded ``IFLA_INFO_DATA``."""
    found = []
    body = IFINFOMSG.pack(0, 0, index, 0, 0)
    for _kind, payload in (nl.request(RTM_GETLINK, body) if index else nl.dump(RTM_GETLINK, body)):
        family, kind, number, flags, _change = IFINFOMSG.unpack_from(payload, 0)
        values: dict[str, Any] = {}
        for atype, start, stop in attrs(payload, IFINFOMSG.size, len(payload)):
            entry = LINK.get(atype)
            if entry is not None:
                values[entry[0]] = entry[1](payload[start:stop])
            elif atype == 18:  # IFLA_LINKINFO: the kind first, then its data
                values["IFLA_LINKINFO"] = _link_info(payload, start, stop, info_data)
        found.append(Message({"index": number, "flags": flags, "family": family, "ifi_type": kind}, values))
    return found


def _link_info(payload: memoryview, start: int, stop: int, info_data: Mapping[str, Table]) -> Attrs:
    info = Attrs.parse(payload, start, stop, LINK_INFO)
    table = info_data.get(info.get_attr("IFLA_INFO_KIND") or "")
    if table is not None:
        for atype, first, last in attrs(payload, start, stop):
            if atype == 2:  # IFLA_INFO_DATA
                info.values["IFLA_INFO_DATA"] = Attrs.parse(payload, first, last, table)
    return info


def addresses(nl: NetlinkSocket) -> Iterator[Message]:
    for _kind, payload in nl.dump(RTM_GETADDR, IFADDRMSG.pack(0, 0, 0, 0, 0)):
        family, prefixlen, flags, scope, index = IFADDRMSG.unpack_from(payload, 0)
        yield Message({"family": family, "prefixlen": prefixlen, "flags": flags, "scope": scope, "index": index},
                      Attrs.parse(payload, IFADDRMSG.size, len(payload), ADDRESS).values)


def neighbours(nl: NetlinkSocket, family: int) -> Iterator[Message]:
    for _kind, payload in nl.dump(RTM_GETNEIGH, NDMSG.pack(family, 0, 0, 0, 0)):
        found_family, index, state, flags, kind = NDMSG.unpack_from(payload, 0)
        yield Message({"family": found_family, "ifindex": index, "state": state, "flags": flags, "type": kind},
                      Attrs.parse(payload, NDMSG.size, len(payload), NEIGHBOUR).values)


def rules(nl: NetlinkSocket) -> Iterator[Message]:
    for _kind, payload in nl.dump(RTM_GETRULE, FIB_RULE_HDR.pack(0, 0, 0, 0, 0, 0, 0, 0, 0)):
        family, dst_len, src_len, _tos, table, _r1, _r2, action, _flags = FIB_RULE_HDR.unpack_from(payload, 0)
        yield Message({"family": family, "dst_len": dst_len, "src_len": src_len, "table": table, "action": action},
                      Attrs.parse(payload, FIB_RULE_HDR.size, len(payload), RULE).values)


def netnsid(nl: NetlinkSocket, fd: int) -> int | None:
    """The id this namespace gives the namespace open at ``fd`` (None: it has none)."""
    body = RTGENMSG.pack(0) + attr(NETNSA_FD, struct.pack("=I", fd))
    for _kind, payload in nl.request(RTM_GETNSID, body):
        for atype, start, _stop in attrs(payload, RTGENMSG.size, len(payload)):
            if atype == NETNSA_NSID:
                found = s32(payload[start:])
                return found if found >= 0 else None
    return None

"""rtnetlink messages netx reads (links, addresses, rules, neighbours), decoded by table over the lean socket.

A message keeps its fixed header fields (``message["index"]``) and decodes only the attributes its table
names (``message.get_attr("IFLA_MTU")``), so reading a namespace needs neither pyroute2 nor its import
time. Link kinds decode their own ``IFLA_INFO_DATA`` with the table they pass in (``Table``).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from netplanx.system.netlink import ATTR, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS, NetlinkSocket, attr, attrs

Decoder = Callable[[memoryview], Any]
Table = Mapping[int, tuple[str, Decoder]]  # attribute type -> (name, how to decode its payload)

RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE, RTM_GETNEIGH, RTM_GETRULE, RTM_GETNSID = 18, 22, 26, 30, 34, 90
RTMSG = struct.Struct("=BBBBBBBBI")
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
    """An address as Python's ipaddress writes it (the spec's form): inet_ntop writes an IPv6 address with
    96 leading zero bits as ::a.b.c.d (a sit tunnel's own address), ipaddress in hex."""
    raw = bytes(data)
    text = socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)
    return str(ipaddress.IPv6Address(raw)) if "." in text and len(raw) == 16 else text


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
        return cls(_decoded(data, offset, end, table))

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


RTM_NEWLINK, RTM_DELLINK = 16, 17
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD, IFLA_IFALIAS = 1, 3, 4, 10, 18, 28, 20
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFF_UP = 0x1


def link_body(fields: Mapping[int, bytes], index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    """An ifinfomsg and its attributes (type -> encoded payload), for link requests on the lean socket."""
    return IFINFOMSG.pack(0, 0, index, flags, change) + b"".join(attr(kind, value) for kind, value in fields.items())


def asciiz(value: str) -> bytes:
    return value.encode() + b"\0"


LINK_INFO: Table = {1: ("IFLA_INFO_KIND", text)}
LINK: Table = {
    1: ("IFLA_ADDRESS", mac), 3: ("IFLA_IFNAME", text), 4: ("IFLA_MTU", u32), 5: ("IFLA_LINK", u32),
    10: ("IFLA_MASTER", u32), 20: ("IFLA_IFALIAS", text), 37: ("IFLA_LINK_NETNSID", s32),
}
ADDRESS: Table = {1: ("IFA_ADDRESS", ip), 2: ("IFA_LOCAL", ip), 8: ("IFA_FLAGS", u32), 11: ("IFA_PROTO", u8)}
NEIGHBOUR: Table = {1: ("NDA_DST", ip), 2: ("NDA_LLADDR", mac), 12: ("NDA_PROTOCOL", u8)}
ROUTE: Table = {1: ("RTA_DST", ip), 4: ("RTA_OIF", u32), 5: ("RTA_GATEWAY", ip), 15: ("RTA_TABLE", u32)}
RULE: Table = {
    1: ("FRA_DST", ip), 2: ("FRA_SRC", ip), 3: ("FRA_IIFNAME", text), 6: ("FRA_PRIORITY", u32),
    10: ("FRA_FWMARK", u32), 15: ("FRA_TABLE", u32), 16: ("FRA_FWMASK", u32), 17: ("FRA_OIFNAME", text),
    21: ("FRA_PROTOCOL", u8),
}


def _decoded(data: memoryview, offset: int, end: int, table: Table) -> dict[str, Any]:
    """The attributes between ``offset`` and ``end`` that ``table`` names, decoded (the loop written out: it
    runs for every attribute of every message of a dump)."""
    values = {}
    unpack = ATTR.unpack_from
    while offset + 4 <= end:
        length, kind = unpack(data, offset)
        if length < 4:
            break
        entry = table.get(kind & 0x3FFF)
        if entry is not None:
            values[entry[0]] = entry[1](data[offset + 4:offset + length])
        offset += (length + 3) & ~3
    return values


def links(nl: NetlinkSocket, info_data: Mapping[str, Table], index: int = 0) -> list[Message]:
    """Every link of the namespace (or the one at ``index``); ``IFLA_LINKINFO`` carries ``IFLA_INFO_KIND``
    and, for a kind ``info_data`` has a table for, its decoded ``IFLA_INFO_DATA``."""
    found = []
    table = {**LINK, IFLA_LINKINFO: ("IFLA_LINKINFO", lambda data: _link_info(data, info_data))}
    body = IFINFOMSG.pack(0, 0, index, 0, 0) + attr(IFLA_EXT_MASK, struct.pack("=I", RTEXT_FILTER_SKIP_STATS))
    for payload in (nl.request(RTM_GETLINK, body) if index else nl.dump(RTM_GETLINK, body)):
        family, kind, number, flags, _change = IFINFOMSG.unpack_from(payload, 0)
        values = _decoded(payload, IFINFOMSG.size, len(payload), table)
        found.append(Message({"index": number, "flags": flags, "family": family, "ifi_type": kind}, values))
    return found


def _link_info(data: memoryview, info_data: Mapping[str, Table]) -> Attrs:
    """IFLA_LINKINFO: the kind first, then, for a kind ``info_data`` has a table for, its decoded data."""
    info = Attrs.parse(data, 0, len(data), LINK_INFO)
    table = info_data.get(info.get_attr("IFLA_INFO_KIND") or "")
    if table is not None:
        for atype, first, last in attrs(data, 0, len(data)):
            if atype == IFLA_INFO_DATA:
                info.values["IFLA_INFO_DATA"] = Attrs.parse(data, first, last, table)
    return info


def addresses(nl: NetlinkSocket) -> Iterator[Message]:
    for payload in nl.dump(RTM_GETADDR, IFADDRMSG.pack(0, 0, 0, 0, 0)):
        family, prefixlen, flags, scope, index = IFADDRMSG.unpack_from(payload, 0)
        yield Message({"family": family, "prefixlen": prefixlen, "flags": flags, "scope": scope, "index": index},
                      Attrs.parse(payload, IFADDRMSG.size, len(payload), ADDRESS).values)


def neighbours(nl: NetlinkSocket, family: int) -> Iterator[Message]:
    for payload in nl.dump(RTM_GETNEIGH, NDMSG.pack(family, 0, 0, 0, 0)):
        found_family, index, state, flags, kind = NDMSG.unpack_from(payload, 0)
        yield Message({"family": found_family, "ifindex": index, "state": state, "flags": flags, "type": kind},
                      Attrs.parse(payload, NDMSG.size, len(payload), NEIGHBOUR).values)


def rules(nl: NetlinkSocket) -> Iterator[Message]:
    for payload in nl.dump(RTM_GETRULE, FIB_RULE_HDR.pack(0, 0, 0, 0, 0, 0, 0, 0, 0)):
        family, dst_len, src_len, _tos, table, _r1, _r2, action, _flags = FIB_RULE_HDR.unpack_from(payload, 0)
        yield Message({"family": family, "dst_len": dst_len, "src_len": src_len, "table": table, "action": action},
                      Attrs.parse(payload, FIB_RULE_HDR.size, len(payload), RULE).values)


def routes(nl: NetlinkSocket, family: int) -> Iterator[Message]:
    """The routes of a family with the header fields and the attributes of ROUTE (small reads: the routes
    feature decodes its own, faster, for tables of 10,000s)."""
    for payload in nl.dump(RTM_GETROUTE, RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)):
        found_family, dst_len, _src_len, _tos, table, protocol, scope, kind, _flags = RTMSG.unpack_from(payload, 0)
        values = Attrs.parse(payload, RTMSG.size, len(payload), ROUTE).values
        yield Message({"family": found_family, "dst_len": dst_len, "table": values.pop("RTA_TABLE", table),
                       "protocol": protocol, "scope": scope, "type": kind}, values)


def netnsid(nl: NetlinkSocket, fd: int) -> int | None:
    """The id this namespace gives the namespace open at ``fd`` (None: it has none)."""
    body = RTGENMSG.pack(0) + attr(NETNSA_FD, struct.pack("=I", fd))
    for payload in nl.request(RTM_GETNSID, body):
        for atype, start, _stop in attrs(payload, RTGENMSG.size, len(payload)):
            if atype == NETNSA_NSID:
                found = s32(payload[start:])
                return found if found >= 0 else None
    return None

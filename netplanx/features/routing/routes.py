"""Routes: read and written with the lean netlink socket, in batches (the kind that reaches 10,000s)."""

from __future__ import annotations

import functools
import ipaddress
import socket
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple

from netplanx.addressing import parse_ip
from netplanx.engine.resource import Dependency, Query, Resource
from netplanx.features.base import KernelType, gone_is_done
from netplanx.system.names import (
    NETX_BGP_PROTOCOL,
    NETX_PROTOCOL,
    ROUTE_TYPE_NAMES,
    ROUTE_TYPES,
    SCOPE_NAMES,
    SCOPES,
    live_meta,
    table_name,
)
from netplanx.system.netlink import (
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REPLACE,
    NetlinkError,
    NetlinkSocket,
    attr,
    attrs,
    dump_ended,
)

try:  # built at install (setup.py); pip leaves it out where no C compiler is, and _decode_routes serves instead
    from netplanx.features.routing import _route_dump
except ImportError:
    _route_dump = None

RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTMSG = struct.Struct("=BBBBBBBBI")
ATTR_HEADER = struct.Struct("=HH")
U32 = struct.Struct("=I")
RTNEXTHOP = struct.Struct("=HBBi")
HEAD = struct.Struct("=BBBBBBBBIHHI")  # rtmsg and its RTA_TABLE attribute
U32_ATTR, S32_ATTR = struct.Struct("=HHI"), struct.Struct("=HHi")
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_PREFSRC, RTA_MULTIPATH, RTA_TABLE, RTA_VIA = 1, 4, 5, 6, 7, 9, 15, 18
RTA_ENCAP_TYPE, RTA_ENCAP = 21, 22
ROUTE_DUMP = RTMSG.pack(0, 0, 0, 0, 0, 0, 0, 0, 0)  # every route of every table and family
LWTUNNEL_ENCAP_IP = 2
LWTUNNEL_IP_ID, LWTUNNEL_IP_DST = 1, 2
RTNH_F_ONLINK = 4
NLA_F_NESTED = 0x8000
RTM_F_CLONED = 0x200
PROTO_KERNEL = 2
SKIPPED_PROTOCOLS = (PROTO_KERNEL, NETX_BGP_PROTOCOL)  # the kernel's own; those 'netx bgp sync' follows from BGP
TABLE_LOCAL = 255
DEFAULT_METRIC = {4: 0, 6: 1024}
FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}
VERSION = {socket.AF_INET: 4, socket.AF_INET6: 6}


def route_address(table: int, to: str, metric: int, family: int) -> str:
    """``route.main.10.2.0.0/24``, with ``@METRIC`` when the metric is not the family's default."""
    suffix = "" if metric == DEFAULT_METRIC[family] else f"@{metric}"
    return f"route.{table_name(table)}.{to}{suffix}"


def default_scope(family: int, kind: str, via: str | None, nexthops: Sequence[Mapping[str, Any]]) -> str:
    """The scope iproute2 (and so every operator's habit) gives a route that does not name one."""
    if family == 4 and kind == "local":
        return "host"
    if family == 4 and kind == "unicast" and via is None and not any(h.get("via") for h in nexthops):
        return "link"
    return "global"


def route_resource(*, table: int, to: str, metric: int | None, kind: str, via: str | None, dev: str | None,
                   src: str | None, scope: str | None, onlink: bool, nexthops: list[dict[str, Any]],
                   encap: dict[str, Any] | None = None, owned: bool = True,
                   protocol: int | None = None) -> Resource:
    """Build a route resource in its canonical form (shared by the spec compiler and the reader)."""
    family = 6 if ":" in to else 4
    metric = DEFAULT_METRIC[family] if metric is None else metric
    if nexthops:
        nexthops = sorted(nexthops, key=lambda h: (h.get("via") or "", h.get("dev") or ""))
    attrs_ = {
        "table": table, "to": to, "metric": metric, "type": kind, "via": via, "dev": dev, "src": src,
        "scope": scope or default_scope(family, kind, via, nexthops), "onlink": onlink, "nexthops": nexthops,
        "encap": encap,
    }
    return Resource("route", route_address(table, to, metric, family), attrs_, owned, live_meta(protocol))


class RouteType(KernelType):
    kind = "route"
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless", "update": "hitless", "replace": "route gap", "delete": "route gap",
    }

    def differs(self, desired: Resource, live: Resource) -> list[str]:
        """As the base, except that a gateway without dev lets the kernel choose the device."""
        want, have = desired.attrs, live.attrs
        if want.get("dev") is None and want.get("via") and have.get("dev") is not None:
            have = {**have, "dev": None}
        if want == have:
            return []  # the common case, compared at C speed
        changed = [key for key, value in want.items() if have.get(key) != value]
        if "nexthops" in changed and _hops_match(want["nexthops"], have.get("nexthops", [])):
            changed.remove("nexthops")
        return changed

    def forces_replacement(self, desired: Resource, live: Resource, changed: Sequence[str]) -> list[str]:
        """IPv6 checks an onlink gateway against the routing table, where the route being replaced still
        sends it through the old device: such a change must delete the old route first."""
        if ":" in desired.attrs["to"] and desired.attrs.get("onlink"):
            return [key for key in changed if key in ("dev", "onlink")]
        return []

    def dependencies(self, resource: Resource) -> Sequence[Dependency]:
        """Its devices, and for each gateway the addresses that make it reachable: the kernel refuses the
        route before one exists, and removes it when the last one goes."""
        a = resource.attrs
        hops = a.get("nexthops")
        if not hops:  # the common case: one device, one gateway, shared by many routes
            return _path_dependencies(a.get("dev"), a.get("via"), bool(a.get("onlink")))
        devs = {a.get("dev")} | {h.get("dev") for h in hops}
        deps = [Dependency(f"link.{dev}") for dev in sorted(d for d in devs if d)]
        if not a.get("onlink"):
            pairs = [(a.get("via"), a.get("dev"))] + [(h.get("via"), h.get("dev")) for h in hops]
            deps += [Dependency(kind="address", matches=_covering(via, dev)) for via, dev in pairs
                     if via and not _link_local(via)]
        return deps

    def read(self, query: Query) -> list[Resource]:
        names = self.ctx.link_names()
        if _route_dump is None:
            return _decode_routes(self.ctx.nl.dump(RTM_GETROUTE, ROUTE_DUMP), names)
        return _read_routes(self.ctx.nl, names)

    def create(self, resources: Sequence[Resource]) -> list[Exception | None]:
        indexes = self._indexes()
        return self._send(resources, lambda r: (RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, _encode(r, indexes)))

    def update(self, pairs: Sequence[tuple[Resource, Resource]]) -> list[Exception | None]:
        indexes = self._indexes()
        return self._send([after for _before, after in pairs],
                          lambda r: (RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, _encode(r, indexes)))

    def delete(self, resources: Sequence[Resource]) -> list[Exception | None]:
        return [gone_is_done(r) for r in self._send(resources, lambda r: (RTM_DELROUTE, 0, _encode_key(r)))]

    def _indexes(self) -> dict[str, int]:
        return {name: index for index, name in self.ctx.link_names().items()}


@functools.lru_cache(maxsize=4096)
def _path_dependencies(dev: str | None, via: str | None, onlink: bool) -> tuple[Dependency, ...]:
    """The dependencies of a route with one path: its device, and the addresses that cover its gateway."""
    deps = (Dependency(f"link.{dev}"),) if dev else ()
    if via and not onlink and not _link_local(via):
        deps += (Dependency(kind="address", matches=_covering(via, dev)),)
    return deps


@functools.lru_cache(maxsize=4096)
def _network_of(address: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_interface(address).network


@functools.lru_cache(maxsize=4096)
def _link_local(via: str) -> bool:
    return ipaddress.ip_address(via).is_link_local


@functools.lru_cache(maxsize=4096)
def _covering(via: str, dev: str | None) -> Callable[[Resource], bool]:
    """Whether an address resource makes ``via`` reachable (on ``dev``, when the route names one); one
    predicate per gateway and device, so the planner resolves it once for every route through them."""
    gateway = ipaddress.ip_address(via)

    def covers(address: Resource) -> bool:
        return (dev is None or address.attrs["dev"] == dev) and gateway in _network_of(address.attrs["address"])
    return covers


def _hops_match(want: Sequence[Mapping[str, Any]], have: Sequence[Mapping[str, Any]]) -> bool:
    if len(want) != len(have):
        return False
    return all(w.get("via") == h.get("via") and w["weight"] == h["weight"]
               and ((w.get("dev") is None and w.get("via")) or w.get("dev") == h.get("dev"))
               for w, h in zip(want, have, strict=True))


def _ip_text(data: memoryview, start: int, stop: int) -> str:
    raw = bytes(data[start:stop])
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def _decode(payload: bytes | memoryview, names: Mapping[int, str]) -> Resource | None:
    """One RTM_NEWROUTE message to a resource; None for what netx never manages (kernel, local, cache).

    The attribute loop and the resource's canonical form (as ``route_resource`` builds it) are written out
    (no generator, no copies, no keyword calls): this runs once per route on every plan and every verify.
    """
    family, dst_len, _src_len, _tos, table, protocol, scope, kind, flags = RTMSG.unpack_from(payload, 0)
    if family not in VERSION or kind not in ROUTE_TYPE_NAMES or protocol in SKIPPED_PROTOCOLS or flags & RTM_F_CLONED:
        return None
    dst = via = src = encap = None
    oif = metric = 0
    nexthops: list[dict[str, Any]] = []
    offset, end = RTMSG.size, len(payload)
    unpack_attr, unpack_u32, ntop = ATTR_HEADER.unpack_from, U32.unpack_from, socket.inet_ntop
    while offset + 4 <= end:
        length, atype = unpack_attr(payload, offset)
        if length < 4:
            break
        start, stop = offset + 4, offset + length
        if atype == RTA_DST:
            dst = ntop(family, payload[start:stop])
        elif atype == RTA_GATEWAY:
            via = ntop(family, payload[start:stop])
        elif atype == RTA_OIF:
            oif = unpack_u32(payload, start)[0]
        elif atype == RTA_PRIORITY:
            metric = unpack_u32(payload, start)[0]
        elif atype == RTA_TABLE:
            table = unpack_u32(payload, start)[0]
        elif atype == RTA_PREFSRC:
            src = ntop(family, payload[start:stop])
        elif atype == RTA_VIA:
            via = _ip_text(payload, start + 2, stop)
        elif atype == RTA_MULTIPATH:
            nexthops = _decode_multipath(payload, start, stop, names)
        elif atype == RTA_ENCAP:
            encap = _decode_encap(payload, start, stop)
        offset += (length + 3) & ~3
    if table == TABLE_LOCAL:
        return None
    version = VERSION[family]
    if version == 6 and dst is not None and dst_len >= 8 and dst.startswith("ff"):
        return None  # kernel multicast routes
    to = f"{dst or ('0.0.0.0' if version == 4 else '::')}/{dst_len}"
    route_kind = ROUTE_TYPE_NAMES[kind]
    dev = names.get(oif) if route_kind in ("unicast", "local") and not nexthops else None
    if nexthops:
        nexthops = sorted(nexthops, key=lambda h: (h.get("via") or "", h.get("dev") or ""))
    scope_name = (SCOPE_NAMES.get(scope) or str(scope)) if version == 4 else "global"
    attrs_ = {"table": table, "to": to, "metric": metric, "type": route_kind, "via": via, "dev": dev, "src": src,
              "scope": scope_name, "onlink": bool(flags & RTNH_F_ONLINK), "nexthops": nexthops, "encap": encap}
    suffix = "" if metric == DEFAULT_METRIC[version] else f"@{metric}"
    return Resource("route", f"route.{table_name(table)}.{to}{suffix}", attrs_, protocol == NETX_PROTOCOL,
                    {"protocol": protocol})


IPV4_DST_AT = RTMSG.size + 8  # where the kernel puts an IPv4 route's RTA_DST: after RTA_TABLE (fib_dump_info)
IPV4_DST = ATTR_HEADER.pack(8, RTA_DST)


class _Shape(NamedTuple):
    """What IPv4 routes that differ only in their destination share: all of a resource but ``to``."""

    attrs: dict[str, Any]
    owned: bool
    meta: Mapping[str, Any]
    prefix: str  # "route.TABLE."
    length: str  # "/LEN"
    suffix: str  # "@METRIC" or ""


def _decode_routes(messages: Iterable[memoryview], names: Mapping[int, str]) -> list[Resource]:
    """``_decode`` of every message of a dump, faster for the common case of many IPv4 routes that differ only in
    their destination.

    The message without its destination's four bytes (its shape) is decoded once; each route of that shape is
    the shape's resource with its own destination (None: the shape is skipped, e.g. the local table; False: it
    has nexthops or encap, which resources do not share, so each is decoded in full). The kernel puts an IPv4
    route's RTA_DST right after RTA_TABLE (``fib_dump_info``); a message laid out otherwise is decoded in full.
    Routes of one shape share one read-only ``meta``. This runs once per route on every plan and every verify:
    one loop, everything in local variables, and a message of the previous message's shape (the common case:
    a table's routes come in a row) is recognised by comparing bytes in place, without building its shape.
    _route_dump.c does the same from the dump's datagrams (``_read_routes``); this is its reference, and the read
    where it was not built.
    """
    at, dst_attr, inet, ntop, new = IPV4_DST_AT, IPV4_DST, socket.AF_INET, socket.inet_ntop, tuple.__new__
    shapes: dict[bytes, _Shape | bool | None] = {}
    routes = []
    head = tail = b"-"  # the previous message's shape: its bytes before and after the destination
    model: _Shape | bool | None = None
    for payload in messages:
        raw = payload.tobytes()  # bytes: fewer objects made than slicing the view
        if raw[0] != inet or not raw.startswith(dst_attr, at):
            route = _decode(payload, names)
        else:
            if len(raw) != at + 8 + len(tail) or not raw.startswith(head) or not raw.endswith(tail):
                head, tail = raw[:at + 4], raw[at + 8:]
                model = shapes.get(head + tail, True)
                if model is True:
                    route = _decode(payload, names)
                    model = shapes[head + tail] = _shape_of(route)
                    if route is not None:
                        routes.append(route)
                    continue
            if model is None:
                continue
            if model is False:
                route = _decode(payload, names)
            else:
                to = ntop(inet, raw[at + 4:at + 8]) + model.length
                attrs = model.attrs.copy()
                attrs["to"] = to
                routes.append(new(Resource, ("route", model.prefix + to + model.suffix, attrs, model.owned,
                                             model.meta)))
                continue
        if route is not None:
            routes.append(route)
    return routes


def _read_routes(nl: NetlinkSocket, names: Mapping[int, str]) -> list[Resource]:
    """``_decode_routes`` of a route dump, done in C from the dump's datagrams (_route_dump.c: the framing, the
    shapes, and each route of a shape built without a Python call; 10,000 routes in ~5 ms instead of ~17). A dump
    a change interrupted is read again from scratch, the routes of the interrupted one left out."""
    def decode(payload: bytes) -> Resource | None:
        return _decode(payload, names)

    while True:
        reader = _route_dump.Reader(decode, _shape_of, Resource, _Shape)
        routes: list[Resource] = []
        seq, datagrams = nl.datagrams(RTM_GETROUTE, ROUTE_DUMP)
        for datagram in datagrams:
            end = reader.feed(datagram, seq, routes)
            if end is True or (end is not None and dump_ended(*end)):
                return routes
            if end is not None:
                break  # interrupted: dump again


def _shape_of(route: Resource | None) -> _Shape | bool | None:
    """The shape a decoded IPv4 route gives the routes like it (None: skipped; False: decoded one by one)."""
    if route is None:
        return None
    if route.attrs["nexthops"] or route.attrs["encap"]:
        return False
    to = route.attrs["to"]
    prefix, _, suffix = route.address.partition(to)
    return _Shape(route.attrs, route.owned, MappingProxyType(dict(route.meta)), prefix, to[to.index("/"):], suffix)


def _decode_encap(payload: memoryview, offset: int, end: int) -> dict[str, Any] | None:
    """IP tunnel metadata of a route (``encap ip id VNI dst ADDRESS``), for collect-metadata devices."""
    encap: dict[str, Any] = {"type": "ip", "id": 0, "dst": None}
    for atype, start, stop in attrs(payload, offset, end):
        if atype == LWTUNNEL_IP_ID:
            encap["id"] = struct.unpack_from(">Q", payload, start)[0]
        elif atype == LWTUNNEL_IP_DST:
            encap["dst"] = _ip_text(payload, start, stop)
    return encap


def _decode_multipath(payload: memoryview, offset: int, end: int, names: Mapping[int, str]) -> list[dict[str, Any]]:
    hops = []
    while offset + RTNEXTHOP.size <= end:
        length, _flags, weight, index = RTNEXTHOP.unpack_from(payload, offset)
        via = None
        for atype, start, stop in attrs(payload, offset + RTNEXTHOP.size, offset + length):
            if atype == RTA_GATEWAY:
                via = _ip_text(payload, start, stop)
            elif atype == RTA_VIA:
                via = _ip_text(payload, start + 2, stop)
        hops.append({"via": via, "dev": names.get(index), "weight": weight + 1})
        offset += (length + 3) & ~3
    return hops


def _packed(text: str) -> bytes:
    return parse_ip(text)[1]


@functools.lru_cache(maxsize=4096)
def _gateway(via: str) -> bytes:
    """The RTA_GATEWAY attribute of ``via`` (routes share a few gateways: encoded once each)."""
    packed = _packed(via)
    return ATTR_HEADER.pack(4 + len(packed), RTA_GATEWAY) + packed


def _header(route: Resource, scope: int, kind: int, protocol: int, flags: int = 0) -> bytes:
    """The rtmsg and the attributes that name a route: table, destination, metric (packed with few calls:
    this runs once per route written)."""
    a = route.attrs
    address, _, length = a["to"].partition("/")
    version, packed = parse_ip(address)
    prefixlen = int(length)
    table = a["table"]
    head = HEAD.pack(FAMILY[version], prefixlen, 0, 0, table if table < 256 else 252, protocol, scope, kind, flags,
                     8, RTA_TABLE, table)
    metric = U32_ATTR.pack(8, RTA_PRIORITY, a["metric"])
    if prefixlen:
        return b"".join((head, ATTR_HEADER.pack(4 + len(packed), RTA_DST), packed, metric))
    return head + metric


def _encode_key(route: Resource) -> bytes:
    """Just enough to delete this route, and only if it still has the protocol we saw."""
    return _header(route, SCOPES["nowhere"], 0, route.meta.get("protocol", NETX_PROTOCOL) if not route.owned
                   else NETX_PROTOCOL)


def _encode(route: Resource, indexes: Mapping[str, int]) -> bytes:
    a = route.attrs
    protocol = NETX_PROTOCOL if route.owned else route.meta.get("protocol", NETX_PROTOCOL)
    body = _header(route, SCOPES.get(a["scope"], 0), ROUTE_TYPES[a["type"]], protocol,
                   RTNH_F_ONLINK if a["onlink"] else 0)
    if a["dev"]:
        body += S32_ATTR.pack(8, RTA_OIF, _index(indexes, a["dev"]))
    if a["via"]:
        body += _gateway(a["via"])
    if a["src"]:
        body += attr(RTA_PREFSRC, _packed(a["src"]))
    if a.get("encap"):
        inner = attr(LWTUNNEL_IP_ID, struct.pack(">Q", a["encap"]["id"]))
        if a["encap"]["dst"]:
            inner += attr(LWTUNNEL_IP_DST, _packed(a["encap"]["dst"]))
        body += attr(RTA_ENCAP_TYPE, struct.pack("=H", LWTUNNEL_ENCAP_IP))
        body += attr(RTA_ENCAP | NLA_F_NESTED, inner)
    if a["nexthops"]:
        hops = b""
        for hop in a["nexthops"]:
            inner = attr(RTA_GATEWAY, _packed(hop["via"])) if hop.get("via") else b""
            index = _index(indexes, hop["dev"]) if hop.get("dev") else 0
            flags = RTNH_F_ONLINK if a["onlink"] else 0
            hops += RTNEXTHOP.pack(RTNEXTHOP.size + len(inner), flags, hop["weight"] - 1, index) + inner
        body += attr(RTA_MULTIPATH, hops)
    return body


def _index(indexes: Mapping[str, int], name: str) -> int:
    if name not in indexes:
        raise NetlinkError(19, f"No such device: {name}")
    return indexes[name]

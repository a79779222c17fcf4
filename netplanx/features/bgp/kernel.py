"""The kernel side of ``netx bgp sync``: its routes (protocol netx-bgp, 79) in one table, and only those.

No write can replace or remove a route of another protocol. A route is added with NLM_F_EXCL: the kernel
refuses it when any route has the same table, destination and metric (the sync uses the kernel's default
metric: 0 for IPv4, 1024 for IPv6), and the sync holds that prefix back. A new next hop deletes the sync's
own route and adds the new one the same way (a replace would take whichever route holds the place). A
deletion names protocol 79, which the kernel matches, so it never finds another's route.
"""

from __future__ import annotations

import errno
from typing import NamedTuple

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from netplanx.system.names import NETX_BGP_PROTOCOL

PROTOCOL_NAMES = {2: "kernel", 3: "boot", 4: "static", 12: "bird", 16: "dhcp", 42: "babel", 78: "netx", 186: "bgp",
                  188: "ospf"}
DEFAULT_METRIC = {2: 0, 10: 1024}  # the kernel's, by address family: the sync's routes have it


class Learned(NamedTuple):
    prefix: str
    next_hop: str


class Occupied(Exception):
    """Another protocol's route has the place (table, destination, metric); the text says which."""


class KernelRoutes:
    """The routes of one table that carry the netx-bgp protocol: read, added, moved and removed."""

    def __init__(self, ipr: IPRoute, table: int):
        self.ipr = ipr
        self.table = table

    def read(self) -> dict[str, str]:
        """Destination -> gateway of each route of the sync's protocol in its table."""
        found = {}
        for family in (2, 10):
            for msg in self.ipr.get_routes(family=family, table=self.table, proto=NETX_BGP_PROTOCOL):
                if msg["proto"] != NETX_BGP_PROTOCOL:
                    continue
                dst = msg.get_attr("RTA_DST") or ("0.0.0.0" if family == 2 else "::")
                found[f"{dst}/{msg['dst_len']}"] = msg.get_attr("RTA_GATEWAY") or ""
        return found

    def add(self, route: Learned) -> None:
        """Add ``route``; Occupied when a route of another protocol has its place (one of the sync's own
        there, with another next hop, is moved)."""
        try:
            self.ipr.route("add", dst=route.prefix, gateway=route.next_hop, table=self.table, proto=NETX_BGP_PROTOCOL)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
            protocol, occupant = self._occupant(route.prefix)
            if protocol != NETX_BGP_PROTOCOL:
                raise Occupied(occupant) from None
            self.remove(route.prefix)
            self.add(route)

    def move(self, route: Learned, next_hop: str) -> None:
        """Give the sync's route to ``route.prefix`` (now via ``next_hop``) the route's next hop."""
        self.remove(route.prefix, next_hop)
        self.add(route)

    def remove(self, prefix: str, next_hop: str | None = None) -> None:
        """Delete the sync's route to ``prefix`` (via ``next_hop``, when given); gone already is fine."""
        try:
            self.ipr.route("del", dst=prefix, table=self.table, proto=NETX_BGP_PROTOCOL,
                           **({"gateway": next_hop} if next_hop else {}))
        except NetlinkError as exc:
            if exc.code != errno.ESRCH:
                raise

    def _occupant(self, prefix: str) -> tuple[int | None, str]:
        """The protocol of the route that holds ``prefix``'s place, and its description ('proto kernel')."""
        family = 10 if ":" in prefix else 2
        network, length = prefix.split("/")
        for msg in self.ipr.get_routes(family=family, table=self.table):
            default = "0.0.0.0" if family == 2 else "::"
            if ((msg.get_attr("RTA_DST") or default, msg["dst_len"]) == (network, int(length))
                    and (msg.get_attr("RTA_PRIORITY") or 0) == DEFAULT_METRIC[family]):
                via = msg.get_attr("RTA_GATEWAY")
                return msg["proto"], f"proto {PROTOCOL_NAMES.get(msg['proto'], msg['proto'])}" + (
                    f" via {via}" if via else "")
        return None, "a route that is gone now"

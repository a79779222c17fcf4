"""``netx bgp sync``: mirror the routes gobgpd learns from its peers into the kernel.

gobgpd cannot install routes here (its zebra client crashes against Debian's FRR), so netx does: it
follows gobgpd's best paths (a WatchEvent whose first message is the whole table) and writes each
learned best path as a kernel route with protocol ``netx-bgp`` (79). It owns exactly the routes with that
protocol in its table: on start it reconciles them with gobgpd's table (adds, replaces and deletes), then
applies every change as it arrives. Paths gobgpd originates itself (netx's advertisements) are not routes.
When gobgpd goes away the routes stay (forwarding goes on) and the sync reconnects and reconciles again.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from netplanx.errors import NetxError
from netplanx.features.bgp import codec
from netplanx.system.gobgp.client import GobgpClient
from netplanx.system.names import NETX_BGP_PROTOCOL

log = logging.getLogger("netx.bgp.sync")
RECONNECT_DELAY = 1.0  # seconds between attempts while gobgpd is away


class Learned(NamedTuple):
    prefix: str
    next_hop: str


class KernelRoutes:
    """The routes of one table that carry the netx-bgp protocol: read, set and removed."""

    def __init__(self, ipr: IPRoute, table: int):
        self.ipr = ipr
        self.table = table

    def read(self) -> dict[str, str]:
        found = {}
        for family in (2, 10):
            for msg in self.ipr.get_routes(family=family, table=self.table, proto=NETX_BGP_PROTOCOL):
                if msg["proto"] != NETX_BGP_PROTOCOL:
                    continue
                dst = msg.get_attr("RTA_DST") or ("0.0.0.0" if family == 2 else "::")
                found[f"{dst}/{msg['dst_len']}"] = msg.get_attr("RTA_GATEWAY") or ""
        return found

    def set(self, route: Learned) -> None:
        self.ipr.route("replace", dst=route.prefix, gateway=route.next_hop, table=self.table,
                       proto=NETX_BGP_PROTOCOL)

    def remove(self, prefix: str) -> None:
        try:
            self.ipr.route("del", dst=prefix, table=self.table, proto=NETX_BGP_PROTOCOL)
        except NetlinkError as exc:
            if exc.code != errno.ESRCH:
                raise


def learned(paths: Iterable[Any]) -> tuple[dict[str, Learned], set[str]]:
    """The learned best paths among ``paths`` (by prefix), and the prefixes that lost their learned path."""
    best: dict[str, Learned] = {}
    gone: set[str] = set()
    for path in paths:
        view = codec.path_view(path)
        if view is None:
            continue
        usable = (not view.withdrawn and view.neighbour is not None and view.next_hop is not None
                  and ipaddress.ip_address(view.next_hop).version == ipaddress.ip_network(view.prefix).version)
        if usable:
            best[view.prefix] = Learned(view.prefix, view.next_hop)
            gone.discard(view.prefix)
        else:
            gone.add(view.prefix)
            best.pop(view.prefix, None)
    return best, gone


class RouteSync:
    """Keeps ``routes`` equal to the learned best paths of the gobgpd behind ``client``."""

    def __init__(self, client: GobgpClient, routes: KernelRoutes, report: Callable[[str], None] = log.info):
        self.client = client
        self.routes = routes
        self.report = report
        self.installed: dict[str, str] = {}

    def reconcile(self, paths: Iterable[Any]) -> None:
        """Make the kernel hold exactly the learned best paths among ``paths`` (the whole table)."""
        best, _gone = learned(paths)
        self.installed = self.routes.read()
        for prefix in sorted(set(self.installed) - set(best)):
            self._remove(prefix)
        for route in best.values():
            if self.installed.get(route.prefix) != route.next_hop:
                self._set(route)
        self.report(f"synced: {len(best)} learned route(s) in table {self.routes.table}")

    def follow(self, paths: Iterable[Any]) -> None:
        """Apply one batch of best-path changes."""
        best, gone = learned(paths)
        for prefix in sorted(gone):
            if prefix in self.installed:
                self._remove(prefix)
        for route in best.values():
            if self.installed.get(route.prefix) != route.next_hop:
                self._set(route)

    def _set(self, route: Learned) -> None:
        try:
            self.routes.set(route)
        except NetlinkError as exc:
            self.report(f"cannot install {route.prefix} via {route.next_hop}: {exc.args[-1]}")
            return
        self.installed[route.prefix] = route.next_hop
        self.report(f"installed {route.prefix} via {route.next_hop}")

    def _remove(self, prefix: str) -> None:
        self.routes.remove(prefix)
        self.installed.pop(prefix, None)
        self.report(f"withdrew {prefix}")

    def run_once(self) -> None:
        self.client.wait_ready()
        self.reconcile(self.client.best_paths([codec.family(n) for n in codec.FAMILIES]))

    def run(self) -> None:
        """Follow gobgpd until interrupted; reconnect (and reconcile) whenever it comes back."""
        while True:
            try:
                self.client.wait_ready()
                self._session()
            except NetxError as exc:
                self.report(f"waiting for gobgpd: {exc}")
                time.sleep(RECONNECT_DELAY)

    def _session(self) -> None:
        whole_table_first = any(self.client.destinations(codec.family(n)) for n in codec.FAMILIES)
        if not whole_table_first:  # gobgpd sends no first message for an empty table
            self.reconcile(())
        for index, batch in enumerate(self.client.watch_best()):
            if index == 0 and whole_table_first:
                self.reconcile(batch)
            else:
                self.follow(batch)

"""``netx bgp sync``: mirror the routes gobgpd learns from its peers into the kernel (protocol netx-bgp, 79).

gobgpd cannot install routes here (its zebra client crashes against Debian's FRR), so netx does: it
follows gobgpd's best paths and keeps one kernel route for each learned one. It owns exactly the routes
of its protocol in its table and never writes over another's (kernel.py): a learned prefix whose place a
route of another protocol has is held back, said once in its log and shown by ``netx show`` (on
bgp.global, from syncrecord.py), and installed when that route goes (the kernel announces it).

Routes stay while gobgpd is away (stopped, restarting, or running without BGP started). A gobgpd that
stops withdraws every learned path as it closes its sessions, just before its watch breaks: the sync acts
on a withdrawal only once gobgpd has answered that it still runs BGP (one GetBgp per batch of
withdrawals; gobgpd answers after the shutdown step that caused them, or not at all). BGP stopped through
the API (netx removing the bgp section) withdraws the routes a moment later, when gobgpd stays up.

When gobgpd is back, its table refills. The sync installs what comes at once, and removes what does not
come back only when the table is complete (RFC 4724's selection deferral): every peer up with its
End-of-RIB in, or the restart time (the peers' largest) passed since gobgpd came back.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from queue import Empty, Queue
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from netplanx.errors import NetxError
from netplanx.features.bgp import codec
from netplanx.features.bgp.feed import Event, follow_gobgpd, follow_kernel
from netplanx.features.bgp.kernel import KernelRoutes, Learned, Occupied
from netplanx.features.bgp.syncrecord import SyncRecord
from netplanx.system.gobgp.client import GobgpClient
from netplanx.system.names import table_name
from netplanx.system.netlink import RouteRemovals

log = logging.getLogger("netx.bgp.sync")
DEFAULT_GRACE = 120  # seconds the table may take to refill when no peer has a graceful restart time
CHECK_INTERVAL = 0.2  # seconds between End-of-RIB checks while the table refills
STOP_WINDOW = 2.0  # seconds a withdrawal waits when BGP is stopped: does gobgpd go away (it is shutting down)?


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

    def __init__(self, client: GobgpClient, routes: KernelRoutes, record: SyncRecord | None = None,
                 report: Callable[[str], None] = log.info):
        self.client = client
        self.routes = routes
        self.record = record
        self.report = report
        self.learned: dict[str, Learned] = {}  # gobgpd's learned best paths, as last heard
        self.installed: dict[str, str] = routes.read()  # the kernel routes of the sync: prefix -> next hop
        self.held: dict[str, str] = {}  # learned prefixes a foreign route holds back -> why
        self.back: float | None = None  # since when gobgpd's table is followed (None: gobgpd is away)
        self.complete = False  # ``learned`` is gobgpd's whole table: the routes not in it may go
        self.grace = DEFAULT_GRACE
        self.waiting_for: list[str] | None = None  # the peers the last End-of-RIB check waited for
        self.next_check = 0.0
        self.pending: set[str] = set()  # withdrawals made while BGP was stopped: wait whether gobgpd goes
        self.pending_until = 0.0
        self.said_away = False

    def run_once(self) -> None:
        """Reconcile with gobgpd's table, removing routes only if the table is complete."""
        self.client.wait_ready()
        if self.client.global_config().asn == 0:
            raise NetxError("BGP is not started in gobgpd: nothing to sync (the kernel routes stay)")
        self._table(self.client.best_paths([codec.family(name) for name in codec.FAMILIES]))
        if not self.complete:
            self.report("gobgpd's table is not complete yet: the routes it has not relearned stay (run again later)")
        self._write_record()

    def run(self, removals: RouteRemovals | None = None) -> None:
        """Follow gobgpd (and the kernel's route removals) until the process ends."""
        events: Queue[Event] = Queue()
        threading.Thread(target=follow_gobgpd, args=(self.client, events), daemon=True).start()
        if removals is not None:
            threading.Thread(target=follow_kernel, args=(removals, self.routes.table, events), daemon=True).start()
        while True:
            try:
                batch = [events.get(timeout=self._timeout())]
            except Empty:
                batch = []
            while True:  # everything already queued, handled together (one GetBgp for a storm of withdrawals)
                try:
                    batch.append(events.get_nowait())
                except Empty:
                    break
            self.handle(batch)
            self.tick()
            self._write_record()

    def handle(self, events: Sequence[Event]) -> None:
        changes: dict[str, Learned | None] = {}
        for event in events:
            if event.kind == "changes":
                best, gone = learned(event.paths)
                changes.update({prefix: None for prefix in gone})
                changes.update(best)
                continue
            self._follow(changes)
            changes = {}
            if event.kind == "table":
                self._table(event.paths)
            elif event.kind == "away":
                self._away(event.detail)
            else:
                self._retry_held(event.detail)
        self._follow(changes)

    def tick(self) -> None:
        """What is due: withdrawals made with BGP stopped (gobgpd stayed), the table's completeness."""
        now = time.monotonic()
        if self.pending and now >= self.pending_until:
            self.report(f"BGP is stopped in gobgpd: withdrawing {len(self.pending)} route(s)")
            for prefix in sorted(self.pending):
                self._withdraw(prefix)
            self.pending.clear()
        if self.back is not None and not self.complete and now >= self.next_check:
            self._check_table()

    def _timeout(self) -> float:
        due = [1.0]
        if self.pending:
            due.append(self.pending_until - time.monotonic())
        if self.back is not None and not self.complete:
            due.append(CHECK_INTERVAL)
        return max(0.0, min(due))

    def _table(self, paths: Iterable[Any]) -> None:
        """gobgpd's whole table: install it; what is not in it goes once the table is complete."""
        best, _gone = learned(paths)
        self.learned, self.pending = best, set()
        for prefix in sorted(set(self.held) - set(best)):
            del self.held[prefix]
        self.back, self.complete, self.waiting_for, self.said_away = time.monotonic(), False, None, False
        for route in best.values():
            self._install(route)
        self._check_table()

    def _check_table(self) -> None:
        """Remove the routes gobgpd has not relearned once its table is complete; until then, keep them."""
        self.next_check = time.monotonic() + CHECK_INTERVAL
        stale = set(self.installed) - set(self.learned)
        try:
            peers = [] if not stale else self.client.peers()
        except NetxError:
            return  # gone again: its watch says so
        self.grace = max((codec.restart_time(peer) for peer in peers), default=0) or DEFAULT_GRACE
        missing = sorted(peer.conf.neighbor_address for peer in peers if not codec.table_received(peer))
        waited = time.monotonic() - (self.back or 0.0)
        if not stale:
            self._reconcile("")
        elif (peers and not missing) or waited >= self.grace:
            try:  # the watch may lag behind gobgpd's table: what gobgpd holds now, End-of-RIB included
                self.learned = learned(self.client.best_paths([codec.family(name) for name in codec.FAMILIES]))[0]
            except NetxError:
                return
            self._reconcile("" if peers and not missing else f" ({self.grace} s after gobgpd came back, without "
                            f"End-of-RIB from {', '.join(missing) or 'any peer'})")
        elif missing != self.waiting_for:
            self.waiting_for = missing
            self.report(f"waiting for End-of-RIB from {', '.join(missing) or 'its peers (none yet)'}: keeping "
                        f"{len(stale)} route(s) gobgpd has not relearned, for up to {self.grace - waited:.0f} s more")

    def _reconcile(self, note: str) -> None:
        """The kernel holds exactly the learned routes (``learned`` being gobgpd's whole table)."""
        self.installed = self.routes.read()
        for prefix in sorted(set(self.installed) - set(self.learned)):
            self._remove(prefix)
        for route in self.learned.values():
            self._install(route)
        self.complete = True
        held = f", {len(self.held)} held back" if self.held else ""
        self.report(f"synced: {len(self.learned)} learned route(s) in table {self._table_name}{held}{note}")

    def _follow(self, changes: dict[str, Learned | None]) -> None:
        """Apply changes of best paths; withdrawals only once gobgpd has said it still runs BGP."""
        gone = [prefix for prefix, route in changes.items()
                if route is None and (prefix in self.learned or prefix in self.installed)]
        for route in changes.values():
            if route is not None:
                self.learned[route.prefix] = route
                self.pending.discard(route.prefix)
                self._install(route)
        if not gone:
            return
        try:
            started = self.client.global_config().asn != 0
        except NetxError:
            self.report(f"gobgpd is going away: {len(gone)} withdrawal(s) it sent on its way out ignored")
            return
        if not started:
            self.pending.update(gone)
            self.pending_until = time.monotonic() + STOP_WINDOW
            return
        for prefix in sorted(gone):
            self._withdraw(prefix)

    def _away(self, detail: str) -> None:
        if self.pending:
            self.report(f"gobgpd went away: {len(self.pending)} withdrawal(s) it sent on its way out ignored")
        self.back, self.complete, self.pending = None, False, set()
        if not self.said_away:
            self.said_away = True
            self.report(f"waiting for gobgpd ({detail}): keeping {len(self.installed)} route(s) until its table "
                        "is back")

    def _retry_held(self, prefix: str) -> None:
        """A foreign route left (``prefix``; empty: any may have): install what it held back."""
        for held in [prefix] if prefix else list(self.held):
            if held in self.held and held in self.learned:
                self._install(self.learned[held])

    def _install(self, route: Learned) -> None:
        current = self.installed.get(route.prefix)
        if current == route.next_hop:
            return
        try:
            if current is None:
                self.routes.add(route)
            else:
                self.routes.move(route, current)
        except Occupied as occupant:
            self.installed.pop(route.prefix, None)
            if route.prefix not in self.held:
                self.report(f"held back {route.prefix} via {route.next_hop}: table {self._table_name} has "
                            f"{occupant}, a route netx does not own (installed once it is gone)")
            self.held[route.prefix] = f"via {route.next_hop} (table {self._table_name} has {occupant})"
            return
        except NetlinkError as exc:
            self.installed.pop(route.prefix, None)
            self.report(f"cannot install {route.prefix} via {route.next_hop}: {exc.args[-1]}")
            return
        self.installed[route.prefix] = route.next_hop
        freed = " (no longer held back)" if self.held.pop(route.prefix, None) else ""
        self.report(f"installed {route.prefix} via {route.next_hop}{freed}")

    def _withdraw(self, prefix: str) -> None:
        self.learned.pop(prefix, None)
        if self.held.pop(prefix, None):
            self.report(f"{prefix} withdrawn: no longer held back")
        if prefix in self.installed:
            self._remove(prefix)

    def _remove(self, prefix: str) -> None:
        self.routes.remove(prefix, self.installed.pop(prefix) or None)
        self.report(f"withdrew {prefix}")

    @property
    def _table_name(self) -> str:
        return table_name(self.routes.table)

    def _write_record(self) -> None:
        if self.record is None:
            return
        if self.back is None:
            state = f"gobgpd away, {len(self.installed)} route(s) kept"
        elif not self.complete:
            state = f"waiting for gobgpd's table, {len(set(self.installed) - set(self.learned))} stale route(s) kept"
        else:
            state = "following gobgpd"
        self.record.write(state, self.held)

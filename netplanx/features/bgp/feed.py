"""What ``netx bgp sync`` reacts to, as events on one queue: gobgpd's best paths (the whole table after
each (re)connection, then every change), gobgpd going away, and foreign routes leaving the kernel. Each
source runs in its own thread; the sync handles the events in one.
"""

from __future__ import annotations

import time
from queue import Queue
from typing import Any, NamedTuple

from netplanx.errors import NetxError
from netplanx.features.bgp import codec
from netplanx.system.gobgp.client import GobgpClient
from netplanx.system.names import NETX_BGP_PROTOCOL
from netplanx.system.netlink import RouteRemovals

RECONNECT_DELAY = 0.5  # seconds between attempts while gobgpd is away or BGP is not started in it


class Event(NamedTuple):
    """``table``: gobgpd's whole best-path table (``paths``), after a (re)connection; ``changes``: some of
    its best paths changed; ``away``: gobgpd cannot be followed (``detail`` says why); ``kernel``: a route of
    another protocol left the table (``detail``: its destination; empty: notifications were lost)."""

    kind: str
    paths: Any = ()
    detail: str = ""


def follow_gobgpd(client: GobgpClient, events: Queue[Event]) -> None:
    """Put gobgpd's table and its changes on ``events``, forever: 'away' whenever gobgpd cannot be followed
    (unreachable, BGP not started, the watch broken), then try again."""
    families = [codec.family(name) for name in codec.FAMILIES]
    while True:
        try:
            client.wait_ready()
            if client.global_config().asn == 0:
                raise NetxError("BGP is not started in gobgpd (netx apply configures it)")
            whole_table_first = any(client.destinations(family) for family in families)
            if not whole_table_first:  # gobgpd may send no first message for an empty table
                events.put(Event("table"))
            for index, batch in enumerate(client.watch_best()):
                events.put(Event("table" if index == 0 and whole_table_first else "changes", batch))
            events.put(Event("away", detail="gobgpd ended the watch"))
        except NetxError as exc:
            events.put(Event("away", detail=str(exc)))
        time.sleep(RECONNECT_DELAY)


def follow_kernel(removals: RouteRemovals, table: int, events: Queue[Event]) -> None:
    """Put each removal of a route of another protocol from ``table`` on ``events``, forever."""
    for removed in removals:
        if removed is None:
            events.put(Event("kernel"))
        elif removed[0] == table and removed[2] != NETX_BGP_PROTOCOL:
            events.put(Event("kernel", detail=removed[1]))

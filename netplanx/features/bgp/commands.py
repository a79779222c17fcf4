"""``netx bgp sync``: the long-running service that installs BGP-learned routes into the kernel."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable
from typing import Any

from netplanx.engine.feature import Command, Console
from netplanx.system.root import require_root


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("sync",))
    parser.add_argument("--api", default="127.0.0.1:50051", metavar="HOST:PORT", help="gobgpd's gRPC API")
    parser.add_argument("--table", default="main", help="kernel table for learned routes (default main)")
    parser.add_argument("--once", action="store_true",
                        help="reconcile once and exit (routes go only if gobgpd's table is complete)")


def _sync(args: argparse.Namespace, out: Console, _session: Callable[[], Any]) -> int:
    from pyroute2 import IPRoute

    from netplanx.features.bgp.kernel import KernelRoutes
    from netplanx.features.bgp.sync import RouteSync
    from netplanx.features.bgp.syncrecord import SyncRecord
    from netplanx.system import netns
    from netplanx.system.gobgp.client import GobgpClient
    from netplanx.system.names import table_number
    from netplanx.system.netlink import RouteRemovals
    from netplanx.system.state import StateStore

    require_root()
    if args.netns:
        netns.enter(args.netns)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="netx bgp sync: %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    client = GobgpClient(args.api)
    table = int(args.table) if args.table.isdigit() else table_number(args.table)
    record = SyncRecord(StateStore(args.state_dir, args.netns), args.table)
    with IPRoute() as ipr:
        sync = RouteSync(client, KernelRoutes(ipr, table), record)
        try:
            if args.once:
                sync.run_once()
            else:
                sync.run(RouteRemovals())  # opened here: in the namespace entered above
        finally:
            client.close()
    return 0


BGP_COMMAND = Command(
    "bgp", "BGP services: 'sync' installs the routes peers announce",
    "sync: follow gobgpd's best paths and keep the kernel routes of the learned ones (protocol netx-bgp) equal to "
    "them, within milliseconds of a change. It never replaces or removes a route of another protocol: a learned "
    "prefix whose place such a route has is held back (logged, shown by 'netx show' on bgp.global) and installed "
    "once that route is gone. Routes stay while gobgpd is away; once it is back, those it has not relearned go "
    "when every peer has sent End-of-RIB, or after the peers' graceful restart time.",
    ["netx bgp sync   # follows gobgpd at 127.0.0.1:50051, see examples/systemd/netx-bgp-sync.service",
     "netx bgp sync --api 127.0.0.1:50051 --table main --netns node-a",
     "netx bgp sync --once   # reconcile the kernel with gobgpd's table (if complete), then exit"],
    _arguments, _sync)

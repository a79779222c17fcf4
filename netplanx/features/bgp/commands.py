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
    parser.add_argument("--once", action="store_true", help="reconcile once and exit")


def _sync(args: argparse.Namespace, out: Console, _session: Callable[[], Any]) -> int:
    from pyroute2 import IPRoute

    from netplanx.features.bgp.sync import KernelRoutes, RouteSync
    from netplanx.system import netns
    from netplanx.system.gobgp.client import GobgpClient
    from netplanx.system.names import table_number

    require_root()
    if args.netns:
        netns.enter(args.netns)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="netx bgp sync: %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    client = GobgpClient(args.api)
    table = int(args.table) if args.table.isdigit() else table_number(args.table)
    with IPRoute() as ipr:
        sync = RouteSync(client, KernelRoutes(ipr, table))
        try:
            if args.once:
                sync.run_once()
            else:
                sync.run()
        finally:
            client.close()
    return 0


BGP_COMMAND = Command(
    "bgp", "BGP services: 'sync' installs the routes peers announce",
    "sync: follow gobgpd's best paths and keep the kernel routes of the learned ones (protocol netx-bgp) equal to "
    "them; reconciles fully on start and within milliseconds of a change.",
    ["netx bgp sync   # follows gobgpd at 127.0.0.1:50051, see examples/systemd/netx-bgp-sync.service",
     "netx bgp sync --api 127.0.0.1:50051 --table main --netns node-a",
     "netx bgp sync --once   # reconcile the kernel with gobgpd's table, then exit"],
    _arguments, _sync)

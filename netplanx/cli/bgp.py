"""``netx bgp sync``: the long-running service that installs BGP-learned routes into the kernel."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from netplanx.cli.common import EXIT_OK, Output, require_root


def cmd_bgp(args: argparse.Namespace, out: Output) -> int:
    from pyroute2 import IPRoute

    from netplanx.providers.bgp.client import GobgpClient
    from netplanx.providers.bgp.sync import KernelRoutes, RouteSync
    from netplanx.providers.kernel import netns
    from netplanx.providers.kernel.names import table_number

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
    return EXIT_OK

"""``netx flows`` and ``netx show policies``: what the policy datapath decides, live, and its counters."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from netplanx.engine.feature import Console
from netplanx.engine.resource import Query
from netplanx.errors import NetxError
from netplanx.render.console import Output
from netplanx.system.root import require_root

OPEN = {"any": ["any allow by open"]}  # a direction no policy selects, as policy.ENDPOINT reads it


def cmd_flows(args: argparse.Namespace, out: Console, open_session: Callable[[], Any]) -> int:
    """The datapath's verdicts and, on a node with an L7 proxy, its HTTP requests."""
    from netplanx.features.policy import maps as pm
    from netplanx.features.policy.flows import FlowFilter, Namer, print_flows, watch
    from netplanx.features.policy.l7flows import L7Log
    from netplanx.features.policy.proxy import Proxy
    from netplanx.features.policy.types import RECORD

    require_root()
    session = open_session()
    try:
        if not pm.loaded(session.store.scope):
            raise NetxError(f"no policy datapath in {args.netns or 'the host namespace'} (nothing to watch: "
                            "apply a spec with policies first)")
        endpoints = {int(i): name for i, name in session.store.load(RECORD).items()}
        namer = Namer(session.store.scope, session.ctx.link_names(), endpoints)
    finally:
        session.close()
    err = Output(sys.stderr)
    deadline = time.monotonic() + args.duration if args.duration else None
    proxy = Proxy(namer.scope)
    l7 = L7Log(proxy.log_socket) if proxy.pid() is not None else None
    what = "policy verdicts and L7 requests" if l7 else "policy verdicts"
    dropped = _dropped_logs(proxy) if l7 else 0
    try:
        flows = watch(namer.scope, namer, lambda: err.print(f"watching {what} in {args.netns or 'the host'} "
                                                            "(Ctrl-C to stop)"), deadline, l7)
        keep = FlowFilter(args.endpoint, args.verdict, args.policy)
        print_flows(flows, keep, sys.stdout, args.json, args.count, args.aggregate)
    finally:
        if l7:
            l7.close()
            lost = _dropped_logs(proxy) - dropped
            if lost > 0:
                err.print(f"the L7 proxy dropped {lost} log line(s) while watching (net.unix.max_dgram_qlen)")
    return 0


def _dropped_logs(proxy: Any) -> int:
    """Log lines the proxy could not send (``show info``: DroppedLogs)."""
    from netplanx.errors import ProviderError

    try:
        return int(proxy.info().get("DroppedLogs", "0"))
    except (ProviderError, ValueError):
        return 0


def show_policies(args: argparse.Namespace, out: Console, open_session: Callable[[], Any]) -> int:
    """Per endpoint its directions and entries; per rule its packet and byte counters."""
    from netplanx.features.policy import maps as pm

    require_root()
    session = open_session()
    try:
        live = session.types["policy"].read(Query())
        scope = session.store.scope
    finally:
        session.close()
    if not live:
        out.print("no policy datapath in this namespace")
        return 0
    names = pm.read_names(scope)
    rules = {i: t for (kind, i), t in names.items() if kind == pm.NAME_RULE}
    counters = pm.rule_counters(scope)
    endpoints = []
    for res in live:
        directions = {d: "open" if res.attrs[d] == OPEN else "enforced" for d in ("ingress", "egress")}
        endpoints.append({"endpoint": res.address.split(".", 1)[1], **directions, "entries": res.attrs["entries"],
                          "attached": res.attrs["attached"]})
    rows = [{"rule": rules.get(number, f"rule {number}"), "packets": packets, "bytes": size}
            for number, (packets, size) in sorted(counters.items())]
    rows += [{"rule": text, "packets": 0, "bytes": 0} for number, text in sorted(rules.items())
             if number not in counters]
    if args.output == "json":
        sys.stdout.write(json.dumps({"endpoints": endpoints, "rules": rows}, indent=1) + "\n")
        return 0
    out.print(f"{'ENDPOINT':<24} {'INGRESS':<9} {'EGRESS':<9} {'ENTRIES':>7}  ATTACHED")
    for e in endpoints:
        out.print(f"{e['endpoint']:<24} {e['ingress']:<9} {e['egress']:<9} {e['entries']:>7}  "
                  f"{'yes' if e['attached'] else 'NO'}")
    out.print(f"\n{'RULE':<40} {'PACKETS':>10} {'BYTES':>12}")
    for row in rows:
        out.print(f"{row['rule']:<40} {row['packets']:>10} {row['bytes']:>12}")
    return 0


"""``netx flows`` and ``netx show policies``: what the policy datapath decides, live, and its counters."""

from __future__ import annotations

import argparse
import sys
import time

from netplanx.cli.common import EXIT_OK, Output, open_session, print_json, require_root
from netplanx.errors import NetxError

OPEN = {"any": ["any allow by open"]}  # a direction no policy selects, as policy.ENDPOINT reads it


def add_flows_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", metavar="NAME", help="only flows from, to or enforced at this endpoint")
    parser.add_argument("--verdict", choices=("allowed", "dropped"), help="only this verdict")
    parser.add_argument("--policy", metavar="NAME", help="only flows decided by this policy's rules")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--aggregate", type=float, metavar="SECONDS",
                        help="print counts per (source, destination, port, verdict) every SECONDS")
    parser.add_argument("--count", type=int, metavar="N", help="stop after N flows")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after SECONDS")


def cmd_flows(args: argparse.Namespace, out: Output) -> int:
    from netplanx.policy.flows import FlowFilter, Namer, print_flows, watch
    from netplanx.providers.bpf import policy_maps as pm
    from netplanx.providers.bpf.policy_types import RECORD

    require_root()
    session = open_session(args)
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
    flows = watch(namer.scope, namer, lambda: err.print(f"watching policy verdicts in {args.netns or 'the host'} "
                                                        "(Ctrl-C to stop)"), deadline)
    keep = FlowFilter(args.endpoint, args.verdict, args.policy)
    print_flows(flows, keep, sys.stdout, args.json, args.count, args.aggregate)
    return EXIT_OK


def cmd_show_policies(args: argparse.Namespace, out: Output) -> int:
    """Per endpoint its directions and entries; per rule its packet and byte counters."""
    from netplanx.providers.bpf import policy_maps as pm

    require_root()
    session = open_session(args)
    try:
        live = [r for r in session.read_live() if r.kind == "policy"]
        scope = session.store.scope
    finally:
        session.close()
    if not live:
        out.print("no policy datapath in this namespace")
        return EXIT_OK
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
        print_json({"endpoints": endpoints, "rules": rows})
        return EXIT_OK
    out.print(f"{'ENDPOINT':<24} {'INGRESS':<9} {'EGRESS':<9} {'ENTRIES':>7}  ATTACHED")
    for e in endpoints:
        out.print(f"{e['endpoint']:<24} {e['ingress']:<9} {e['egress']:<9} {e['entries']:>7}  "
                  f"{'yes' if e['attached'] else 'NO'}")
    out.print(f"\n{'RULE':<40} {'PACKETS':>10} {'BYTES':>12}")
    for row in rows:
        out.print(f"{row['rule']:<40} {row['packets']:>10} {row['bytes']:>12}")
    return EXIT_OK

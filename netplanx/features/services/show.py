"""``netx show services``: every service in the pinned maps, its frontends (one per VIP), its backends with
their Maglev slots, the flows the packet path tracks to them, their packet counters and the sockets the
socket path sent to them."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

from netplanx.engine.feature import Console
from netplanx.engine.resource import Query
from netplanx.features.services.conntrack import flows
from netplanx.features.services.lbmaps import LbMaps, backend_key, split_backend
from netplanx.features.services.services import LbContext, ServiceType, backend_counters, family
from netplanx.system.root import require_root


def service_report(service_type: ServiceType) -> list[dict[str, Any]]:
    """One entry per live service: frontend, affinity, Maglev size and each backend with its counters and
    share of the Maglev table."""
    lb: LbContext = service_type.lb
    maps: LbMaps | None = lb.maps()
    if maps is None:
        return []
    report = []
    tracked = flows(maps)
    for res in service_type.read(Query()):
        ids = res.meta["backend_ids"]
        counters = backend_counters(maps, ids)
        slots = service_type.slot_counts(res)
        report.append({"name": res.meta["name"], "vip": res.attrs["vip"], "vip6": res.attrs["vip6"],
                       "port": res.attrs["port"], "protocol": res.attrs["protocol"],
                       "affinity": res.attrs["affinity"], "maglev_size": res.attrs["maglev"]["size"],
                       "backends": [{"backend": key, "weight": weight, "slots": slots.get(key, 0),
                                     "flows": tracked[ids[key]], **counters[key]}
                                    for key, weight in res.attrs["backends"].items()]})
    return sorted(report, key=lambda s: s["name"])


ROW = "{:<16} {:<28} {:<28} {:>6} {:>7} {:>6} {:>10} {:>12} {:>8}"


def render_services(report: list[dict[str, Any]], stream: TextIO) -> None:
    """A row per backend under its frontend (a dual-stack service has one per VIP)."""
    if not report:
        stream.write("No services.\n")
        return
    columns = ("SERVICE", "FRONTEND", "BACKEND", "WEIGHT", "SLOTS", "FLOWS", "PACKETS", "BYTES", "SOCKETS")
    lines = [ROW.format(*columns)]
    for service in report:
        name = service["name"] + (" (clientIP)" if service["affinity"] == "clientIP" else "")
        for vip in (service["vip"], service["vip6"]):
            if vip is None:
                continue
            frontend = f"{backend_key(vip, service['port'])}/{service['protocol']}"
            backends = [b for b in service["backends"] if family(split_backend(b["backend"])[0]) == family(vip)]
            if not backends:
                lines.append(f"{name:<16} {frontend:<28} (no backends)")
            for backend in backends:
                lines.append(ROW.format(name, frontend, backend["backend"], backend["weight"], backend["slots"],
                                        backend["flows"], backend["packets"], backend["bytes"], backend["sockets"]))
                name = frontend = ""
            name = ""
    stream.write("\n".join(lines) + "\n")


def show_services(args: argparse.Namespace, out: Console, open_session: Callable[[], Any]) -> int:
    """``netx show services``: a table, or JSON with ``-o json``."""
    require_root()
    session = open_session()
    try:
        report = service_report(session.types["service"])
    finally:
        session.close()
    if args.output == "table":
        render_services(report, sys.stdout)
    else:
        sys.stdout.write(json.dumps(report, indent=1) + "\n")
    return 0

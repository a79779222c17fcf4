"""``netx show services``: every service in the pinned maps, its backends and their packet counters."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

from netplanx.engine.feature import Console
from netplanx.engine.resource import Query
from netplanx.features.services.lbmaps import LbMaps
from netplanx.features.services.services import LbContext, ServiceType, backend_counters
from netplanx.system.root import require_root


def service_report(service_type: ServiceType) -> list[dict[str, Any]]:
    """One entry per live service: frontend, affinity, Maglev size and each backend with its counters and
    share of the Maglev table."""
    lb: LbContext = service_type.lb
    maps: LbMaps | None = lb.maps()
    if maps is None:
        return []
    report = []
    for res in service_type.read(Query()):
        ids = res.meta["backend_ids"]
        counters = backend_counters(maps, ids)
        slots = service_type.slot_counts(res)
        report.append({"name": res.meta["name"], "vip": res.attrs["vip"], "port": res.attrs["port"],
                       "protocol": res.attrs["protocol"], "affinity": res.attrs["affinity"],
                       "maglev_size": res.attrs["maglev"]["size"],
                       "backends": [{"backend": key, "weight": weight, "slots": slots.get(key, 0), **counters[key]}
                                    for key, weight in res.attrs["backends"].items()]})
    return sorted(report, key=lambda s: s["name"])


ROW = "{:<16} {:<24} {:<22} {:>6} {:>7} {:>10} {:>12}"


def render_services(report: list[dict[str, Any]], stream: TextIO) -> None:
    if not report:
        stream.write("No services.\n")
        return
    columns = ("SERVICE", "FRONTEND", "BACKEND", "WEIGHT", "SLOTS", "PACKETS", "BYTES")
    lines = [ROW.format(*columns)]
    for service in report:
        frontend = f"{service['vip']}:{service['port']}/{service['protocol']}"
        name = service["name"] + (" (clientIP)" if service["affinity"] == "clientIP" else "")
        if not service["backends"]:
            lines.append(f"{name:<16} {frontend:<24} (no backends)")
        for index, backend in enumerate(service["backends"]):
            first = index == 0
            lines.append(ROW.format(name if first else "", frontend if first else "", backend["backend"],
                                    backend["weight"], backend["slots"], backend["packets"], backend["bytes"]))
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

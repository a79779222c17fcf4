"""Adoption of routes (every table but the kernel's own) and rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from netplanx.engine.resource import Resource
from netplanx.features.routing.routes import DEFAULT_METRIC, default_scope
from netplanx.features.routing.rules import ALL_MASK
from netplanx.system.names import table_name


def adopt_routing(live: Mapping[str, Sequence[Resource]], spec: dict[str, Any]) -> None:
    routes = [_route(r.attrs) for r in sorted(live.get("route", ()), key=lambda r: r.address)]
    if routes:
        spec["routes"] = routes
    rules = [_rule(r.attrs) for r in sorted(live.get("rule", ()), key=lambda r: r.address) if "#" not in r.address]
    if rules:
        spec["rules"] = rules


def _table(number: int) -> str | int:
    name = table_name(number)
    return number if name.isdigit() else name


def _route(a: dict[str, Any]) -> dict[str, Any]:
    family = 6 if ":" in a["to"] else 4
    entry: dict[str, Any] = {"to": a["to"]}
    entry.update({k: a[k] for k in ("via", "dev", "src") if a.get(k)})
    if a["table"] != 254:
        entry["table"] = _table(a["table"])
    if a["metric"] != DEFAULT_METRIC[family]:
        entry["metric"] = a["metric"]
    if a["type"] != "unicast":
        entry["type"] = a["type"]
    if family == 4 and a["scope"] != default_scope(family, a["type"], a.get("via"), a["nexthops"]):
        entry["scope"] = a["scope"]
    if a["onlink"]:
        entry["onlink"] = True
    if a["nexthops"]:
        entry["nexthops"] = [{k: v for k, v in hop.items() if v is not None and not (k == "weight" and v == 1)}
                             for hop in a["nexthops"]]
    return entry


def _rule(a: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"priority": a["priority"], "family": a["family"]}
    entry.update({k: a[k] for k in ("from", "to", "iif", "oif", "fwmark") if a.get(k) is not None})
    if a.get("fwmark") is not None and a.get("fwmask") != ALL_MASK:
        entry["fwmask"] = a["fwmask"]
    if a["action"] != "lookup":
        entry["action"] = a["action"]
    else:
        entry["table"] = _table(a["table"])
    return entry

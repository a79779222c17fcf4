"""Adoption of routes (every table but the kernel's own), rules and permanent neighbours."""

from __future__ import annotations

from typing import Any

from netplanx.engine.feature import Adoption
from netplanx.features.routing.routes import DEFAULT_METRIC, default_scope
from netplanx.features.routing.rules import ALL_MASK
from netplanx.system.names import table_name


def adopt_routing(adoption: Adoption) -> None:
    """Rules that share a priority with another (``rule.ipv4.100#1``) are someone else's: left out."""
    routes = sorted(adoption.live("route"), key=lambda r: r.address)
    rules = sorted((r for r in adoption.live("rule") if "#" not in r.address), key=lambda r: r.address)
    neighbours = sorted(adoption.live("neighbour"), key=lambda r: r.address)
    adoption.describe([*routes, *rules, *neighbours])
    for key, entries in (("routes", [_route(r.attrs) for r in routes]), ("rules", [_rule(r.attrs) for r in rules]),
                         ("neighbours", [dict(r.attrs) for r in neighbours])):
        if entries:
            adoption.spec[key] = entries


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
    if a.get("encap"):
        entry["encap"] = {k: v for k, v in a["encap"].items() if v is not None}
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

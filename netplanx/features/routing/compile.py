"""Compile the routes, rules and neighbours of a host's view."""

from __future__ import annotations

import functools
from typing import Any

from netplanx.engine.feature import NodeView
from netplanx.engine.resource import Resource
from netplanx.features.routing.neighbours import neighbour_resource
from netplanx.features.routing.routes import route_resource
from netplanx.features.routing.rules import rule_resource
from netplanx.system.names import table_number


@functools.lru_cache(maxsize=4096)
def _text(value: object) -> str | None:
    """An address (or None) as text: thousands of routes share a few gateways, and ipaddress's str is slow."""
    return None if value is None else str(value)


def vrf_tables(view: NodeView) -> dict[str, int]:
    """The tables of the view's VRFs, by name (what a route's ``vrf`` names)."""
    return {i.name: i.table for i in view.spec.interfaces if i.type == "vrf"}


def route_table(entry: Any, vrfs: dict[str, int]) -> int:
    """The table of a route, or the one a lookup rule looks up: its vrf's, or the one it names."""
    return vrfs[entry.vrf] if entry.vrf is not None else table_number(entry.table)


def _in_vrf(route: Resource, vrf: str | None) -> Resource:
    """A route or rule in a VRF's table comes after the VRF (and goes before it)."""
    return route if vrf is None else route._replace(meta={**route.meta, "requires": [f"link.{vrf}"]})


def routing_resources(view: NodeView) -> list[Resource]:
    vrfs = vrf_tables(view)
    resources = [_in_vrf(route_resource(
        table=route_table(route, vrfs), to=str(route.destination), metric=route.metric, kind=route.type,
        via=_text(route.via), dev=route.dev, src=_text(route.src), scope=route.scope, onlink=route.onlink,
        nexthops=[{"via": _text(h.via), "dev": h.dev, "weight": h.weight} for h in route.nexthops],
        encap=None if route.encap is None else {"type": route.encap.type, "id": route.encap.id,
                                                "dst": _text(route.encap.dst)},
    ), route.vrf) for route in view.spec.routes]
    resources += [_in_vrf(rule_resource(
        family=f"ipv{rule.ip_family}", priority=rule.priority, action=rule.action,
        table=route_table(rule, vrfs) if rule.action == "lookup" else None,
        from_=_text(rule.from_), to=_text(rule.to), iif=rule.iif, oif=rule.oif,
        fwmark=rule.fwmark, fwmask=rule.fwmask,
    ), rule.vrf) for rule in view.spec.rules]
    resources += [neighbour_resource(n.dev, str(n.ip), n.lladdr) for n in view.spec.neighbours]
    return resources

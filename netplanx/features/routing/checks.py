"""Checks of a host's routes, rules and neighbours: duplicates, declared devices, reachable gateways."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from netplanx.document.problems import Problem
from netplanx.engine.feature import NodeView
from netplanx.features.interfaces.checks import declared_links, link_networks
from netplanx.features.interfaces.kinds.base import names_text
from netplanx.features.routing.compile import route_table, vrf_tables


def route_problems(view: NodeView) -> Iterator[Problem]:
    declared = declared_links(view)
    networks = link_networks(view)
    vrfs = vrf_tables(view)
    seen: dict[tuple[object, ...], int] = {}
    gateway_problem: dict[tuple[Any, str | None], str | None] = {}  # routes share gateways: judged once each
    for index, route in enumerate(view.spec.routes):
        if route.vrf is not None and route.vrf not in vrfs:
            yield Problem(("routes", index, "vrf"), f"vrf '{route.vrf}' is not declared (allowed: a vrf in "
                          f"interfaces: {names_text(vrfs)})")
            continue
        metric = route.metric if route.metric is not None else (1024 if route.family == 6 else 0)
        key = (route_table(route, vrfs), route.destination, metric)
        if key in seen:
            table = f"vrf {route.vrf}" if route.vrf is not None else f"table {route.table}"
            yield Problem(("routes", index, "to"), f"route to {route.destination} in {table} is declared "
                          f"twice (first at routes[{seen[key]}]; allowed: distinct to/table/metric)")
        seen.setdefault(key, index)
        hops = [(("routes", index), route.via, route.dev)] + [
            (("routes", index, "nexthops", n), hop.via, hop.dev) for n, hop in enumerate(route.nexthops)
        ]
        for path, via, dev in hops:
            if dev is not None and dev not in declared and dev != "lo":  # every namespace has lo
                yield Problem((*path, "dev"), f"dev '{dev}' is not declared (allowed: an interface in interfaces: "
                              f"{names_text(declared)})")
                continue
            if via is None or route.onlink:
                continue
            problem = gateway_problem.get((via, dev), False)
            if problem is False:
                problem = gateway_problem[via, dev] = _gateway_problem(via, dev, networks)
            if problem:
                yield Problem((*path, "via"), problem)


def _gateway_problem(via: Any, dev: str | None, networks: Mapping[str, list[Any]]) -> str | None:
    """Why ``via`` cannot be the gateway of a route through ``dev`` (any link: None), or None when it can."""
    if via.version == 6 and via.is_link_local:
        return None if dev is not None else f"link-local gateway {via} needs dev (allowed: set dev)"
    candidates = networks.get(dev, []) if dev else [n for nets in networks.values() for n in nets]
    if any(via in network for network in candidates):
        return None
    where = f"on '{dev}'" if dev else "on any interface"
    return (f"gateway {via} is not reachable: no address {where} covers it (allowed: a gateway inside a subnet of a "
            "declared address, or onlink: true)")


def rule_problems(view: NodeView) -> Iterator[Problem]:
    vrfs = vrf_tables(view)
    seen: dict[tuple[int, int], int] = {}
    for index, rule in enumerate(view.spec.rules):
        if rule.vrf is not None and rule.vrf not in vrfs:
            yield Problem(("rules", index, "vrf"), f"vrf '{rule.vrf}' is not declared (allowed: a vrf in "
                          f"interfaces: {names_text(vrfs)})")
        key = (rule.ip_family, rule.priority)
        if key in seen:
            yield Problem(("rules", index, "priority"), f"IPv{rule.ip_family} rule priority {rule.priority} is "
                          f"declared twice (first at rules[{seen[key]}]; allowed: one rule a priority)")
        seen.setdefault(key, index)


def neighbour_problems(view: NodeView) -> Iterator[Problem]:
    declared = declared_links(view)
    seen: dict[tuple[str, object], int] = {}
    for index, neighbour in enumerate(view.spec.neighbours):
        if neighbour.dev not in declared:
            yield Problem(("neighbours", index, "dev"), f"dev '{neighbour.dev}' is not declared (allowed: an "
                          f"interface in interfaces: {names_text(declared)})")
        key = (neighbour.dev, neighbour.ip)
        if key in seen:
            yield Problem(("neighbours", index, "ip"), f"neighbour {neighbour.ip} on '{neighbour.dev}' is declared "
                          f"twice (first at neighbours[{seen[key]}]; allowed: one entry per address and link)")
        seen.setdefault(key, index)

"""Checks that need the whole spec: references, duplicates, reachability of gateways."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import NamedTuple

from netplanx.policy.checks import policy_problems
from netplanx.providers.kernel.names import TABLES
from netplanx.spec.bgp_checks import bgp_problems
from netplanx.spec.cluster_checks import cluster_problems
from netplanx.spec.fields import IfNetwork
from netplanx.spec.model import Bridge, Device, Macvlan, Spec, Veth, Vxlan
from netplanx.spec.nodes import cluster_links, cluster_managed_links, node_view, view_path
from netplanx.spec.services_checks import service_problems


class Problem(NamedTuple):
    """A semantic problem at a data path (at the mapping key rather than its value with ``at_key``)."""

    path: tuple[str | int, ...]
    text: str
    at_key: bool = False

PER_INTERFACE_SYSCTL = re.compile(r"net\.(ipv4|ipv6)\.(conf|neigh)\.([^.]+)\..+")


def semantic_problems(spec: Spec) -> list[Problem]:
    """Every cross-object problem of the spec, each with the data path it points at.

    A cluster spec is checked as each node sees it (common parts plus the node's own); a problem in a
    common part is reported once.
    """
    if spec.cluster is None:
        views = [(None, spec, {}, set())]
    else:
        views = [(i, node_view(spec, n), cluster_links(spec, n), cluster_managed_links(spec, n))
                 for i, n in enumerate(spec.cluster.nodes)]
    found: dict[tuple[tuple[str | int, ...], str], Problem] = {}
    for index, view, extra, managed in views:
        for problem in (*_interface_problems(view, extra, managed), *_route_problems(view, extra),
                        *_rule_problems(view), *_sysctl_problems(view, extra)):
            problem = problem if isinstance(problem, Problem) else Problem(*problem)
            if index is not None:
                problem = Problem(view_path(spec, index, problem.path), _in_file(spec, index, problem.text),
                                  problem.at_key)
            found.setdefault((problem.path, problem.text), problem)
    return [*found.values(), *(Problem(*p) for p in (*cluster_problems(spec), *service_problems(spec),
                                                     *policy_problems(spec), *bgp_problems(spec)))]


def _in_file(spec: Spec, node_index: int, text: str) -> str:
    """Rewrite ``first at routes[3]`` (an index in a node's view) to where that entry is written."""
    def place(match: re.Match[str]) -> str:
        path = view_path(spec, node_index, (match.group(1), int(match.group(2))))
        return ".".join(f"{p}" if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
    return FIRST_AT.sub(lambda m: f"first at {place(m)}", text)


FIRST_AT = re.compile(r"first at (interfaces|routes|rules)\[(\d+)\]")
Extra = dict[str, list[IfNetwork]]  # links the cluster section adds, with the networks of their addresses


def local_names(spec: Spec, extra: Extra | None = None) -> set[str]:
    """Names of links that exist in this namespace once the spec is applied."""
    names = {i.name for i in spec.interfaces} | set(extra or {})
    names |= {i.peer.name for i in spec.interfaces if isinstance(i, Veth) and i.peer.netns is None}
    return names


def veth_primaries(spec: Spec) -> dict[str, str]:
    """Same-namespace veth peer name -> the veth that creates it (a peer may be configured as a device)."""
    return {i.peer.name: i.name for i in spec.interfaces if isinstance(i, Veth) and i.peer.netns is None}


def _interface_problems(spec: Spec, extra: Extra, managed: set[str]) -> Iterator[
        Problem | tuple[tuple[str | int, ...], str]]:
    seen: dict[str, int] = {}
    peers = veth_primaries(spec)
    configured: dict[str, int] = {}
    for index, interface in enumerate(spec.interfaces):
        if isinstance(interface, Device) and interface.name in peers:  # configures a veth's peer end
            if interface.name in configured:
                yield Problem(("interfaces", index, "name"),
                              f"interface name '{interface.name}' is declared twice (first at "
                              f"interfaces[{configured[interface.name]}]; allowed: unique names in a namespace)")
            configured.setdefault(interface.name, index)
            continue
        if interface.name in managed:
            yield ("interfaces", index, "name"), f"interface '{interface.name}' is created and configured by " \
                                                 "the cluster settings on this node (allowed: another name; set " \
                                                 "the underlay through cluster.underlay)"
        names = [("name", interface.name)]
        if isinstance(interface, Veth) and interface.peer.netns is None:
            names.append(("peer", interface.peer.name))
        for field, name in names:
            path = ("interfaces", index, field) if field == "name" else ("interfaces", index, "peer", "name")
            if name in seen:
                yield path, f"interface name '{name}' is declared twice (first at interfaces[{seen[name]}]; " \
                            "allowed: unique names in a namespace)"
            seen.setdefault(name, index)
    kinds = {i.name: i for i in spec.interfaces}
    declared = local_names(spec, extra)
    owners: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, str] = {}
    for index, interface in enumerate(spec.interfaces):
        if interface.master is not None:
            master = kinds.get(interface.master)
            path = ("interfaces", index, "master")
            if interface.master == interface.name:
                yield path, f"interface '{interface.name}' cannot be its own master (allowed: a bridge)"
            elif master is None:
                yield path, f"master '{interface.master}' is not declared (allowed: a bridge in interfaces: " \
                            f"{_names(i.name for i in spec.interfaces if isinstance(i, Bridge))})"
            elif not isinstance(master, Bridge):
                yield path, f"master '{interface.master}' is a {master.type}, not a bridge (allowed: " \
                            f"{_names(i.name for i in spec.interfaces if isinstance(i, Bridge))})"
        lower = interface.device if isinstance(interface, Vxlan) else (
            interface.parent if isinstance(interface, Macvlan) else None)
        if lower is not None and lower not in declared:
            field = "device" if isinstance(interface, Vxlan) else "parent"
            yield ("interfaces", index, field), f"{field} '{lower}' is not declared (allowed: an interface in " \
                                                 f"interfaces: {_names(declared)})"
        for position, text in enumerate(interface.addresses):
            ip = ipaddress.ip_interface(text).ip
            if ip in owners:
                yield ("interfaces", index, "addresses", position), \
                    f"address {ip} is already assigned to '{owners[ip]}' (allowed: each address once)"
            owners.setdefault(ip, interface.name)


def _route_problems(spec: Spec, extra: Extra) -> Iterator[Problem]:
    declared = local_names(spec, extra)
    networks = {name: list(nets) for name, nets in extra.items()}
    for interface in spec.interfaces:
        networks.setdefault(interface.name, []).extend(ipaddress.ip_interface(a).network for a in interface.addresses)
    seen: dict[tuple[object, ...], int] = {}
    for index, route in enumerate(spec.routes):
        metric = route.metric if route.metric is not None else (1024 if route.family == 6 else 0)
        key = (TABLES.get(route.table, route.table), route.destination, metric)
        if key in seen:
            yield ("routes", index, "to"), f"route to {route.destination} in table {route.table} is declared " \
                                           f"twice (first at routes[{seen[key]}]; allowed: distinct to/table/metric)"
        seen.setdefault(key, index)
        hops = [(("routes", index), route.via, route.dev)] + [
            (("routes", index, "nexthops", n), hop.via, hop.dev) for n, hop in enumerate(route.nexthops)
        ]
        for path, via, dev in hops:
            if dev is not None and dev not in declared:
                yield (*path, "dev"), f"dev '{dev}' is not declared (allowed: an interface in interfaces: " \
                                      f"{_names(declared)})"
                continue
            if via is None or route.onlink:
                continue
            if via.version == 6 and via.is_link_local:
                if dev is None:
                    yield (*path, "via"), f"link-local gateway {via} needs dev (allowed: set dev)"
                continue
            candidates = networks.get(dev, []) if dev else [n for nets in networks.values() for n in nets]
            if not any(via in network for network in candidates):
                where = f"on '{dev}'" if dev else "on any interface"
                yield (*path, "via"), f"gateway {via} is not reachable: no address {where} covers it " \
                                      "(allowed: a gateway inside a subnet of a declared address, or onlink: true)"


def _rule_problems(spec: Spec) -> Iterator[Problem]:
    seen: dict[tuple[int, int], int] = {}
    for index, rule in enumerate(spec.rules):
        key = (rule.ip_family, rule.priority)
        if key in seen:
            yield ("rules", index, "priority"), f"IPv{rule.ip_family} rule priority {rule.priority} is declared " \
                                                f"twice (first at rules[{seen[key]}]; allowed: one rule a priority)"
        seen.setdefault(key, index)


def _sysctl_problems(spec: Spec, extra: Extra) -> Iterator[Problem]:
    declared = local_names(spec, extra)
    for key in spec.sysctl:
        match = PER_INTERFACE_SYSCTL.fullmatch(key)
        if match and match.group(3) not in ("all", "default") and match.group(3) not in declared:
            yield Problem(("sysctl", key), f"sysctl {key} names interface '{match.group(3)}' which is not "
                                           f"declared (allowed: all, default, or {_names(declared)})", at_key=True)


def _names(names: object) -> str:
    listed = sorted(set(names))  # type: ignore[call-overload]
    return ", ".join(listed) if listed else "none declared"

"""Compile a validated spec into the desired resources of one node."""

from __future__ import annotations

from typing import Any

from netplanx.engine.resource import Resource
from netplanx.errors import PlanError
from netplanx.policy.resources import policy_resources
from netplanx.providers.kernel.addresses import address_resource
from netplanx.providers.kernel.links import link_address
from netplanx.providers.kernel.names import table_number
from netplanx.providers.kernel.routes import route_resource
from netplanx.providers.kernel.rules import rule_resource
from netplanx.providers.kernel.sysctls import sysctl_resource
from netplanx.spec.bgp import bgp_resources
from netplanx.spec.cluster import cluster_resources
from netplanx.spec.model import (
    Bridge,
    Device,
    EstablishedCheck,
    Geneve,
    Interface,
    Macvlan,
    PingCheck,
    Route,
    Rule,
    Spec,
    Veth,
    Vxlan,
)
from netplanx.spec.nodes import find_node, node_view
from netplanx.spec.semantic import veth_primaries
from netplanx.spec.services_compile import service_resources


def compile_spec(spec: Spec, node_name: str | None = None) -> list[Resource]:
    """Every resource the spec asks of this node (``node_name``: which node of the cluster), in spec order."""
    if spec.cluster is None:
        return _compile_local(spec) + bgp_resources(spec, None)
    node = find_node(spec, node_name or "")
    if node is None:
        raise PlanError([f"node '{node_name}' is not in cluster {spec.cluster.name} (nodes: "
                         f"{', '.join(n.name for n in spec.cluster.nodes)}); choose one with --node"])
    return (_compile_local(node_view(spec, node)) + cluster_resources(spec, node) + service_resources(spec, node)
            + policy_resources(spec, node) + bgp_resources(spec, node))


def compile_checks(spec: Spec) -> list[dict[str, Any]]:
    """The post-conditions as plain data (they travel with the compiled resources)."""
    found: list[dict[str, Any]] = []
    for check in spec.checks:
        if isinstance(check, PingCheck):
            found.append({"type": "ping", "address": str(check.ping), "count": check.count,
                          "timeout": check.timeout})
        elif isinstance(check, EstablishedCheck):
            found.append({"type": "bgp-established", "peer": str(check.bgp_established.peer),
                          "within": check.bgp_established.within})
        else:
            found.append({"type": "wireguard-handshake", "peer": check.wireguard_handshake.peer,
                          "within": check.wireguard_handshake.within})
    return found


def _compile_local(spec: Spec) -> list[Resource]:
    resources: list[Resource] = []
    peers = veth_primaries(spec)
    for interface in spec.interfaces:
        link = _link(interface)
        if interface.name in peers:  # created by its veth: plan it after that one
            link = Resource(link.kind, link.address, link.attrs,
                            meta={"requires": [link_address(peers[interface.name])]})
        resources.append(link)
        resources += [address_resource(interface.name, address) for address in interface.addresses]
    resources += [_route(route) for route in spec.routes]
    resources += [_rule(rule) for rule in spec.rules]
    resources += [sysctl_resource(key, value) for key, value in spec.sysctl.items()]
    return resources


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _link(interface: Interface) -> Resource:
    attrs: dict[str, Any] = {"name": interface.name, "state": interface.state, "master": interface.master}
    if not isinstance(interface, Device):
        attrs["type"] = interface.type
    if interface.mtu is not None:
        attrs["mtu"] = interface.mtu
    if interface.mac is not None:
        attrs["mac"] = interface.mac
    if isinstance(interface, Veth):
        attrs["peer"] = {"name": interface.peer.name, "netns": interface.peer.netns}
    elif isinstance(interface, Bridge):
        attrs["stp"] = interface.stp
    elif isinstance(interface, Vxlan):
        attrs.update(vni=interface.vni, port=interface.port, local=_text(interface.local),
                     remote=_text(interface.remote), group=_text(interface.group), device=interface.device,
                     learning=interface.learning, ttl=interface.ttl, external=interface.external)
    elif isinstance(interface, Geneve):
        attrs.update(vni=interface.vni, remote=_text(interface.remote), port=interface.port, ttl=interface.ttl,
                     external=interface.external)
    elif isinstance(interface, Macvlan):
        attrs.update(parent=interface.parent, mode=interface.mode)
    return Resource("link", link_address(interface.name), attrs)


def _route(route: Route) -> Resource:
    return route_resource(
        table=table_number(route.table), to=str(route.destination), metric=route.metric, kind=route.type,
        via=_text(route.via), dev=route.dev, src=_text(route.src), scope=route.scope, onlink=route.onlink,
        nexthops=[{"via": _text(h.via), "dev": h.dev, "weight": h.weight} for h in route.nexthops],
    )


def _rule(rule: Rule) -> Resource:
    return rule_resource(
        family=f"ipv{rule.ip_family}", priority=rule.priority, action=rule.action,
        table=table_number(rule.table) if rule.table is not None else None,
        from_=_text(rule.from_), to=_text(rule.to), iif=rule.iif, oif=rule.oif,
        fwmark=rule.fwmark, fwmask=rule.fwmask,
    )


"""Checks of the cluster section: nodes and endpoints must agree with each other and with the ranges; a
host's endpoints (a spec without cluster) must not collide."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from netplanx.document.problems import Problem

NETNS_MAX = 64


def cluster_problems(spec: Any) -> list[Problem]:
    if spec.cluster is None:
        return [*_host_endpoint_problems(spec)]
    return [*_node_problems(spec), *_endpoint_problems(spec), *_bgp_routing_problems(spec)]


def _host_endpoint_problems(spec: Any) -> Iterator[Problem]:
    names: dict[object, int] = {}
    namespaces: dict[object, int] = {}
    addresses: dict[object, int] = {}
    for index, endpoint in enumerate(spec.endpoints):
        at = ("endpoints", index)
        if endpoint.node is not None:
            yield Problem((*at, "node"), f"node '{endpoint.node}' needs a cluster section (allowed: add cluster: "
                                         "with the nodes, or omit node: a spec without cluster puts its endpoints "
                                         "on the host)")
        if (first := _first(names, endpoint.name, index)) is not None:
            yield Problem((*at, "name"), f"endpoint name '{endpoint.name}' is declared twice (first at "
                                         f"endpoints[{first}]; allowed: unique names)")
        namespace = endpoint.netns or endpoint.name
        if (first := _first(namespaces, namespace, index)) is not None:
            yield Problem((*at, "netns" if endpoint.netns else "name"), f"namespace '{namespace}' is already "
                          f"endpoint {spec.endpoints[first].name}'s (allowed: one namespace an endpoint)")
        for field, address in (("address", endpoint.address), ("address6", endpoint.address6)):
            if address is not None and (first := _first(addresses, address, index)) is not None:
                yield Problem((*at, field), f"{field} {address} is already used by endpoint "
                                            f"{spec.endpoints[first].name} (allowed: one endpoint an address)")


def _bgp_routing_problems(spec: Any) -> Iterator[Problem]:
    """``routing.routes: bgp``: native routing whose routes BGP learns (the bgp section has the peers)."""
    cluster = spec.cluster
    if cluster.routing.routes != "bgp":
        return
    at = ("cluster", "routing", "routes")
    if cluster.routing.mode != "native":
        yield Problem(at, "routes: bgp needs mode: native (allowed: static with mode tunnel)")
    if spec.bgp is None:
        yield Problem(at, "routes: bgp needs a bgp section with the peers (allowed: add bgp:, or routes: static)")
    if cluster.encryption is not None:
        yield Problem(at, "routes: bgp with encryption is not supported: WireGuard carries the pod networks "
                          "itself (allowed: routes: static)")


def _first(seen: dict[object, int], key: object, index: int) -> int | None:
    """The index that claimed ``key`` before ``index``, or None (and ``index`` claims it)."""
    if key in seen:
        return seen[key]
    seen[key] = index
    return None


def _node_problems(spec: Any) -> Iterator[Problem]:
    cluster = spec.cluster
    names: dict[object, int] = {}
    addresses: dict[object, int] = {}
    keys: dict[object, int] = {}
    for index, node in enumerate(cluster.nodes):
        at = ("cluster", "nodes", index)
        if node.wireguard and (first := _first(keys, node.wireguard.public_key, index)) is not None:
            yield Problem((*at, "wireguard", "publicKey"), f"node {node.name} has the public key of node "
                                                                  f"{cluster.nodes[first].name} (allowed: a key pair "
                                                                  "for each node)")
        if (first := _first(names, node.name, index)) is not None:
            yield Problem((*at, "name"), f"node name '{node.name}' is declared twice (first at "
                                                f"cluster.nodes[{first}]; allowed: unique node names)")
        for field, address in (("address", node.address), ("address6", node.address6)):
            if address is not None and (first := _first(addresses, address, index)) is not None:
                yield Problem((*at, field), f"address {address} is already the address of node "
                                                   f"{cluster.nodes[first].name} (allowed: one address a node)")
        for field, network, whole in (("podCIDR", node.pod_cidr, cluster.pod_cidr),
                                      ("podCIDR6", node.pod_cidr6, cluster.pod_cidr6)):
            if network is None:
                if whole is not None:
                    yield Problem(at, f"node {node.name} has no {field} while the cluster has one "
                                             f"(allowed: a {field} inside {whole} on every node)")
            elif whole is None:
                yield Problem((*at, field), f"node {field} {network} but the cluster has no {field} "
                                                   f"(allowed: set cluster.{field}, or drop this one)")
            elif not network.subnet_of(whole):
                yield Problem((*at, field), f"{field} {network} is outside the cluster's {whole} "
                                                   f"(allowed: a subnet of {whole})")
        if cluster.encryption is not None and node.wireguard is None:
            yield Problem(at, f"node {node.name} has no wireguard keys while the cluster encrypts (allowed: "
                                     "wireguard: {publicKey: ..., privateKeyFile: ...} from netx keygen)")
        if cluster.routing.mode == "native" and node.pod_cidr6 is not None and node.address6 is None:
            yield Problem(at, f"native routing of IPv6 needs node {node.name}'s address6 (allowed: an "
                                     "IPv6 underlay address, or mode tunnel)")
    for field, attribute in (("podCIDR", "pod_cidr"), ("podCIDR6", "pod_cidr6")):
        nodes = [(i, getattr(n, attribute)) for i, n in enumerate(cluster.nodes) if getattr(n, attribute)]
        for position, (index, network) in enumerate(nodes):
            for other_index, other in nodes[:position]:
                if network.overlaps(other):
                    yield Problem(("cluster", "nodes", index, field),
                                         f"{field} {network} overlaps {other} of node "
                                         f"{cluster.nodes[other_index].name} (allowed: disjoint pod networks)")


def _endpoint_problems(spec: Any) -> Iterator[Problem]:
    nodes = {n.name: n for n in spec.cluster.nodes}
    names: dict[object, int] = {}
    addresses: dict[object, int] = {}
    for index, endpoint in enumerate(spec.endpoints):
        at = ("endpoints", index)
        for field in ("netns", "mtu"):
            if getattr(endpoint, field) is not None:
                yield Problem((*at, field), f"{field} is derived from the cluster (allowed: omit it; the namespace "
                                            "is CLUSTER-NAME, the MTU the overlay's)")
        if (first := _first(names, endpoint.name, index)) is not None:
            yield Problem((*at, "name"), f"endpoint name '{endpoint.name}' is declared twice (first at "
                                                f"endpoints[{first}]; allowed: unique names)")
        namespace = f"{spec.cluster.name}-{endpoint.name}"
        if len(namespace) > NETNS_MAX:
            yield Problem((*at, "name"), f"namespace name '{namespace}' (cluster name, '-', endpoint name) "
                                                f"is longer than {NETNS_MAX} (allowed: shorter names)")
        node = nodes.get(endpoint.node)
        if node is None:
            named = f"node '{endpoint.node}' is not in the cluster" if endpoint.node else "an endpoint needs node"
            yield Problem((*at, "node") if endpoint.node else at, f"{named} (allowed: {', '.join(sorted(nodes))})")
            continue
        for field, address, network in (("address", endpoint.address, node.pod_cidr),
                                        ("address6", endpoint.address6, node.pod_cidr6)):
            if address is None:
                continue
            if network is None:
                yield Problem((*at, field), f"node {node.name} has no {field.replace('address', 'podCIDR')} "
                                                   f"for {address} (allowed: give the node one, or drop {field})")
            elif address not in network or address == network.network_address or (
                    network.version == 4 and address == network.broadcast_address):
                yield Problem((*at, field), f"{field} {address} is not a usable address of node "
                                                   f"{node.name}'s {network} (allowed: an address inside it, not "
                                                   "its first or last)")
            elif (first := _first(addresses, address, index)) is not None:
                yield Problem((*at, field), f"{field} {address} is already used by endpoint "
                                                   f"{spec.endpoints[first].name} (allowed: one endpoint an address)")



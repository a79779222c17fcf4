"""A cluster spec seen from one node: the common parts plus that node's own, and where each came from."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from typing import Any

from netplanx.document.fields import IfNetwork
from netplanx.engine.feature import NodeView, Section
from netplanx.features.cluster.model import Endpoint, Node

GATEWAY4 = "169.254.1.1"  # every endpoint's default gateway: an address on its host-side veth
GATEWAY6 = "fe80::1"
CLUSTER_MADE = "the cluster settings on this node"


def find_node(spec: Any, name: str) -> Node | None:
    return next((n for n in spec.cluster.nodes if n.name == name), None) if spec.cluster else None


def node_views(spec: Any, node_sections: Sequence[Section]) -> list[NodeView]:
    """One view per node: the spec with each node section merged into the top-level key of its name."""
    return [node_view(spec, node, index, node_sections) for index, node in enumerate(spec.cluster.nodes)]


def node_view(spec: Any, node: Node, index: int, node_sections: Sequence[Section]) -> NodeView:
    update: dict[str, Any] = {}
    for section in node_sections:
        if section.name not in type(spec).model_fields:
            continue  # a node-only setting (its keys): read from the node
        common, own = getattr(spec, section.name), getattr(node, section.name)
        if section.merge is not None:
            update[section.name] = section.merge(common, own, node)
        elif isinstance(common, list):
            update[section.name] = [*common, *own]
        elif isinstance(common, dict):
            update[section.name] = {**common, **own}
    counts = {name: len(getattr(spec, name)) for name, value in update.items() if isinstance(value, list)}
    commons = {name: set(getattr(spec, name)) for name, value in update.items() if isinstance(value, dict)}
    keys = {s.name: s.key for s in node_sections}

    def where(path: tuple[str | int, ...]) -> tuple[str | int, ...]:
        """Map a path inside the view back to where the value is written in the file."""
        if not path or path[0] not in keys:
            return path
        node_path = ("cluster", "nodes", index, path[0])
        if path[0] in commons:
            return path if len(path) < 2 or path[1] in commons[path[0]] else (*node_path, *path[1:])
        common = counts.get(str(path[0]))
        if common is None or len(path) < 2 or not isinstance(path[1], int) or path[1] < common:
            return path
        return (*node_path, path[1] - common, *path[2:])

    return NodeView(spec.model_copy(update=update), node, index, cluster_links(spec, node),
                    dict.fromkeys(cluster_managed_links(spec, node), CLUSTER_MADE), where)


def endpoints_of(spec: Any, node: Node | None) -> list[Endpoint]:
    """The endpoints on ``node`` (None: a spec without cluster, whose endpoints are all on the host)."""
    return [e for e in spec.endpoints if node is None or e.node == node.name]


def host_interface(endpoint: Endpoint) -> str:
    """The node-side veth of an endpoint: ``ep-NAME``, or ``ep-`` and a digest when that is too long."""
    name = f"ep-{endpoint.name}"
    return name if len(name) <= 15 else f"ep-{hashlib.sha256(endpoint.name.encode()).hexdigest()[:12]}"


def endpoint_netns(spec: Any, endpoint: Endpoint) -> str:
    return f"{spec.cluster.name}-{endpoint.name}" if spec.cluster else (endpoint.netns or endpoint.name)


def tunnel_mac(spec: Any, node: Node) -> str:
    """A stable, locally administered MAC for a node's tunnel device, derived from the cluster spec alone."""
    return node_tunnel_mac(spec.cluster.name, node.name)


def node_tunnel_mac(cluster: str, node: str) -> str:
    """The tunnel MAC of node ``node`` of cluster ``cluster``."""
    digest = hashlib.sha256(f"{cluster}/{node}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def cluster_links(spec: Any, node: Node) -> dict[str, list[IfNetwork]]:
    """Links the cluster part of the spec puts on a node, with the networks of the addresses it gives
    them (so the node's own interfaces, routes and sysctls may refer to them)."""
    cluster = spec.cluster
    if cluster is None:
        return {}
    links: dict[str, list[IfNetwork]] = {host_interface(e): [] for e in endpoints_of(spec, node)}
    underlay = cluster.underlay
    links[underlay.device] = []
    if underlay.prefix_length:
        links[underlay.device].append(ipaddress.ip_interface(f"{node.address}/{underlay.prefix_length}").network)
    if underlay.prefix_length6 and node.address6:
        links[underlay.device].append(ipaddress.ip_interface(f"{node.address6}/{underlay.prefix_length6}").network)
    if cluster.encryption is not None:
        links[cluster.encryption.wireguard.device] = []
    elif cluster.routing.mode == "tunnel":
        links[cluster.routing.tunnel.device] = []
    return links


def cluster_managed_links(spec: Any, node: Node) -> set[str]:
    """Links the cluster part creates or configures on a node (nothing else may declare them)."""
    cluster = spec.cluster
    if cluster is None:
        return set()
    managed = {host_interface(e) for e in endpoints_of(spec, node)}
    if cluster.encryption is not None:
        managed.add(cluster.encryption.wireguard.device)
    elif cluster.routing.mode == "tunnel":
        managed.add(cluster.routing.tunnel.device)
    if cluster.underlay.prefix_length or cluster.underlay.prefix_length6:
        managed.add(cluster.underlay.device)
    return managed

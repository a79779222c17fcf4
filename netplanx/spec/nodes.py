"""A cluster spec seen from one node: the common parts plus that node's own, and where each came from."""

from __future__ import annotations

import hashlib
import ipaddress

from netplanx.spec.fields import IfNetwork
from netplanx.spec.model import Endpoint, Node, Spec

LISTS = ("interfaces", "routes", "rules")
GATEWAY4 = "169.254.1.1"  # every endpoint's default gateway: an address on its host-side veth
GATEWAY6 = "fe80::1"


def find_node(spec: Spec, name: str) -> Node | None:
    return next((n for n in spec.cluster.nodes if n.name == name), None) if spec.cluster else None


def node_view(spec: Spec, node: Node) -> Spec:
    """The spec with the node's own interfaces, routes, rules and sysctls appended to the common ones."""
    update = {key: [*getattr(spec, key), *getattr(node, key)] for key in LISTS}
    update["sysctl"] = {**spec.sysctl, **node.sysctl}
    return spec.model_copy(update=update)


def view_path(spec: Spec, node_index: int, path: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Map a path inside a node view back to where the value is written in the file."""
    if not path or path[0] not in (*LISTS, "sysctl"):
        return path
    node_path = ("cluster", "nodes", node_index, path[0])
    if path[0] == "sysctl":
        return path if len(path) < 2 or path[1] in spec.sysctl else (*node_path, *path[1:])
    common = len(getattr(spec, str(path[0])))
    if len(path) < 2 or not isinstance(path[1], int) or path[1] < common:
        return path
    return (*node_path, path[1] - common, *path[2:])


def endpoints_of(spec: Spec, node: Node) -> list[Endpoint]:
    return [e for e in spec.endpoints if e.node == node.name]


def host_interface(endpoint: Endpoint) -> str:
    """The node-side veth of an endpoint: ``ep-NAME``, or ``ep-`` and a digest when that is too long."""
    name = f"ep-{endpoint.name}"
    return name if len(name) <= 15 else f"ep-{hashlib.sha256(endpoint.name.encode()).hexdigest()[:12]}"


def endpoint_netns(spec: Spec, endpoint: Endpoint) -> str:
    return f"{spec.cluster.name}-{endpoint.name}" if spec.cluster else endpoint.name


def tunnel_mac(spec: Spec, node: Node) -> str:
    """A stable, locally administered MAC for a node's tunnel device, derived from the cluster spec alone."""
    digest = hashlib.sha256(f"{spec.cluster.name}/{node.name}".encode()).digest() if spec.cluster else b"\0" * 5
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def cluster_links(spec: Spec, node: Node) -> dict[str, list[IfNetwork]]:
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


def cluster_managed_links(spec: Spec, node: Node) -> set[str]:
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

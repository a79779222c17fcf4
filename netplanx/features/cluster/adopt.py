"""Adoption of endpoints (a namespace netx recorded as ``endpoint NAME``, its veth, gateway addresses and
routes) as a host's ``endpoints``, and the note that says a namespace is a cluster node.

An endpoint is written only when its entry compiles to exactly the live objects; they are then taken out,
so the features before this one do not describe them again. netx knows a namespace is a cluster node from
its records: the history's last applied spec (a cluster spec, its file and the node), else endpoint
namespaces named CLUSTER-NAME, with the tunnel device's MAC telling which node ``--node`` is.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import ValidationError

from netplanx.document.loader import load_document
from netplanx.engine.feature import Adoption
from netplanx.engine.resource import Resource
from netplanx.errors import SpecError
from netplanx.features.cluster.compile import endpoint_resources
from netplanx.features.cluster.endpoints import PURPOSE
from netplanx.features.cluster.model import ENDPOINT_MTU, Endpoint
from netplanx.features.cluster.nodes import GATEWAY4, GATEWAY6, node_tunnel_mac

INTERFACE = "eth0"


def adopt_endpoints(adoption: Adoption) -> None:
    note = _cluster_note(adoption)
    if note:
        adoption.notes.insert(0, note)
    found = host_endpoints(adoption)
    adoption.describe([res for _entry, made in found for res in made])
    if found:
        adoption.spec["endpoints"] = [entry for entry, _made in found]


def host_endpoints(adoption: Adoption) -> list[tuple[dict[str, Any], list[Resource]]]:
    """The live endpoints a host's ``endpoints`` entry describes exactly: each entry with the live
    objects it compiles to."""
    found = []
    for res in sorted(adoption.live("endpoint"), key=lambda r: r.address):
        entry = _entry(res)
        compiled = _compiled(entry, res.attrs["netns"]) if entry else None
        made = adoption.matching(compiled) if compiled else None
        if entry and made is not None:
            found.append((entry, made))
    return found


def _entry(res: Resource) -> dict[str, Any] | None:
    """The host's endpoint entry for a live endpoint, if it has the shape netx gives endpoints."""
    a = res.attrs
    versions = [ipaddress.ip_interface(text) for text in a["addresses"]]
    v4 = [i.ip for i in versions if i.version == 4 and i.network.prefixlen == 32]
    v6 = [i.ip for i in versions if i.version == 6 and i.network.prefixlen == 128]
    if a["interface"] != INTERFACE or len(v4) != 1 or len(v6) > 1 or len(v4) + len(v6) != len(versions):
        return None
    if sorted(a["gateways"]) != sorted([GATEWAY4, *([GATEWAY6] if v6 else [])]):
        return None
    name = res.address.split(".", 1)[1]
    entry: dict[str, Any] = {"name": name}
    if a["netns"] != name:
        entry["netns"] = a["netns"]
    entry["address"] = str(v4[0])
    if v6:
        entry["address6"] = str(v6[0])
    if a["mtu"] != ENDPOINT_MTU:
        entry["mtu"] = a["mtu"]
    return entry


def _compiled(entry: dict[str, Any], namespace: str) -> list[Resource] | None:
    """What ``entry`` compiles to (None for an entry the model refuses)."""
    try:
        endpoint = Endpoint.model_validate(entry)
    except ValidationError:
        return None
    return endpoint_resources(endpoint, namespace, endpoint.mtu or ENDPOINT_MTU, dual=True)


def _cluster_note(adoption: Adoption) -> str | None:
    """What netx's records say about this namespace being a node of a cluster."""
    applied = adoption.applied
    if applied is not None:
        cluster = _cluster_name(applied.text)
        return None if cluster is None else _note(cluster, applied.node, applied.path)
    clusters = set()
    for res in adoption.live("netns"):
        purpose, namespace = res.meta.get("purpose", ""), res.attrs["name"]
        endpoint = purpose.removeprefix(PURPOSE)
        if purpose.startswith(PURPOSE) and namespace.endswith(f"-{endpoint}"):
            clusters.add(namespace[:-len(endpoint) - 1])
    if len(clusters) != 1:
        return None
    cluster = clusters.pop()
    macs = {r.attrs.get("mac") for r in adoption.live("link") if r.owned and r.attrs.get("external")}
    return _note(cluster, adoption.node if node_tunnel_mac(cluster, adoption.node) in macs else None, None)


def _note(cluster: str, node: str | None, path: str | None) -> str:
    command = f"netx plan {path or 'CLUSTER.yaml'} --node {node or 'NODE'}"
    what = f"node {node} of cluster {cluster}" if node else f"a node of cluster {cluster}"
    return (f"this namespace is {what} (netx made it from a cluster spec: {command} describes it better);\n"
            "the spec below is its state as a host")


def _cluster_name(text: str) -> str | None:
    try:
        data = load_document(text, "history").data
    except SpecError:
        return None
    cluster = data.get("cluster") if isinstance(data, dict) else None
    name = cluster.get("name") if isinstance(cluster, dict) else None
    return name if isinstance(name, str) else None

"""Adoption of the load balancer: every service in the pinned maps (backends by address), with the
program and the attachments on the endpoints' veths that a host's ``services`` make, the other devices it
runs on (a cluster node's underlay device) as ``loadBalancerDevices``, and the socket programs on a cgroup
(with the endpoints' registrations they imply) as ``socketLB``.
"""

from __future__ import annotations

from typing import Any

from netplanx.engine.feature import Adoption
from netplanx.engine.resource import Resource
from netplanx.features.cluster.adopt import host_endpoints
from netplanx.features.cluster.model import Endpoint
from netplanx.features.cluster.nodes import host_interface
from netplanx.features.services.attachments import attachment_resource
from netplanx.features.services.clients import client_resource
from netplanx.features.services.compile import XDP_MODES, device_resources
from netplanx.features.services.lbmaps import LB, split_backend
from netplanx.features.services.maglev import DEFAULT_TABLE_SIZE
from netplanx.features.services.sockets import socket_resource

MODES = {live: mode for mode, live in XDP_MODES.items() if live != "xdp"}  # xdp-native -> xdpNative


def adopt_services(adoption: Adoption) -> None:
    services = sorted(adoption.live("service"), key=lambda r: r.address)
    if not services:
        return
    adoption.spec["services"] = [_service(s) for s in services]
    adoption.describe([*services, *adoption.live("bpfprog")])
    endpoints = [entry for entry, _made in host_endpoints(adoption)]
    for entry in endpoints:
        device = host_interface(Endpoint.model_validate(entry))
        hooks = [attachment_resource(device, hook, version=LB.version) for hook in ("ingress", "egress")]
        adoption.describe(adoption.matching(hooks) or [])
    devices = []
    for device in sorted({r.attrs["device"] for r in adoption.live("datapath")}):
        entry, made = _device(adoption, device)
        if made is not None:
            devices.append(entry)
            adoption.describe(made)
    if devices:
        adoption.spec["loadBalancerDevices"] = devices
    _adopt_sockets(adoption, endpoints)


def _adopt_sockets(adoption: Adoption, endpoints: list[dict[str, Any]]) -> None:
    """``socketLB`` when the socket programs of this version are on every hook, and every endpoint's
    registration with them."""
    for live in adoption.live("socklb"):
        attached = adoption.matching([socket_resource(live.attrs["cgroup"], LB.version)])
        clients = []
        for entry in endpoints:
            endpoint = Endpoint.model_validate(entry)
            addresses = [str(a) for a in (endpoint.address, endpoint.address6) if a is not None]
            clients.append(client_resource(endpoint.name, endpoint.netns or endpoint.name, addresses))
        registered = adoption.matching(clients)
        if attached is not None and registered is not None:
            adoption.spec["socketLB"] = {"cgroup": live.attrs["cgroup"]}
            adoption.describe([*attached, *registered])


def _device(adoption: Adoption, device: str) -> tuple[dict[str, Any], list[Resource] | None]:
    """The entry for a device the load balancer runs on, with the live objects it describes exactly."""
    hooks = {r.attrs["hook"]: r for r in adoption.live("datapath") if r.attrs["device"] == device}
    first = hooks.get("xdp") or hooks.get("ingress")
    if first is None:
        return {}, None
    mode = "tc" if first.attrs["hook"] == "ingress" else MODES.get(first.attrs["mode"], "xdp")
    entry: dict[str, Any] = {"name": device, "mode": mode}
    masquerade = {key: first.attrs[key] for key in ("masquerade", "masquerade6") if first.attrs.get(key)}
    entry.update(masquerade)
    made = adoption.matching(device_resources(device, mode, LB.version, **masquerade))
    complete = made is not None and {r.address for r in hooks.values()} <= {r.address for r in made}
    return entry, made if complete else None


def _service(res: Resource) -> dict[str, Any]:
    a = res.attrs
    entry: dict[str, Any] = {"name": res.meta["name"], "vip": a["vip"]}
    if a.get("vip6"):
        entry["vip6"] = a["vip6"]
    entry["port"] = a["port"]
    if a["protocol"] != "tcp":
        entry["protocol"] = a["protocol"]
    if a["affinity"] != "none":
        entry["affinity"] = a["affinity"]
    if a["maglev"]["size"] != DEFAULT_TABLE_SIZE:
        entry["maglevTableSize"] = a["maglev"]["size"]
    entry["backends"] = [_backend(key, weight, a["port"]) for key, weight in a["backends"].items()]
    return entry


def _backend(key: str, weight: int, service_port: int) -> dict[str, Any]:
    address, port = split_backend(key)
    backend: dict[str, Any] = {"address": address}
    if port != service_port:
        backend["port"] = port
    if weight != 1:
        backend["weight"] = weight
    return backend

"""Compile the services section for one node: the load balancer's program, its entries and attachments.

The load balancer runs where client traffic enters the node: on every local endpoint's host veth
(ingress: DNAT of pod -> VIP traffic; egress: reverse NAT of the replies) and, with
``cluster.underlay.loadBalancer``, on the underlay device (tc or XDP ingress, tc egress). Every node
gets every service: the same Maglev tables everywhere send a flow to the same backend from any node. A
spec without cluster runs it on its host: on the endpoints' veths and its ``loadBalancerDevices``. With
``socketLB`` the socket programs are attached to the workloads' cgroup too, and every local endpoint's
addresses are registered for its namespace (clientIP affinity of its sockets).

A service's backends are split by family: an endpoint backend gives each VIP its address of that family
(``address`` for an IPv4 VIP, ``address6`` for an IPv6 one).
"""

from __future__ import annotations

import re
from typing import Any

from netplanx.engine.feature import NodeView
from netplanx.engine.resource import Resource
from netplanx.features.bgp.compile import advertised_path
from netplanx.features.cluster.nodes import endpoint_netns, endpoints_of, host_interface
from netplanx.features.services.attachments import attachment_resource
from netplanx.features.services.clients import client_resource
from netplanx.features.services.lbmaps import LB, MASQ_PORTS, RESERVED_PORTS, backend_key
from netplanx.features.services.programs import program_resource
from netplanx.features.services.services import family, service_resource
from netplanx.features.services.sockets import socket_resource
from netplanx.features.sysctls.sysctls import sysctl_resource

XDP_MODES = {"xdp": "xdp", "xdpGeneric": "xdp-generic", "xdpNative": "xdp-native"}


def service_resources(view: NodeView) -> list[Resource]:
    spec, node = view.spec, view.node
    if not spec.services:
        return []
    version = LB.version
    resources = [program_resource(version, LB.map_version)]
    resources += [_service(spec, service) for service in spec.services]
    for endpoint in endpoints_of(spec, node):
        device = host_interface(endpoint)
        resources += [attachment_resource(device, "ingress", version=version),
                      attachment_resource(device, "egress", version=version)]
    if node is not None and spec.cluster.underlay.load_balancer != "none":
        # replies from backends on other nodes come back through this node
        resources += device_resources(spec.cluster.underlay.device, spec.cluster.underlay.load_balancer, version,
                                      _text(node.address), _text(node.address6))
    for device in spec.load_balancer_devices:
        resources += device_resources(device.name, device.mode, version, _text(device.masquerade),
                                      _text(device.masquerade6))
    if spec.socket_lb is not None and spec.socket_lb.enabled:
        resources.append(socket_resource(spec.socket_lb.cgroup, version))
        resources += [client_resource(e.name, endpoint_netns(spec, e), [_text(a) for a in (e.address, e.address6) if a])
                      for e in endpoints_of(spec, node)]
    if any(r.kind == "datapath" and (r.attrs["masquerade"] or r.attrs["masquerade6"]) for r in resources):
        # masqueraded flows get source ports of their own: the host's sockets must never take one of them
        resources.append(sysctl_resource(RESERVED_PORTS, reserved_ports(spec.sysctl.get(RESERVED_PORTS)), merges=True))
    if spec.bgp is not None and spec.bgp.advertise.service_vips:
        vips = dict.fromkeys(str(vip) for service in spec.services  # several services may share one
                             for vip in (service.vip, service.vip6) if vip is not None)
        resources += [advertised_path(view, f"{vip}/{32 if ':' not in vip else 128}") for vip in vips]
    return resources


def _text(address: object | None) -> str | None:
    return str(address) if address is not None else None


def _service(spec: Any, service: Any) -> Resource:
    """A service with its backends of each VIP's family (an endpoint gives its address of that family)."""
    vips = [str(service.vip), *([str(service.vip6)] if service.vip6 else [])]
    families = {family(vip) for vip in vips}
    addresses = {e.name: (e.address, e.address6) for e in spec.endpoints}
    backends: dict[str, int] = {}
    endpoints: dict[str, str] = {}
    for backend in service.backends:
        candidates = addresses[backend.endpoint] if backend.endpoint else (backend.address,)
        for address in candidates:
            if address is not None and family(str(address)) in families:
                key = backend_key(str(address), backend.port or service.port)
                backends[key] = backend.weight
                if backend.endpoint:
                    endpoints[key] = backend.endpoint
    return service_resource(service.name, vip=vips[0], vip6=vips[1] if len(vips) > 1 else None, port=service.port,
                            protocol=service.protocol, affinity=service.affinity, size=service.maglev_table_size,
                            backends=backends, endpoints=endpoints)


def device_resources(device: str, mode: str, version: str, masquerade: str | None = None,
                     masquerade6: str | None = None) -> list[Resource]:
    """The load balancer on a device where clients outside come in: tc or XDP ingress, tc egress."""
    first = (attachment_resource(device, "ingress", version=version, masquerade=masquerade, masquerade6=masquerade6)
             if mode == "tc" else attachment_resource(device, "xdp", version=version, mode=XDP_MODES[mode],
                                                      masquerade=masquerade, masquerade6=masquerade6))
    resources = [first, attachment_resource(device, "egress", version=version)]
    if masquerade:
        # masqueraded packets leave the ingress hook with the host's own address as source: the device must
        # accept them (else the kernel drops them as martians)
        resources.append(sysctl_resource(f"net.ipv4.conf.{device}.accept_local", 1))
    return resources


def reserved_ports(declared: object) -> str:
    """The masquerade ports joined with the ones the spec's own sysctl section reserves (one resource holds
    the key: it must keep both), as the kernel writes the list back: sorted, merged ranges."""
    ranges = [MASQ_PORTS, *((int(first), int(last or first))
                            for first, last in re.findall(r"(\d+)(?:-(\d+))?", str(declared or "")))]
    merged: list[list[int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return ",".join(f"{first}-{last}" if last != first else str(first) for first, last in merged)

"""Checks of the services section against the rest of the spec."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from netplanx.document.problems import Problem
from netplanx.engine.feature import NodeView
from netplanx.features.interfaces.checks import declared_links
from netplanx.features.interfaces.kinds.base import names_text
from netplanx.features.services.maglev import table_size_problem


def service_problems(spec: Any) -> Iterator[Problem]:
    endpoints = {e.name: e for e in spec.endpoints}
    names: dict[str, int] = {}
    frontends: dict[tuple[str, int, str], int] = {}
    for index, service in enumerate(spec.services):
        at = ("services", index)
        if service.name in names:
            yield Problem((*at, "name"), f"service name '{service.name}' is declared twice (first at "
                                                f"services[{names[service.name]}]; allowed: unique names)")
        names.setdefault(service.name, index)
        vips = {"vip": service.vip, **({"vip6": service.vip6} if service.vip6 is not None else {})}
        if service.vip6 is not None and service.vip.version != 4:
            yield Problem((*at, "vip6"), f"vip6 makes the service dual-stack, so vip must be IPv4, not {service.vip} "
                                         "(allowed: vip IPv4 and vip6 IPv6, or one vip of either family)")
            continue
        for key, vip in vips.items():
            frontend = (str(vip), service.port, service.protocol)
            if frontend in frontends:
                yield Problem((*at, key), f"{_frontend(vip, service.port)}/{service.protocol} is already service "
                                          f"{spec.services[frontends[frontend]].name}'s (allowed: one service per "
                                          "VIP, port and protocol)")
            frontends.setdefault(frontend, index)
        yield from _backend_problems(service, at, endpoints, {vip.version: key for key, vip in vips.items()})
        if problem := table_size_problem(service.maglev_table_size, len(service.backends)):
            yield Problem((*at, "maglevTableSize"), problem)


def _frontend(address: Any, port: int) -> str:
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def _backend_problems(service: Any, at: tuple[str | int, ...], endpoints: dict[str, Any],
                      vips: dict[int, str]) -> Iterator[Problem]:
    """Each backend exists, is listed once, is not a VIP itself and has an address of a VIP's family; every
    VIP gets a backend when the service has any (a backend of the other family only: NAT46/64 is not done)."""
    seen: dict[str, int] = {}
    served: set[int] = set()
    for position, backend in enumerate(service.backends):
        where = (*at, "backends", position)
        if backend.endpoint is not None and backend.endpoint not in endpoints:
            allowed = ", ".join(sorted(endpoints)) or "no endpoints declared"
            yield Problem((*where, "endpoint"), f"endpoint '{backend.endpoint}' does not exist (allowed: {allowed})")
            continue
        found = endpoints[backend.endpoint] if backend.endpoint else None
        addresses = [a for a in ((found.address, found.address6) if found else (backend.address,)) if a is not None]
        usable = [a for a in addresses if a.version in vips]
        if not usable:
            families = " or ".join(f"IPv{version}" for version in sorted(vips))
            what = (f"endpoint '{backend.endpoint}' has no {families} address" if found else
                    f"backend {backend.address} is IPv{backend.address.version}, the service's VIP {families}")
            yield Problem(where, f"{what} (allowed: a backend of a VIP's family; vip6 gives an IPv4 service IPv6 "
                                 "backends; NAT46/64 is not supported)")
        for address in usable:
            served.add(address.version)
            key = _frontend(address, backend.port or service.port)
            vip = service.vip if address.version == service.vip.version else service.vip6
            if key == _frontend(vip, service.port):
                yield Problem(where, f"backend {key} is the service's own VIP and port: its traffic would come back "
                                     "to the load balancer (allowed: a backend address or port other than the "
                                     "VIP's)")
            if key in seen:
                yield Problem(where, f"backend {key} is listed twice (first at backends[{seen[key]}]; "
                                     "allowed: each backend once, with a weight)")
            seen.setdefault(key, position)
    for version, key in vips.items():  # a dual-stack service (one VIP: each backend says what is wrong)
        if len(vips) > 1 and service.backends and version not in served:
            yield Problem((*at, key), f"{key} {service.vip if key == 'vip' else service.vip6} has no IPv{version} "
                                      "backend: its connections would be dropped (allowed: endpoints with an "
                                      f"IPv{version} address, or address backends of IPv{version})")


def socket_problems(spec: Any) -> Iterator[Problem]:
    """socketLB (the spec's, or a node's own) needs services to balance."""
    places = [(("socketLB",), spec.socket_lb)]
    if spec.cluster is not None:
        places += [(("cluster", "nodes", index, "socketLB"), node.socket_lb)
                   for index, node in enumerate(spec.cluster.nodes)]
    for at, settings in places:
        if settings is not None and settings.enabled and not spec.services:
            yield Problem(at, "socket-level load balancing needs services (allowed: add services:, or enabled: "
                              "false)")


def device_problems(view: NodeView) -> Iterator[Problem]:
    """A host's load balancer devices: declared, once each, with services to balance, without cluster."""
    spec = view.spec
    declared = declared_links(view)
    seen: dict[str, int] = {}
    for index, device in enumerate(spec.load_balancer_devices):
        at = ("loadBalancerDevices", index)
        if spec.cluster is not None:
            yield Problem(at, "loadBalancerDevices are a host's (allowed: cluster.underlay.loadBalancer on a "
                              "cluster's nodes)")
        elif not spec.services:
            yield Problem(at, "a load balancer device needs services (allowed: add services:)")
        if device.name not in declared:
            yield Problem((*at, "name"), f"device '{device.name}' is not declared (allowed: an interface in "
                                         f"interfaces: {names_text(declared)})")
        if device.name in seen:
            yield Problem((*at, "name"), f"device '{device.name}' is listed twice (first at loadBalancerDevices"
                                         f"[{seen[device.name]}]; allowed: each device once)")
        seen.setdefault(device.name, index)

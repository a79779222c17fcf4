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
    endpoints = {e.name: str(e.address) for e in spec.endpoints}
    names: dict[str, int] = {}
    frontends: dict[tuple[str, int, str], int] = {}
    for index, service in enumerate(spec.services):
        at = ("services", index)
        if service.name in names:
            yield Problem((*at, "name"), f"service name '{service.name}' is declared twice (first at "
                                                f"services[{names[service.name]}]; allowed: unique names)")
        names.setdefault(service.name, index)
        frontend = (str(service.vip), service.port, service.protocol)
        if frontend in frontends:
            yield Problem((*at, "vip"), f"{service.vip}:{service.port}/{service.protocol} is already service "
                                               f"{spec.services[frontends[frontend]].name}'s (allowed: one service per "
                                               "VIP, port and protocol)")
        frontends.setdefault(frontend, index)
        seen: dict[str, int] = {}
        for position, backend in enumerate(service.backends):
            where = (*at, "backends", position)
            if backend.endpoint is not None and backend.endpoint not in endpoints:
                allowed = ", ".join(sorted(endpoints)) or "no endpoints declared"
                yield Problem((*where, "endpoint"),
                                     f"endpoint '{backend.endpoint}' does not exist (allowed: {allowed})")
                continue
            address = endpoints[backend.endpoint] if backend.endpoint else str(backend.address)
            key = f"{address}:{backend.port or service.port}"
            if key == f"{service.vip}:{service.port}":
                yield Problem(where, f"backend {key} is the service's own VIP and port: its traffic would come back "
                                     "to the load balancer (allowed: a backend address or port other than the "
                                     "VIP's)")
            if key in seen:
                yield Problem(where, f"backend {key} is listed twice (first at backends[{seen[key]}]; "
                                            "allowed: each backend once, with a weight)")
            seen.setdefault(key, position)
        if problem := table_size_problem(service.maglev_table_size, len(service.backends)):
            yield Problem((*at, "maglevTableSize"), problem)


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

"""The kernel provider: namespaces, links, addresses, endpoints, routes, neighbours, rules and sysctls."""

from __future__ import annotations

from netplanx.engine.resource import ResourceType
from netplanx.providers.kernel.addresses import AddressType
from netplanx.providers.kernel.context import KernelContext
from netplanx.providers.kernel.endpoints import EndpointType
from netplanx.providers.kernel.links import LinkType
from netplanx.providers.kernel.namespaces import NamespaceType
from netplanx.providers.kernel.neighbours import NeighbourType
from netplanx.providers.kernel.routes import RouteType
from netplanx.providers.kernel.rules import RuleType
from netplanx.providers.kernel.sysctls import SysctlType


def kernel_types(ctx: KernelContext) -> list[ResourceType]:
    """The resource types of this provider, bound to one namespace's sockets."""
    return [NamespaceType(ctx), LinkType(ctx), AddressType(ctx), EndpointType(ctx), RouteType(ctx),
            NeighbourType(ctx), RuleType(ctx), SysctlType(ctx)]

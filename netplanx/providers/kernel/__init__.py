"""The kernel provider: links, addresses, routes, rules and sysctls of one network namespace."""

from __future__ import annotations

from netplanx.engine.resource import ResourceType
from netplanx.providers.kernel.addresses import AddressType
from netplanx.providers.kernel.context import KernelContext
from netplanx.providers.kernel.links import LinkType
from netplanx.providers.kernel.routes import RouteType
from netplanx.providers.kernel.rules import RuleType
from netplanx.providers.kernel.sysctls import SysctlType


def kernel_types(ctx: KernelContext) -> list[ResourceType]:
    """The resource types of this provider, bound to one namespace's sockets."""
    return [LinkType(ctx), AddressType(ctx), RouteType(ctx), RuleType(ctx), SysctlType(ctx)]

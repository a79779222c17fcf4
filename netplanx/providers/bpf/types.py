"""The load balancer's resource types, sharing one view of the scope's pins."""

from __future__ import annotations

from netplanx.engine.resource import ResourceType
from netplanx.providers.bpf.datapath import DatapathType
from netplanx.providers.bpf.services import LbContext, ProgramType, ServiceType
from netplanx.providers.kernel.context import KernelContext


def lb_types(ctx: KernelContext, scope: str) -> list[ResourceType]:
    lb = LbContext(scope)
    return [ProgramType(ctx, lb), ServiceType(ctx, lb), DatapathType(ctx, lb)]

"""The WireGuard provider: encryption between nodes, kernel WireGuard or wireguard-go."""

from __future__ import annotations

from netplanx.engine.resource import ResourceType
from netplanx.providers.kernel.context import KernelContext
from netplanx.providers.wireguard.types import PeerType, WireguardContext, WireguardType


def wireguard_types(ctx: KernelContext, scope: str) -> list[ResourceType]:
    wg = WireguardContext(ctx, scope)
    return [WireguardType(ctx, wg), PeerType(ctx, wg)]

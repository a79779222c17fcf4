"""``ip6gre``: a GRE tunnel over IPv6 carrying IP packets (needs a kernel with IPv6 GRE)."""

from __future__ import annotations

from typing import ClassVar

from netplanx.features.interfaces.kinds.iptunnel import GRE, GRE_KEY, TunnelKind
from netplanx.system.rtnl import Table


class Ip6greKind(TunnelKind):
    """A GRE tunnel over IPv6 carrying IP packets (needs a kernel with IPv6 GRE)."""

    type = "ip6gre"
    config = "CONFIG_IPV6_GRE"
    prefix = "ip6gre"
    version = 6
    keyed = True
    info_data: ClassVar[Table] = GRE

    def key_flags(self) -> int:
        """pyroute2 encodes ip6gre's flags in host order; the kernel reads them big-endian."""
        return GRE_KEY >> 8


KIND = Ip6greKind()

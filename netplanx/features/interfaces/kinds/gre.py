"""``gre``: a GRE tunnel over IPv4 carrying IP packets (protocol 47; needs a kernel with GRE)."""

from __future__ import annotations

from typing import ClassVar

from netplanx.features.interfaces.kinds.iptunnel import GRE, TunnelKind
from netplanx.system.rtnl import Table


class GreKind(TunnelKind):
    """A GRE tunnel over IPv4 carrying IP packets (protocol 47; needs a kernel with GRE)."""

    type = "gre"
    config = "CONFIG_NET_IPGRE"
    prefix = "gre"
    version = 4
    keyed = True
    info_data: ClassVar[Table] = GRE


KIND = GreKind()

"""``gretap``: a GRE tunnel over IPv4 carrying Ethernet frames (a bridge port; needs a kernel with GRE)."""

from __future__ import annotations

from typing import ClassVar

from netplanx.features.interfaces.kinds.iptunnel import GRE, TunnelKind
from netplanx.system.rtnl import Table


class GretapKind(TunnelKind):
    """A GRE tunnel over IPv4 carrying Ethernet frames (a bridge port; needs a kernel with GRE)."""

    type = "gretap"
    config = "CONFIG_NET_IPGRE"
    prefix = "gre"  # pyroute2 names the attributes of both gre and gretap gre_*
    version = 4
    keyed = True
    info_data: ClassVar[Table] = GRE


KIND = GretapKind()

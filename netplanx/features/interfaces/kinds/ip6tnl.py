"""``ip6tnl``: An IPv4 or IPv6 in IPv6 tunnel (needs a kernel with IPv6 tunnels)."""

from __future__ import annotations

from typing import ClassVar

from netplanx.features.interfaces.kinds.iptunnel import IPTUN, TunnelKind
from netplanx.system.rtnl import Table


class Ip6tnlKind(TunnelKind):
    """An IPv4 or IPv6 in IPv6 tunnel (needs a kernel with IPv6 tunnels)."""

    type = "ip6tnl"
    config = "CONFIG_IPV6_TUNNEL"
    prefix = "ip6tnl"
    version = 6
    keyed = False
    info_data: ClassVar[Table] = IPTUN


KIND = Ip6tnlKind()

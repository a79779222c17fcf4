"""``sit``: An IPv6-in-IPv4 tunnel (protocol 41; needs a kernel with SIT)."""

from __future__ import annotations

from typing import ClassVar

from netplanx.features.interfaces.kinds.iptunnel import IPTUN, TunnelKind
from netplanx.system.rtnl import Table


class SitKind(TunnelKind):
    """An IPv6-in-IPv4 tunnel (protocol 41; needs a kernel with SIT)."""

    type = "sit"
    config = "CONFIG_IPV6_SIT"
    prefix = "sit"
    version = 4
    keyed = False
    info_data: ClassVar[Table] = IPTUN


KIND = SitKind()

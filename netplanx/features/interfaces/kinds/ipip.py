"""``ipip``: An IPv4-in-IPv4 tunnel (protocol 4; needs a kernel with IPIP)."""

from __future__ import annotations

from typing import ClassVar

from netplanx.features.interfaces.kinds.iptunnel import IPTUN, TunnelKind
from netplanx.system.rtnl import Table


class IpipKind(TunnelKind):
    """An IPv4-in-IPv4 tunnel (protocol 4; needs a kernel with IPIP)."""

    type = "ipip"
    config = "CONFIG_NET_IPIP"
    prefix = "ipip"
    version = 4
    keyed = False
    info_data: ClassVar[Table] = IPTUN


KIND = IpipKind()

"""``ipip``: An IPv4-in-IPv4 tunnel (protocol 4; needs a kernel with IPIP)."""

from __future__ import annotations

import functools
from typing import ClassVar

from netplanx.features.interfaces.kinds.iptunnel import IPTUN, TunnelKind, tunnel_model
from netplanx.system.rtnl import Table


@functools.cache
def _model() -> type:
    """The spec model (pydantic is imported only when a spec is validated)."""
    return tunnel_model("Ipip", "ipip", 4, False,
                        "An IPv4-in-IPv4 tunnel (protocol 4; needs a kernel with IPIP).")


class IpipKind(TunnelKind):
    type = "ipip"
    config = "CONFIG_NET_IPIP"
    prefix = "ipip"
    keyed = False
    info_data: ClassVar[Table] = IPTUN

    def model(self) -> type:
        return _model()


KIND = IpipKind()

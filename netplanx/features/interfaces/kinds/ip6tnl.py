"""``ip6tnl``: An IPv4 or IPv6 in IPv6 tunnel (needs a kernel with IPv6 tunnels)."""

from __future__ import annotations

import functools
from typing import ClassVar

from netplanx.features.interfaces.kinds.iptunnel import IPTUN, TunnelKind, tunnel_model
from netplanx.system.rtnl import Table


@functools.cache
def _model() -> type:
    """The spec model (pydantic is imported only when a spec is validated)."""
    return tunnel_model("Ip6tnl", "ip6tnl", 6, False,
                        "An IPv4 or IPv6 in IPv6 tunnel (needs a kernel with IPv6 tunnels).")


class Ip6tnlKind(TunnelKind):
    type = "ip6tnl"
    config = "CONFIG_IPV6_TUNNEL"
    prefix = "ip6tnl"
    keyed = False
    info_data: ClassVar[Table] = IPTUN

    def model(self) -> type:
        return _model()


KIND = Ip6tnlKind()

"""``ip6gre``: a GRE tunnel over IPv6 carrying IP packets (needs a kernel with IPv6 GRE)."""

from __future__ import annotations

import functools
from typing import ClassVar

from netplanx.features.interfaces.kinds.iptunnel import GRE, GRE_KEY, TunnelKind, tunnel_model
from netplanx.system.rtnl import Table


@functools.cache
def _model() -> type:
    """The spec model (pydantic is imported only when a spec is validated)."""
    return tunnel_model("Ip6gre", "ip6gre", 6, True,
                        "A GRE tunnel over IPv6 carrying IP packets (needs a kernel with IPv6 GRE).")


class Ip6greKind(TunnelKind):
    type = "ip6gre"
    config = "CONFIG_IPV6_GRE"
    prefix = "ip6gre"
    keyed = True
    info_data: ClassVar[Table] = GRE

    def model(self) -> type:
        return _model()

    def key_flags(self) -> int:
        """pyroute2 encodes ip6gre's flags in host order; the kernel reads them big-endian."""
        return GRE_KEY >> 8


KIND = Ip6greKind()

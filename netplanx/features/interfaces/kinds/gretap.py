"""``gretap``: a GRE tunnel over IPv4 carrying Ethernet frames (a bridge port; needs a kernel with GRE)."""

from __future__ import annotations

import functools
from typing import ClassVar

from netplanx.features.interfaces.kinds.iptunnel import GRE, TunnelKind, tunnel_model
from netplanx.system.rtnl import Table


@functools.cache
def _model() -> type:
    """The spec model (pydantic is imported only when a spec is validated)."""
    return tunnel_model("Gretap", "gretap", 4, True,
                        "A GRE tunnel over IPv4 carrying Ethernet frames (a bridge port; needs a kernel with GRE).")


class GretapKind(TunnelKind):
    type = "gretap"
    config = "CONFIG_NET_IPGRE"
    prefix = "gre"
    keyed = True
    info_data: ClassVar[Table] = GRE

    def model(self) -> type:
        return _model()


KIND = GretapKind()

"""``sit``: An IPv6-in-IPv4 tunnel (protocol 41; needs a kernel with SIT)."""

from __future__ import annotations

import functools
from typing import ClassVar

from netplanx.features.interfaces.kinds.iptunnel import IPTUN, TunnelKind, tunnel_model
from netplanx.system.rtnl import Table


@functools.cache
def _model() -> type:
    """The spec model (pydantic is imported only when a spec is validated)."""
    return tunnel_model("Sit", "sit", 4, False,
                        "An IPv6-in-IPv4 tunnel (protocol 41; needs a kernel with SIT).")


class SitKind(TunnelKind):
    type = "sit"
    config = "CONFIG_IPV6_SIT"
    prefix = "sit"
    keyed = False
    info_data: ClassVar[Table] = IPTUN

    def model(self) -> type:
        return _model()


KIND = SitKind()

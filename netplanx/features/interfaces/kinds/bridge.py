"""``bridge``: a Linux bridge; ports join it with ``master``."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from netplanx.features.interfaces.kinds.base import IndexOf, LinkKind, LinkReading
from netplanx.system.rtnl import Table, u32


@functools.cache
def _model() -> type:
    """The spec model (pydantic is imported only when a spec is validated)."""
    from pydantic import Field

    from netplanx.features.interfaces.kinds.common import InterfaceBase

    class Bridge(InterfaceBase):
        """A Linux bridge."""

        type: Literal["bridge"]
        stp: bool = Field(False, description="Spanning tree protocol.")

    return Bridge


class BridgeKind(LinkKind):
    type = "bridge"
    required = True
    takes_members = True
    disruption: ClassVar[Mapping[str, str]] = {"stp": "link flap"}
    info_data: ClassVar[Table] = {5: ("IFLA_BR_STP_STATE", u32)}

    def model(self) -> type:
        return _model()

    def compile(self, interface: Any) -> dict[str, Any]:
        return {"stp": interface.stp}

    def decode(self, message: Any, data: Any, reading: LinkReading) -> dict[str, Any]:
        return {"stp": bool(data.get_attr("IFLA_BR_STP_STATE"))} if data is not None else {}

    def settings(self, attrs: Mapping[str, Any], index_of: IndexOf) -> dict[str, Any]:
        return {"br_stp_state": int(attrs.get("stp", False))}

    def update_settings(self, attrs: Mapping[str, Any], changed: set[str], index_of: IndexOf) -> dict[str, Any]:
        return self.settings(attrs, index_of) if "stp" in changed else {}

    def adopt(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return {"stp": True} if attrs.get("stp") else {}


KIND = BridgeKind()

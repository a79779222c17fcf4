"""``bridge``: a Linux bridge; ports join it with ``master``."""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

from netplanx.features.interfaces.kinds.base import IndexOf, LinkKind, LinkReading
from netplanx.system.netlink import attr
from netplanx.system.rtnl import Table, u32

IFLA_BR_STP_STATE = 5


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
    batched = True
    disruption: ClassVar[Mapping[str, str]] = {"stp": "link flap"}
    info_data: ClassVar[Table] = {IFLA_BR_STP_STATE: ("IFLA_BR_STP_STATE", u32)}

    def model(self) -> type:
        return _model()

    def compile(self, interface: Any) -> dict[str, Any]:
        return {"stp": interface.stp}

    def decode(self, message: Any, data: Any, reading: LinkReading) -> dict[str, Any]:
        return {"stp": bool(data.get_attr("IFLA_BR_STP_STATE"))} if data is not None else {}


    def creation_data(self, attrs: Mapping[str, Any], netns_fd: Callable[[str], int]) -> bytes:
        return attr(IFLA_BR_STP_STATE, struct.pack("=I", int(attrs.get("stp", False))))

    def update_settings(self, attrs: Mapping[str, Any], changed: set[str], index_of: IndexOf) -> dict[str, Any]:
        return {"br_stp_state": int(attrs.get("stp", False))} if "stp" in changed else {}

    def adopt(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return {"stp": True} if attrs.get("stp") else {}


KIND = BridgeKind()

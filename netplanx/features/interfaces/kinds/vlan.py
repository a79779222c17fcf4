"""``vlan``: an 802.1Q or 802.1ad VLAN on a parent link (a NIC, a bond, a bridge)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from netplanx.features.interfaces.kinds.base import IndexOf, LinkKind, LinkReading
from netplanx.system.rtnl import Table, be16, u16

PROTOCOLS = {"802.1Q": 0x8100, "802.1ad": 0x88A8}
PROTOCOL_NAMES = {number: name for name, number in PROTOCOLS.items()}


@functools.cache
def _model() -> type:
    """The spec model (pydantic is imported only when a spec is validated)."""
    from pydantic import Field

    from netplanx.document.fields import IfName
    from netplanx.features.interfaces.kinds.common import InterfaceBase

    class Vlan(InterfaceBase):
        """A VLAN on a parent link (needs a kernel with 802.1Q VLANs)."""

        type: Literal["vlan"]
        parent: IfName = Field(description="The link the VLAN's tagged frames go through.")
        id: int = Field(ge=1, le=4094, description="VLAN id (1-4094).")
        protocol: Literal["802.1Q", "802.1ad"] = Field("802.1Q", description="Tag protocol (802.1ad: QinQ).")

    return Vlan


class VlanKind(LinkKind):
    type = "vlan"
    config = "CONFIG_VLAN_8021Q"
    replace_on: ClassVar[frozenset[str]] = frozenset({"type", "parent", "id", "protocol"})
    lower = "parent"
    info_data: ClassVar[Table] = {1: ("IFLA_VLAN_ID", u16), 5: ("IFLA_VLAN_PROTOCOL", be16)}

    def model(self) -> type:
        return _model()

    def compile(self, interface: Any) -> dict[str, Any]:
        return {"parent": interface.parent, "id": interface.id, "protocol": interface.protocol}

    def decode(self, message: Any, data: Any, reading: LinkReading) -> dict[str, Any]:
        protocol = data.get_attr("IFLA_VLAN_PROTOCOL") if data is not None else None
        return {"parent": reading.names.get(message.get_attr("IFLA_LINK")),
                "id": data.get_attr("IFLA_VLAN_ID") if data is not None else None,
                "protocol": PROTOCOL_NAMES.get(protocol, protocol)}

    def settings(self, attrs: Mapping[str, Any], index_of: IndexOf) -> dict[str, Any]:
        return {"link": index_of(attrs["parent"]), "vlan_id": attrs["id"],
                "vlan_protocol": PROTOCOLS[attrs["protocol"]]}

    def adopt(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        entry = {"parent": attrs["parent"], "id": attrs["id"]}
        if attrs["protocol"] != "802.1Q":
            entry["protocol"] = attrs["protocol"]
        return entry


KIND = VlanKind()

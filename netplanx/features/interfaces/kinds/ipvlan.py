"""``ipvlan``: links that share their parent's MAC address, switched by IP address (L2, L3 or L3S mode)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from netplanx.features.interfaces.kinds.base import IndexOf, LinkKind, LinkReading
from netplanx.system.rtnl import Table, u16

MODES = {"l2": 0, "l3": 1, "l3s": 2}  # IFLA_IPVLAN_MODE values
MODE_NAMES = {number: name for name, number in MODES.items()}


@functools.cache
def _model() -> type:
    """The spec model (pydantic is imported only when a spec is validated)."""
    from pydantic import Field

    from netplanx.document.fields import IfName
    from netplanx.features.interfaces.kinds.common import InterfaceBase

    class Ipvlan(InterfaceBase):
        """An ipvlan link on a parent (needs a kernel with ipvlan)."""

        type: Literal["ipvlan"]
        parent: IfName = Field(description="The lower device.")
        mode: Literal["l2", "l3", "l3s"] = Field("l3", description="l2, l3 (default) or l3s.")

    return Ipvlan


class IpvlanKind(LinkKind):
    type = "ipvlan"
    config = "CONFIG_IPVLAN"
    replace_on: ClassVar[frozenset[str]] = frozenset({"type", "parent"})
    disruption: ClassVar[Mapping[str, str]] = {"mode": "link flap"}
    lower = "parent"
    info_data: ClassVar[Table] = {1: ("IFLA_IPVLAN_MODE", u16)}

    def model(self) -> type:
        return _model()

    def compile(self, interface: Any) -> dict[str, Any]:
        return {"parent": interface.parent, "mode": interface.mode}

    def decode(self, message: Any, data: Any, reading: LinkReading) -> dict[str, Any]:
        mode = data.get_attr("IFLA_IPVLAN_MODE") if data is not None else None
        return {"parent": reading.names.get(message.get_attr("IFLA_LINK")), "mode": MODE_NAMES.get(mode, mode)}

    def settings(self, attrs: Mapping[str, Any], index_of: IndexOf) -> dict[str, Any]:
        return {"link": index_of(attrs["parent"]), "ipvlan_mode": MODES[attrs["mode"]]}

    def update_settings(self, attrs: Mapping[str, Any], changed: set[str], index_of: IndexOf) -> dict[str, Any]:
        return {"ipvlan_mode": MODES[attrs["mode"]]} if "mode" in changed else {}

    def adopt(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        entry = {"parent": attrs["parent"]}
        if attrs["mode"] != "l3":
            entry["mode"] = attrs["mode"]
        return entry


KIND = IpvlanKind()

"""``macvlan``: a link with its own MAC address on a parent link."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from netplanx.features.interfaces.kinds.base import IndexOf, LinkKind, LinkReading
from netplanx.system.rtnl import Table, u32

MODES = {1: "private", 2: "vepa", 4: "bridge", 8: "passthru", 16: "source"}  # IFLA_MACVLAN_MODE values


@functools.cache
def _model() -> type:
    """The spec model (pydantic is imported only when a spec is validated)."""
    from pydantic import Field

    from netplanx.document.fields import IfName
    from netplanx.features.interfaces.kinds.common import InterfaceBase

    class Macvlan(InterfaceBase):
        """A macvlan device on a parent interface."""

        type: Literal["macvlan"]
        parent: IfName = Field(description="The lower device.")
        mode: Literal["private", "vepa", "bridge", "passthru", "source"] = Field("bridge", description="Macvlan mode.")

    return Macvlan


class MacvlanKind(LinkKind):
    type = "macvlan"
    replace_on: ClassVar[frozenset[str]] = frozenset({"type", "parent"})
    disruption: ClassVar[Mapping[str, str]] = {"mode": "link flap"}
    lower = "parent"
    info_data: ClassVar[Table] = {1: ("IFLA_MACVLAN_MODE", lambda data: MODES.get(u32(data), str(u32(data))))}

    def model(self) -> type:
        return _model()

    def compile(self, interface: Any) -> dict[str, Any]:
        return {"parent": interface.parent, "mode": interface.mode}

    def decode(self, message: Any, data: Any, reading: LinkReading) -> dict[str, Any]:
        return {"parent": reading.names.get(message.get_attr("IFLA_LINK")),
                "mode": data.get_attr("IFLA_MACVLAN_MODE") if data is not None else None}

    def settings(self, attrs: Mapping[str, Any], index_of: IndexOf) -> dict[str, Any]:
        return {"link": index_of(attrs["parent"]), "macvlan_mode": attrs["mode"]}

    def update_settings(self, attrs: Mapping[str, Any], changed: set[str], index_of: IndexOf) -> dict[str, Any]:
        return {"macvlan_mode": attrs["mode"]} if "mode" in changed else {}

    def adopt(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return {"parent": attrs["parent"], "mode": attrs["mode"]}


KIND = MacvlanKind()

"""``veth``: a pair of links; the peer may live in another namespace (then it is part of this resource)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal

from netplanx.document.problems import Problem
from netplanx.features.interfaces.kinds.base import IndexOf, LinkKind, LinkReading


@functools.cache
def _model() -> type:
    """The spec model (pydantic is imported only when a spec is validated)."""
    from pydantic import Field

    from netplanx.document.fields import IfName, NetnsName, SpecModel
    from netplanx.features.interfaces.kinds.common import InterfaceBase

    class VethPeer(SpecModel):
        """The other end of a veth pair."""

        name: IfName
        netns: NetnsName | None = Field(None, description="Namespace the peer is placed in (default: the same one).")

    class Veth(InterfaceBase):
        """A veth pair; the peer may live in another namespace."""

        type: Literal["veth"]
        peer: VethPeer

    return Veth


class VethKind(LinkKind):
    type = "veth"
    required = True
    replace_on: ClassVar[frozenset[str]] = frozenset({"type", "peer"})

    def model(self) -> type:
        return _model()

    def compile(self, interface: Any) -> dict[str, Any]:
        return {"peer": {"name": interface.peer.name, "netns": interface.peer.netns}}

    def decode(self, message: Any, data: Any, reading: LinkReading) -> dict[str, Any]:
        return {"peer": reading.peer(message)}

    def settings(self, attrs: Mapping[str, Any], index_of: IndexOf) -> dict[str, Any]:
        peer: dict[str, Any] = {"ifname": attrs["peer"]["name"]}
        if attrs["peer"].get("netns"):
            peer["net_ns_fd"] = attrs["peer"]["netns"]
        if attrs.get("mtu"):
            peer["mtu"] = attrs["mtu"]
        return {"peer": peer}

    def adopt(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return {"peer": {k: v for k, v in attrs["peer"].items() if v is not None}}

    def check(self, interface: Any, index: int, declared: set[str]) -> Iterable[Problem]:
        return ()


def same_namespace_peers(interfaces: Iterable[Any]) -> dict[str, str]:
    """Same-namespace veth peer name -> the veth that creates it (a peer may be configured as a device)."""
    return {i.peer.name: i.name for i in interfaces if i.type == "veth" and i.peer.netns is None}


KIND = VethKind()

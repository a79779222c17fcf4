"""``veth``: a pair of links; the peer may live in another namespace (then it is part of this resource)."""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Literal

from netplanx.document.problems import Problem
from netplanx.features.interfaces.kinds.base import LinkKind, LinkReading
from netplanx.system.netlink import attr
from netplanx.system.rtnl import IFLA_IFNAME, IFLA_MTU, IFLA_NET_NS_FD, asciiz, link_body

VETH_INFO_PEER = 1


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
    batched = True
    replace_on: ClassVar[frozenset[str]] = frozenset({"type", "peer"})

    def model(self) -> type:
        return _model()

    def compile(self, interface: Any) -> dict[str, Any]:
        return {"peer": {"name": interface.peer.name, "netns": interface.peer.netns}}

    def decode(self, message: Any, data: Any, reading: LinkReading) -> dict[str, Any]:
        return {"peer": reading.peer(message)}

    def creation_data(self, attrs: Mapping[str, Any], netns_fd: Callable[[str], int]) -> bytes:
        """VETH_INFO_PEER: the peer's ifinfomsg, name, namespace and MTU."""
        peer = attrs["peer"]
        fields = {IFLA_IFNAME: asciiz(peer["name"])}
        if peer.get("netns"):
            fields[IFLA_NET_NS_FD] = struct.pack("=I", netns_fd(peer["netns"]))
        if attrs.get("mtu"):
            fields[IFLA_MTU] = struct.pack("=I", attrs["mtu"])
        return attr(VETH_INFO_PEER, link_body(fields))

    def adopt(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return {"peer": {k: v for k, v in attrs["peer"].items() if v is not None}}

    def check(self, interface: Any, index: int, declared: set[str]) -> Iterable[Problem]:
        return ()


def same_namespace_peers(interfaces: Iterable[Any]) -> dict[str, str]:
    """Same-namespace veth peer name -> the veth that creates it (a peer may be configured as a device)."""
    return {i.peer.name: i.name for i in interfaces if i.type == "veth" and i.peer.netns is None}


KIND = VethKind()

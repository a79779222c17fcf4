"""Compile the interfaces of a host's view into link and address resources."""

from __future__ import annotations

from typing import Any

from netplanx.engine.feature import NodeView
from netplanx.engine.resource import Resource
from netplanx.features.interfaces.addresses import address_resource
from netplanx.features.interfaces.kinds.catalog import KINDS
from netplanx.features.interfaces.kinds.veth import same_namespace_peers
from netplanx.features.interfaces.links import link_address


def interface_resources(view: NodeView) -> list[Resource]:
    resources: list[Resource] = []
    peers = same_namespace_peers(view.spec.interfaces)
    by_name = {i.name: i for i in view.spec.interfaces}
    for interface in view.spec.interfaces:
        link = link_resource(interface)
        meta: dict[str, Any] = {}
        if interface.name in peers:  # created by its veth: plan it after that one
            meta["requires"] = [link_address(peers[interface.name])]
        if interface.type == "veth" and interface.peer.netns is None:  # links on its peer end come after it
            meta["provides"] = [link_address(interface.peer.name)]
        master = by_name.get(interface.master or "")
        if master is not None:  # how it joins (a bond takes members only while they are down)
            meta["master_kind"] = master.type
            if getattr(master, "primary", None) == interface.name:
                meta["primary"] = True  # set when it joins its bond
        if meta:
            link = Resource(link.kind, link.address, link.attrs, meta=meta)
        resources.append(link)
        resources += [address_resource(interface.name, address) for address in interface.addresses]
    return resources


def link_resource(interface: Any) -> Resource:
    kind = KINDS[interface.type]
    attrs: dict[str, Any] = {"name": interface.name, "state": interface.state, "master": interface.master}
    if kind.created:
        attrs["type"] = interface.type
    if interface.mtu is not None:
        attrs["mtu"] = interface.mtu
    if interface.mac is not None:
        attrs["mac"] = interface.mac
    attrs.update(kind.compile(interface))
    return Resource("link", link_address(interface.name), attrs)

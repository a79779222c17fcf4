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
    for interface in view.spec.interfaces:
        link = link_resource(interface)
        if interface.name in peers:  # created by its veth: plan it after that one
            link = Resource(link.kind, link.address, link.attrs,
                            meta={"requires": [link_address(peers[interface.name])]})
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

"""Checks of the interfaces a host's view declares: unique names and addresses, masters and their members,
lower devices."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from netplanx.document.problems import Problem
from netplanx.engine.feature import NodeView
from netplanx.features.interfaces.kinds.base import names_text
from netplanx.features.interfaces.kinds.catalog import KINDS
from netplanx.features.interfaces.kinds.veth import same_namespace_peers


def declared_links(view: NodeView) -> set[str]:
    """Names of the links that exist in the namespace once the view is applied."""
    interfaces = view.spec.interfaces
    names = {i.name for i in interfaces} | set(view.links)
    names |= {i.peer.name for i in interfaces if i.type == "veth" and i.peer.netns is None}
    return names


def link_networks(view: NodeView) -> dict[str, list[Any]]:
    """Link name -> the networks of the addresses it will have."""
    networks = {name: list(nets) for name, nets in view.links.items()}
    for interface in view.spec.interfaces:
        networks.setdefault(interface.name, []).extend(ipaddress.ip_interface(a).network for a in interface.addresses)
    return networks


def interface_problems(view: NodeView) -> Iterator[Problem]:
    spec = view.spec
    seen: dict[str, int] = {}
    peers = same_namespace_peers(spec.interfaces)
    configured: dict[str, int] = {}
    for index, interface in enumerate(spec.interfaces):
        if interface.type == "device" and interface.name in peers:  # configures a veth's peer end
            if interface.name in configured:
                yield Problem(("interfaces", index, "name"),
                              f"interface name '{interface.name}' is declared twice (first at "
                              f"interfaces[{configured[interface.name]}]; allowed: unique names in a namespace)")
            configured.setdefault(interface.name, index)
            continue
        if interface.name in view.managed:
            underlay = "; set the underlay through cluster.underlay" if view.node is not None else ""
            yield Problem(("interfaces", index, "name"), f"interface '{interface.name}' is created and configured by "
                          f"{view.managed[interface.name]} (allowed: another name{underlay})")
        names = [("name", interface.name)]
        if interface.type == "veth" and interface.peer.netns is None:
            names.append(("peer", interface.peer.name))
        for field, name in names:
            path = ("interfaces", index, field) if field == "name" else ("interfaces", index, "peer", "name")
            if name in seen:
                yield Problem(path, f"interface name '{name}' is declared twice (first at interfaces[{seen[name]}]; "
                              "allowed: unique names in a namespace)")
            seen.setdefault(name, index)
    by_name = {i.name: i for i in spec.interfaces}
    declared = declared_links(view)
    masters = names_text(i.name for i in spec.interfaces if KINDS[i.type].takes_members)
    owners: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, str] = {}
    for index, interface in enumerate(spec.interfaces):
        if interface.master is not None:
            master = by_name.get(interface.master)
            path = ("interfaces", index, "master")
            if interface.master == interface.name:
                yield Problem(path, f"interface '{interface.name}' cannot be its own master (allowed: a bridge, bond "
                              "or vrf)")
            elif master is None:
                yield Problem(path, f"master '{interface.master}' is not declared (allowed: a bridge, bond or vrf in "
                              f"interfaces: {masters})")
            elif not KINDS[master.type].takes_members:
                yield Problem(path, f"master '{interface.master}' is a {master.type}, not a bridge, bond or vrf "
                              f"(allowed: {masters})")
            else:
                yield from KINDS[master.type].check_member(interface, index, master)
        if KINDS[interface.type].takes_members:
            members = [i for i in spec.interfaces if i.master == interface.name]
            yield from KINDS[interface.type].check_members(interface, index, members)
        yield from KINDS[interface.type].check(interface, index, declared)
        for position, text in enumerate(interface.addresses):
            ip = ipaddress.ip_interface(text).ip
            if ip.is_link_local:
                continue  # scoped to its link: the same one may be on every link (an endpoint veth's gateway)
            if ip in owners:
                yield Problem(("interfaces", index, "addresses", position),
                              f"address {ip} is already assigned to '{owners[ip]}' (allowed: each address once)")
            owners.setdefault(ip, interface.name)

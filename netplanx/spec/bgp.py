"""Compile the bgp sections into resources: gobgpd's global configuration, its peers and its paths."""

from __future__ import annotations

from netplanx.engine.resource import Resource
from netplanx.providers.bgp.resources import global_resource, path_resource, peer_resource
from netplanx.spec.model import BgpPeer, BgpPrefix, Node, Spec
from netplanx.spec.services import Service


def bgp_resources(spec: Spec, node: Node | None) -> list[Resource]:
    """What the spec asks of this node's gobgpd (``node``: None outside a cluster)."""
    bgp = spec.bgp
    if bgp is None:
        return []
    own = node.bgp if node is not None else None
    router_id = (own and own.router_id) or bgp.router_id or (node.address if node else None)
    resources = [global_resource(asn=(own and own.asn) or bgp.asn, router_id=str(router_id),
                                 listen_port=bgp.listen_port, api=bgp.api)]
    resources += [_peer(peer, bgp.api) for peer in [*bgp.peers, *(own.peers if own else ())]]
    common = bgp.advertise.communities
    prefixes = list(bgp.advertise.prefixes)
    if node is not None and bgp.advertise.pod_cidr:
        prefixes += [BgpPrefix(prefix=cidr) for cidr in (node.pod_cidr, node.pod_cidr6) if cidr is not None]
    prefixes += own.prefixes if own else []
    if bgp.advertise.service_vips:
        prefixes += [BgpPrefix(prefix=f"{service.vip}/{service.vip.max_prefixlen}")
                     for service in _unique_vips(spec)]
    resources += [path_resource(str(p.prefix), next_hop=str(p.next_hop) if p.next_hop else None,
                                communities=[*common, *p.communities], api=bgp.api) for p in prefixes]
    return resources


def _unique_vips(spec: Spec) -> list[Service]:
    """One service per virtual IP (several services may share one, on different ports)."""
    seen: dict[str, Service] = {}
    for service in spec.services:
        seen.setdefault(str(service.vip), service)
    return list(seen.values())


def _peer(peer: BgpPeer, api: str) -> Resource:
    families = peer.families or ["ipv4-unicast" if peer.address.version == 4 else "ipv6-unicast"]
    return peer_resource(str(peer.address), asn=peer.asn, password_file=peer.password_file,
                         multihop=peer.multihop or 0, hold_time=peer.hold_time,
                         keepalive=peer.keepalive or peer.hold_time // 3, families=families,
                         description=peer.description, passive=peer.passive, api=api)

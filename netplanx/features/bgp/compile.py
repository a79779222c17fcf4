"""Compile the bgp section of a host's view: gobgpd's global configuration, its peers and its paths.

In a cluster, the node's view already holds what the node adds (its peers, prefixes, router ID and pod
networks: the cluster feature merges them); services add their VIPs with ``advertised_path``.
"""

from __future__ import annotations

from typing import Any

from netplanx.engine.feature import NodeView
from netplanx.engine.resource import Resource
from netplanx.features.bgp.model import Bgp, BgpPeer, BgpPrefix, GracefulRestart, NodeBgp, PeerGracefulRestart
from netplanx.features.bgp.resources import global_resource, path_resource, peer_resource


def bgp_resources(view: NodeView) -> list[Resource]:
    """What the view asks of this host's gobgpd."""
    bgp = view.spec.bgp
    if bgp is None:
        return []
    restart = bgp.graceful_restart
    resources = [global_resource(asn=bgp.asn, router_id=str(bgp.router_id), listen_port=bgp.listen_port,
                                 graceful_restart=restart.enabled,
                                 restart_time=restart.restart_time if restart.enabled else 0, api=bgp.api)]
    resources += [_peer(peer, restart, bgp.api) for peer in bgp.peers]
    resources += [advertised_path(view, str(p.prefix), next_hop=str(p.next_hop) if p.next_hop else None,
                                  communities=p.communities) for p in bgp.advertise.prefixes]
    return resources


def advertised_path(view: NodeView, prefix: str, *, next_hop: str | None = None,
                    communities: Any = ()) -> Resource:
    """A path this host advertises, with the communities every advertised path carries."""
    bgp = view.spec.bgp
    return path_resource(prefix, next_hop=next_hop, communities=[*bgp.advertise.communities, *communities],
                         api=bgp.api)


def _peer(peer: BgpPeer, common: GracefulRestart, api: str) -> Resource:
    """The peer, its graceful restart being the section's with the peer's own settings over it."""
    families = peer.families or ["ipv4-unicast" if peer.address.version == 4 else "ipv6-unicast"]
    own = peer.graceful_restart or PeerGracefulRestart()
    enabled = common.enabled if own.enabled is None else own.enabled
    return peer_resource(str(peer.address), asn=peer.asn, password_file=peer.password_file,
                         multihop=peer.multihop or 0, hold_time=peer.hold_time,
                         keepalive=peer.keepalive or peer.hold_time // 3, families=families,
                         description=peer.description, passive=peer.passive, graceful_restart=enabled,
                         restart_time=own.restart_time or common.restart_time, api=api)


def node_bgp(common: Bgp | None, own: NodeBgp | None, node: Any) -> Bgp | None:
    """The bgp section as one cluster node sees it: its own ASN, router ID (default: its address), peers
    and prefixes added, and its pod networks advertised when ``advertise.podCIDR``."""
    if common is None:
        return None
    prefixes = list(common.advertise.prefixes)
    if common.advertise.pod_cidr:
        prefixes += [BgpPrefix(prefix=cidr) for cidr in (node.pod_cidr, node.pod_cidr6) if cidr is not None]
    prefixes += own.prefixes if own else []
    return common.model_copy(update={
        "asn": (own and own.asn) or common.asn,
        "router_id": (own and own.router_id) or common.router_id or node.address,
        "peers": [*common.peers, *(own.peers if own else ())],
        "advertise": common.advertise.model_copy(update={"prefixes": prefixes}),
    })

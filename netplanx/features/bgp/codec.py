"""Between netx's plain BGP attributes and GoBGP's protobuf messages (peers and paths)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from google.protobuf.any_pb2 import Any as AnyMessage

from netplanx.features.bgp.resources import COMMUNITY_NAMES
from netplanx.system.gobgp.api import attribute_pb2 as attribute
from netplanx.system.gobgp.api import gobgp_pb2 as api
from netplanx.system.gobgp.client import session_state
from netplanx.system.gobgp.wire import bytes_field, number_field

FAMILIES = {"ipv4-unicast": (api.Family.AFI_IP, api.Family.SAFI_UNICAST),
            "ipv6-unicast": (api.Family.AFI_IP6, api.Family.SAFI_UNICAST)}
FAMILY_NAMES = {value: name for name, value in FAMILIES.items()}
COMMUNITY_TEXT = {number: name for name, number in COMMUNITY_NAMES.items()}
UNSET_NEXT_HOPS = ("0.0.0.0", "::")  # gobgpd puts its session address in their place
NOT_A_NEIGHBOUR = ("", "<nil>")  # neighbor_ip of a path this gobgpd originated


def family(name: str) -> api.Family:
    afi, safi = FAMILIES[name]
    return api.Family(afi=afi, safi=safi)


def _packed(message: Any) -> AnyMessage:
    wrapped = AnyMessage()
    wrapped.Pack(message)
    return wrapped


def peer_message(attrs: Mapping[str, Any], password: str | None, restarting: bool = False) -> api.Peer:
    """The gobgpd peer for netx's peer attributes (``password``: the secret itself, read from its file).

    With graceful restart, gobgpd's deferral time is the restart time: after a restart it holds its own
    advertisements back until every peer's End-of-RIB, at most that long (not its default 360 s).
    ``restarting``: gobgpd lost its configuration (it restarted) and netx gives it back: its OPEN then
    carries the Restart State flag and, per family, the Forwarding State flag (true: 'netx bgp sync' kept
    the kernel routes), so the peer keeps this node's paths until gobgpd's End-of-RIB.
    """
    restart = attrs["graceful_restart"]
    return api.Peer(
        conf=api.PeerConf(neighbor_address=attrs["address"], peer_asn=attrs["asn"], auth_password=password or "",
                          description=attrs["description"]),
        ebgp_multihop=api.EbgpMultihop(enabled=attrs["multihop"] > 0, multihop_ttl=attrs["multihop"]),
        timers=api.Timers(config=api.TimersConfig(hold_time=attrs["hold_time"],
                                                  keepalive_interval=attrs["keepalive"], connect_retry=5)),
        transport=api.Transport(passive_mode=attrs["passive"]),
        graceful_restart=api.GracefulRestart(enabled=restart, restart_time=attrs["restart_time"],
                                             deferral_time=attrs["restart_time"],
                                             local_restarting=restart and restarting),
        afi_safis=[api.AfiSafi(config=api.AfiSafiConfig(family=family(name), enabled=True),
                               mp_graceful_restart=api.MpGracefulRestart(
                                   config=api.MpGracefulRestartConfig(enabled=restart)))
                   for name in attrs["families"]])


class PeerView(NamedTuple):
    """A gobgpd peer read back: netx's attributes (password still in clear), and its session status."""

    attrs: dict[str, Any]
    password: str
    status: dict[str, Any]


def peer_view(peer: api.Peer) -> PeerView:
    conf, state = peer.conf, peer.state
    families = sorted(FAMILY_NAMES.get((a.config.family.afi, a.config.family.safi), "other")
                      for a in peer.afi_safis if a.config.enabled)
    attrs = {"address": conf.neighbor_address, "asn": conf.peer_asn,
             "multihop": peer.ebgp_multihop.multihop_ttl if peer.ebgp_multihop.enabled else 0,
             "hold_time": peer.timers.config.hold_time, "keepalive": peer.timers.config.keepalive_interval,
             "families": families, "description": conf.description, "passive": peer.transport.passive_mode,
             "graceful_restart": peer.graceful_restart.enabled,
             "restart_time": peer.graceful_restart.restart_time if peer.graceful_restart.enabled else 0}
    received = sum(a.state.received for a in peer.afi_safis)
    accepted = sum(a.state.accepted for a in peer.afi_safis)
    advertised = sum(a.state.advertised for a in peer.afi_safis)
    status = {"session": session_state(state.session_state), "received": received,
              "accepted": accepted, "advertised": advertised}
    if state.session_state == api.PeerState.ESTABLISHED and peer.timers.state.uptime.seconds:
        status["up_since"] = peer.timers.state.uptime.seconds
    return PeerView(attrs, conf.auth_password, status)


def community_number(text: str) -> int:
    if text in COMMUNITY_NAMES:
        return COMMUNITY_NAMES[text]
    high, low = text.split(":")
    return int(high) << 16 | int(low)


def community_text(number: int) -> str:
    return COMMUNITY_TEXT.get(number) or f"{number >> 16}:{number & 0xFFFF}"


def path_message(prefix: str, next_hop: str | None, communities: Sequence[str], withdraw: bool = False) -> bytes:
    """A locally originated path (origin IGP) for ``prefix``, serialized (an ``apipb.Path``).

    Written field by field from pieces serialized once (the origin, each next hop and community set, each
    family): building 10,000 protobuf objects to serialize them cost more than the rest of an apply."""
    network, length = prefix.split("/")
    value = number_field(1, int(length)) + bytes_field(2, network)  # IPAddressPrefix: prefix_len, prefix
    nlri = bytes_field(1, PREFIX_TYPE) + bytes_field(2, value)  # google.protobuf.Any: type_url, value
    if ":" in network:  # IPv6: the next hop travels in MP_REACH_NLRI, with the NLRI
        reach = _packed(attribute.MpReachNLRIAttribute(family=family("ipv6-unicast"), next_hops=[next_hop or "::"],
                                                       nlris=[_packed(attribute.IPAddressPrefix(
                                                           prefix=network, prefix_len=int(length)))]))
        attrs = [_ORIGIN_IGP, reach.SerializeToString(), *_communities(tuple(communities))]
        kind = _IPV6_UNICAST
    else:
        attrs = [_ORIGIN_IGP, _next_hop(next_hop or "0.0.0.0"), *_communities(tuple(communities))]
        kind = _IPV4_UNICAST
    return b"".join((bytes_field(1, nlri), *(bytes_field(2, a) for a in attrs), number_field(5, 1) if withdraw else b"",
                     kind))


_ORIGIN_IGP = _packed(attribute.OriginAttribute(origin=0)).SerializeToString()
_IPV4_UNICAST = bytes_field(9, family("ipv4-unicast").SerializeToString())  # Path.family
_IPV6_UNICAST = bytes_field(9, family("ipv6-unicast").SerializeToString())


@functools.lru_cache(maxsize=1024)
def _next_hop(address: str) -> bytes:
    return _packed(attribute.NextHopAttribute(next_hop=address)).SerializeToString()


@functools.lru_cache(maxsize=1024)
def _communities(communities: tuple[str, ...]) -> tuple[bytes, ...]:
    if not communities:
        return ()
    return (_packed(attribute.CommunitiesAttribute(communities=[community_number(c) for c in communities]))
            .SerializeToString(),)


class PathView(NamedTuple):
    prefix: str
    next_hop: str | None
    communities: list[str]
    neighbour: str | None  # None: this gobgpd originated it
    withdrawn: bool


NEXT_HOP = attribute.NextHopAttribute.DESCRIPTOR.full_name
MP_REACH = attribute.MpReachNLRIAttribute.DESCRIPTOR.full_name
COMMUNITIES = attribute.CommunitiesAttribute.DESCRIPTOR.full_name


def path_view(path: api.Path) -> PathView | None:
    """Prefix, next hop and communities of a unicast path (None for any other kind of NLRI).

    Tens of thousands of paths share a handful of attribute sets, so those are decoded once each.
    """
    prefix = _prefix(path.nlri)
    if prefix is None:
        return None
    key = tuple((wrapped.type_url, wrapped.value) for wrapped in path.pattrs)
    decoded = _ATTRIBUTES.get(key)
    if decoded is None:
        decoded = _ATTRIBUTES[key] = _attributes(path.pattrs)
    neighbour = None if path.neighbor_ip in NOT_A_NEIGHBOUR else path.neighbor_ip
    return PathView(prefix, decoded[0], list(decoded[1]), neighbour, path.is_withdraw)


_ATTRIBUTES: dict[tuple[tuple[str, bytes], ...], tuple[str | None, tuple[str, ...]]] = {}
PREFIX_TYPE = "type.googleapis.com/" + attribute.IPAddressPrefix.DESCRIPTOR.full_name


def _prefix(nlri: AnyMessage) -> str | None:
    """``prefix/length`` of an IPAddressPrefix NLRI, read straight from its two protobuf fields."""
    if nlri.type_url != PREFIX_TYPE:
        return None
    value = nlri.value
    length, text, index = 0, "", 0
    while index < len(value):
        tag = value[index]
        if tag == 0x08:  # field 1, varint: prefix_len (below 128 is one byte)
            length = value[index + 1]
            index += 2
            if length & 0x80:
                length = (length & 0x7F) | value[index] << 7
                index += 1
        elif tag == 0x12:  # field 2, length-delimited: prefix text
            size = value[index + 1]
            text = value[index + 2:index + 2 + size].decode()
            index += 2 + size
        else:
            return None
    return f"{text}/{length}"


def _attributes(pattrs: Sequence[AnyMessage]) -> tuple[str | None, tuple[str, ...]]:
    next_hop, communities = None, ()
    for wrapped in pattrs:
        name = wrapped.TypeName()
        if name == NEXT_HOP:
            value = attribute.NextHopAttribute()
            wrapped.Unpack(value)
            next_hop = value.next_hop
        elif name == MP_REACH:
            reach = attribute.MpReachNLRIAttribute()
            wrapped.Unpack(reach)
            next_hop = reach.next_hops[0] if reach.next_hops else None
        elif name == COMMUNITIES:
            value = attribute.CommunitiesAttribute()
            wrapped.Unpack(value)
            communities = tuple(sorted({community_text(c) for c in value.communities}))
    return (None if next_hop in UNSET_NEXT_HOPS else next_hop), communities


def table_received(peer: api.Peer) -> bool:
    """The peer's session is up and the peer has sent its whole table (End-of-RIB) in each of its families."""
    return peer.state.session_state == api.PeerState.ESTABLISHED and all(
        a.mp_graceful_restart.state.end_of_rib_received for a in peer.afi_safis if a.config.enabled)


def restart_time(peer: api.Peer) -> int:
    """The peer's graceful restart time (0: no graceful restart with it)."""
    return peer.graceful_restart.restart_time if peer.graceful_restart.enabled else 0

"""The ``bgp`` section, each node's ``bgp`` overrides, and the ``bgpEstablished`` post-condition."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator
from pydantic.functional_validators import BeforeValidator

from netplanx.document.fields import IP, IP4, KeyFile, Network, SpecModel
from netplanx.features.bgp.resources import COMMUNITY_NAMES, FAMILIES

ASN = Annotated[int, Field(ge=1, le=4294967295, description="Autonomous system number (1-4294967295).")]


def _community(value: Any) -> str:
    text = str(value)
    if text in COMMUNITY_NAMES:
        return text
    match = re.fullmatch(r"(\d{1,5}):(\d{1,5})", text)
    if match and all(int(part) <= 65535 for part in match.groups()):
        return text
    raise ValueError(f"'{text}' is not a BGP community (allowed: ASN:VALUE with both 0-65535, or "
                     f"{', '.join(COMMUNITY_NAMES)})")


def _api_address(value: Any) -> str:
    text = str(value)
    match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})", text)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise ValueError(f"'{text}' is not a host:port address (allowed: such as 127.0.0.1:50051 or [::1]:50051)")
    return text


Community = Annotated[str, BeforeValidator(_community), Field(description="ASN:VALUE or a well-known name.")]
ApiAddress = Annotated[str, BeforeValidator(_api_address), Field(description="host:port of gobgpd's gRPC API.")]


_UNUSED_TIME = "restartTime {} has no effect with graceful restart off (allowed: enabled: true, or no restartTime)"
RestartTime = Annotated[int, Field(ge=1, le=4095, description="Seconds (1-4095, RFC 4724's 12 bits).")]


class GracefulRestart(SpecModel):
    """BGP graceful restart (RFC 4724), through gobgpd: when this node's gobgpd restarts, its peers keep
    its paths and 'netx bgp sync' keeps the learned routes, so forwarding goes on; when a peer restarts,
    gobgpd keeps the peer's paths."""

    enabled: bool = Field(True, description="Negotiate graceful restart with the peers.")
    restart_time: RestartTime = Field(120, alias="restartTime", description="How long peers keep this node's "
                                      "paths after its session drops, and how long after gobgpd is back the "
                                      "sync keeps a route gobgpd has not relearned (without End-of-RIB).")

    @model_validator(mode="after")
    def _time_needs_restart(self) -> GracefulRestart:
        if not self.enabled and "restart_time" in self.model_fields_set:
            raise ValueError(_UNUSED_TIME.format(self.restart_time))
        return self


class PeerGracefulRestart(SpecModel):
    """One peer's graceful restart, where it differs from the bgp section's."""

    enabled: bool | None = Field(None, description="Negotiate graceful restart with this peer.")
    restart_time: RestartTime | None = Field(None, alias="restartTime", description="This peer's restart time.")

    @model_validator(mode="after")
    def _time_needs_restart(self) -> PeerGracefulRestart:
        if self.enabled is False and self.restart_time is not None:
            raise ValueError(_UNUSED_TIME.format(self.restart_time))
        return self


class BgpPeer(SpecModel):
    """A BGP neighbour of this node."""

    address: IP = Field(description="The neighbour's address; also its identity.")
    asn: ASN
    password_file: KeyFile | None = Field(None, alias="passwordFile",
                                          description="File holding the TCP MD5 password (0600, never printed).")
    multihop: int | None = Field(None, ge=1, le=255, description="eBGP multihop TTL (unset: directly connected).")
    hold_time: int = Field(90, alias="holdTime", ge=3, le=65535, description="Hold time in seconds.")
    keepalive: int | None = Field(None, ge=1, le=21845, description="Keepalive interval (default: holdTime / 3).")
    families: list[Literal[FAMILIES]] | None = Field(
        None, min_length=1, description="Address families (default: the family of the address).")
    description: str = Field("", max_length=80, description="Free text shown by gobgp and netx show.")
    passive: bool = Field(False, description="Wait for the neighbour to connect; never dial it.")
    graceful_restart: PeerGracefulRestart | None = Field(None, alias="gracefulRestart",
                                                         description="Overrides bgp.gracefulRestart.")

    @model_validator(mode="after")
    def _timers(self) -> BgpPeer:
        if self.keepalive is not None and self.keepalive * 3 > self.hold_time:
            raise ValueError(f"keepalive {self.keepalive} is more than a third of holdTime {self.hold_time} "
                             f"(allowed: at most {self.hold_time // 3})")
        return self


class BgpPrefix(SpecModel):
    """A prefix this node advertises."""

    prefix: Network = Field(description="The prefix (CIDR).")
    communities: list[Community] = Field(default_factory=list, description="Communities attached to it.")
    next_hop: IP | None = Field(None, alias="nextHop",
                                description="Next hop (default: the address of each BGP session).")


class BgpAdvertise(SpecModel):
    """What this node advertises."""

    pod_cidr: bool = Field(True, alias="podCIDR", description="The node's pod networks (in a cluster).")
    service_vips: bool = Field(False, alias="serviceVIPs", description="The services' virtual IPs (/32, /128).")
    prefixes: list[BgpPrefix] = Field(default_factory=list, description="More prefixes.")
    communities: list[Community] = Field(default_factory=list, description="Communities on every path.")


class Bgp(SpecModel):
    """BGP through gobgpd: netx configures it over its gRPC API."""

    api: ApiAddress = "127.0.0.1:50051"
    asn: ASN
    router_id: IP4 | None = Field(None, alias="routerId", description="Router ID (default in a cluster: the "
                                  "node's address).")
    listen_port: int = Field(179, alias="listenPort", ge=-1, le=65535,
                             description="TCP port gobgpd listens on (-1: none, only dial out).")
    peers: list[BgpPeer] = Field(default_factory=list, description="Neighbours.")
    advertise: BgpAdvertise = Field(default_factory=BgpAdvertise, description="Advertised paths.")
    graceful_restart: GracefulRestart = Field(default_factory=GracefulRestart, alias="gracefulRestart",
                                              description="Graceful restart (default: on, 120 s).")


class NodeBgp(SpecModel):
    """What one node's BGP adds to or changes in the cluster's."""

    asn: ASN | None = None
    router_id: IP4 | None = Field(None, alias="routerId", description="Router ID.")
    peers: list[BgpPeer] = Field(default_factory=list, description="Neighbours of this node only.")
    prefixes: list[BgpPrefix] = Field(default_factory=list, description="Prefixes this node alone advertises.")


class Established(SpecModel):
    peer: IP = Field(description="The BGP peer's address.")
    within: int = Field(30, ge=1, le=600, description="Seconds the session may take to come up after apply.")


class EstablishedCheck(SpecModel):
    """A BGP session must be Established within some seconds of the apply."""

    bgp_established: Established = Field(alias="bgpEstablished")

    def to_check(self) -> dict[str, object]:
        return {"type": "bgp-established", "peer": str(self.bgp_established.peer),
                "within": self.bgp_established.within}

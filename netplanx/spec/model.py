"""The spec model: one source of truth for validation and for schema/netx.schema.json.

Every field carries a description; validators raise ``ValueError`` texts shaped as
``what is wrong (allowed: ...)`` so that the loader can prefix them with a file position.
"""

from __future__ import annotations

import re
import typing
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator
from pydantic.functional_validators import AfterValidator, BeforeValidator

from netplanx.providers.bgp.resources import COMMUNITY_NAMES
from netplanx.spec.fields import (
    IP,
    IP4,
    IP6,
    Destination,
    IfName,
    InterfaceAddress,
    Mac,
    Name,
    NetnsName,
    Network,
    Network4,
    Network6,
    SpecModel,
    Table,
)
from netplanx.spec.policies import Policy
from netplanx.spec.services import Service

API_VERSION = "netx/v1"


class VethPeer(SpecModel):
    """The other end of a veth pair."""

    name: IfName
    netns: NetnsName | None = Field(None, description="Namespace the peer is placed in (default: the same one).")


class InterfaceBase(SpecModel):
    name: IfName
    mtu: int | None = Field(None, ge=68, le=65535, description="MTU in bytes (68-65535); unset leaves it alone.")
    state: Literal["up", "down"] = Field("up", description="Administrative state.")
    mac: Mac | None = Field(None, description="MAC address; unset leaves it alone.")
    master: IfName | None = Field(None, description="Bridge this interface is enslaved to.")
    addresses: list[InterfaceAddress] = Field(default_factory=list, description="IPv4/IPv6 addresses with prefix.")


class Device(InterfaceBase):
    """An interface netx configures but does not create or delete (a NIC, lo, ...)."""

    type: Literal["device"]


class Veth(InterfaceBase):
    """A veth pair; the peer may live in another namespace."""

    type: Literal["veth"]
    peer: VethPeer


class Bridge(InterfaceBase):
    """A Linux bridge."""

    type: Literal["bridge"]
    stp: bool = Field(False, description="Spanning tree protocol.")


class Vxlan(InterfaceBase):
    """A VXLAN tunnel device."""

    type: Literal["vxlan"]
    vni: int | None = Field(None, ge=0, le=16777215, description="VXLAN network identifier (0-16777215).")
    external: bool = Field(False, description="Collect metadata: the VNI and remote come from each route's encap.")
    port: int = Field(4789, ge=1, le=65535, description="UDP destination port.")
    local: IP | None = Field(None, description="Source address of encapsulated packets.")
    remote: IP | None = Field(None, description="Unicast peer (point to point).")
    group: IP | None = Field(None, description="Multicast group (needs device).")
    device: IfName | None = Field(None, description="Underlay device.")
    learning: bool = Field(True, description="Learn remote MAC addresses from traffic.")
    ttl: int | None = Field(None, ge=1, le=255, description="TTL of encapsulated packets (unset: inherit).")

    @model_validator(mode="after")
    def _endpoints(self) -> Vxlan:
        if self.vni is None and not self.external:
            raise ValueError("a vxlan needs vni (allowed: 0-16777215, or external: true)")
        if self.external and (self.vni is not None or self.remote or self.group):
            raise ValueError("an external vxlan takes no vni, remote or group (allowed: port, local, device)")
        if self.remote and self.group:
            raise ValueError("remote and group are exclusive (allowed: one of them)")
        if self.group and not self.group.is_multicast:
            raise ValueError(f"group {self.group} is not a multicast address (allowed: 224.0.0.0/4 or ff00::/8)")
        if self.group and not self.device:
            raise ValueError("a multicast group needs a device (allowed: set device to the underlay interface)")
        families = {a.version for a in (self.local, self.remote, self.group) if a}
        if len(families) > 1:
            raise ValueError("local, remote and group mix IPv4 and IPv6 (allowed: one family)")
        return self


class Geneve(InterfaceBase):
    """A Geneve tunnel device (needs a kernel with Geneve)."""

    type: Literal["geneve"]
    vni: int | None = Field(None, ge=0, le=16777215, description="Virtual network identifier (0-16777215).")
    remote: IP | None = Field(None, description="The peer's address.")
    port: int = Field(6081, ge=1, le=65535, description="UDP destination port.")
    external: bool = Field(False, description="Collect metadata: the VNI and remote come from each route's encap.")
    ttl: int | None = Field(None, ge=1, le=255, description="TTL of encapsulated packets (unset: inherit).")

    @model_validator(mode="after")
    def _mode(self) -> Geneve:
        if self.external and (self.vni is not None or self.remote):
            raise ValueError("an external geneve takes no vni or remote (allowed: port)")
        if not self.external and (self.vni is None or self.remote is None):
            raise ValueError("a geneve needs vni and remote (allowed: both, or external: true)")
        return self


class Macvlan(InterfaceBase):
    """A macvlan device on a parent interface."""

    type: Literal["macvlan"]
    parent: IfName = Field(description="The lower device.")
    mode: Literal["private", "vepa", "bridge", "passthru", "source"] = Field("bridge", description="Macvlan mode.")


INTERFACE_MODELS = (Device, Veth, Bridge, Vxlan, Geneve, Macvlan)
INTERFACE_TYPES = tuple(typing.get_args(m.model_fields["type"].annotation)[0] for m in INTERFACE_MODELS)
Interface = Annotated[Device | Veth | Bridge | Vxlan | Geneve | Macvlan, Field(discriminator="type")]


class Nexthop(SpecModel):
    """One path of a multipath route."""

    via: IP | None = Field(None, description="Gateway.")
    dev: IfName | None = Field(None, description="Output interface.")
    weight: int = Field(1, ge=1, le=256, description="Relative weight (1-256).")

    @model_validator(mode="after")
    def _has_a_hop(self) -> Nexthop:
        if self.via is None and self.dev is None:
            raise ValueError("a nexthop needs via or dev (allowed: via, dev or both)")
        return self


class Route(SpecModel):
    """A route in a routing table."""

    to: Destination = Field(description="Destination network in CIDR form, or 'default'.")
    via: IP | None = Field(None, description="Gateway.")
    dev: IfName | None = Field(None, description="Output interface.")
    src: IP | None = Field(None, description="Preferred source address.")
    table: Table = Field("main", description="Table: main, local, default or 1-4294967295.")
    metric: int | None = Field(None, ge=0, le=4294967295, description="Metric (priority); unset: kernel default.")
    scope: Literal["global", "link", "host"] | None = Field(None, description="Scope (IPv4); unset: derived.")
    type: Literal["unicast", "blackhole", "unreachable", "prohibit"] = Field("unicast", description="Route type.")
    onlink: bool = Field(False, description="Treat the gateway as directly reachable on dev.")
    nexthops: list[Nexthop] = Field(default_factory=list, description="Multipath (ECMP) next hops.")

    @model_validator(mode="after")
    def _consistent(self) -> Route:
        if self.type != "unicast" and (self.via or self.dev or self.nexthops):
            raise ValueError(f"a {self.type} route takes no via, dev or nexthops (allowed: to, table, metric)")
        if self.type == "unicast" and not (self.via or self.dev or self.nexthops):
            raise ValueError("a unicast route needs via, dev or nexthops (allowed: any of them)")
        if self.nexthops and (self.via or self.dev):
            raise ValueError("nexthops exclude via and dev (allowed: either via/dev or nexthops)")
        if len(self.nexthops) == 1:
            raise ValueError("nexthops needs two or more paths (allowed: via/dev for a single path)")
        families = {a.version for a in (self.via, self.src, *(n.via for n in self.nexthops)) if a}
        if self.to != "default":
            families.add(6 if ":" in self.to else 4)
        if len(families) > 1:
            raise ValueError("route mixes IPv4 and IPv6 in to, via, src and nexthops (allowed: one family)")
        if self.onlink and not (self.dev or (self.nexthops and all(h.dev for h in self.nexthops))):
            raise ValueError("onlink needs dev (allowed: set dev, or dev on every nexthop)")
        if self.scope and self.family == 6:
            raise ValueError("scope applies to IPv4 routes only (allowed: omit scope for IPv6)")
        return self

    @property
    def family(self) -> int:
        """4 or 6, from the destination, or for 'default' from the gateways."""
        if self.to != "default":
            return 6 if ":" in self.to else 4
        gateways = [a for a in (self.via, self.src, *(n.via for n in self.nexthops)) if a]
        return gateways[0].version if gateways else 4

    @property
    def destination(self) -> str:
        """The canonical destination network, with 'default' resolved for the route's family."""
        if self.to == "default":
            return "::/0" if self.family == 6 else "0.0.0.0/0"
        return self.to


class Rule(SpecModel):
    """A policy routing rule."""

    priority: int = Field(ge=1, le=32765, description="Rule priority (1-32765); also its identity.")
    family: Literal["ipv4", "ipv6"] | None = Field(None, description="Address family; derived from from/to.")
    from_: Network | None = Field(None, alias="from", description="Source prefix.")
    to: Network | None = Field(None, description="Destination prefix.")
    iif: IfName | None = Field(None, description="Incoming interface.")
    oif: IfName | None = Field(None, description="Outgoing interface.")
    fwmark: int | None = Field(None, ge=0, le=4294967295, description="Firewall mark.")
    fwmask: int | None = Field(None, ge=0, le=4294967295, description="Mask for fwmark.")
    action: Literal["lookup", "blackhole", "unreachable", "prohibit"] = Field("lookup", description="Action.")
    table: Table | None = Field(None, description="Table to look up (action lookup).")

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        families = {n.version for n in (self.from_, self.to) if n}
        if self.family:
            families.add(4 if self.family == "ipv4" else 6)
        if len(families) > 1:
            raise ValueError("rule mixes IPv4 and IPv6 in family, from and to (allowed: one family)")
        if self.action == "lookup" and self.table is None:
            raise ValueError("a lookup rule needs a table (allowed: main, local, default or 1-4294967295)")
        if self.action != "lookup" and self.table is not None:
            raise ValueError(f"a {self.action} rule takes no table (allowed: omit table)")
        if self.fwmask is not None and self.fwmark is None:
            raise ValueError("fwmask needs fwmark (allowed: set fwmark too)")
        return self

    @property
    def ip_family(self) -> int:
        if self.family:
            return 4 if self.family == "ipv4" else 6
        networks = [n for n in (self.from_, self.to) if n]
        return networks[0].version if networks else 4


SYSCTL_PATTERN = r"^net(\.[A-Za-z0-9_\-]+)+$"
SYSCTL_KEY = re.compile(SYSCTL_PATTERN)


def _sysctl_key(key: str) -> str:
    if not SYSCTL_KEY.fullmatch(key) or ".." in key:
        raise ValueError(f"sysctl '{key}' is not a network sysctl (allowed: net.* keys such as net.ipv4.ip_forward)")
    return key


def _sysctl_value(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"sysctl value {value!r} is not an integer or text (allowed: such as 1 or \"4096 87380\")")
    if isinstance(value, str) and ("\n" in value or len(value) > 256):
        raise ValueError("sysctl value is not a single short line (allowed: one line, at most 256 characters)")
    return value


SysctlKey = Annotated[str, AfterValidator(_sysctl_key)]
SysctlValue = Annotated[int | str, BeforeValidator(_sysctl_value), Field(description="Value written to /proc/sys.")]


TUNNEL_PORTS = {"vxlan": 8472, "geneve": 6081}
TUNNEL_OVERHEAD = {"vxlan": 50, "geneve": 50}  # outer IPv4 + UDP + tunnel header + inner Ethernet
WIREGUARD_OVERHEAD = 60  # outer IPv4 + UDP + WireGuard header and tag


class Tunnel(SpecModel):
    """The overlay between nodes: one collect-metadata device per node, routes carry VNI and remote."""

    protocol: Literal["vxlan", "geneve"] = Field("vxlan", description="Encapsulation.")
    vni: int = Field(1, ge=0, le=16777215, description="Network identifier used between nodes.")
    port: int | None = Field(None, ge=1, le=65535, description="UDP port (default: 8472 vxlan, 6081 geneve).")
    device: IfName = Field("netx-tunnel", description="Name of the tunnel device on every node.")

    @property
    def udp_port(self) -> int:
        return self.port or TUNNEL_PORTS[self.protocol]


class Routing(SpecModel):
    """How pod traffic crosses nodes."""

    mode: Literal["tunnel", "native"] = Field("tunnel", description="tunnel: overlay; native: plain routes.")
    tunnel: Tunnel = Field(default_factory=Tunnel, description="Overlay settings (mode tunnel).")
    routes: Literal["static", "bgp"] = Field(
        "static", description="Mode native: static routes netx derives from the spec, or routes learned over "
        "BGP (the bgp section; 'netx bgp sync' installs them).")


class Underlay(SpecModel):
    """The network the nodes share."""

    device: IfName = Field("eth0", description="Each node's interface on the underlay.")
    mtu: int = Field(1500, ge=1280, le=65535, description="Underlay MTU; the overlay MTU is derived from it.")
    prefix_length: int | None = Field(None, alias="prefixLength", ge=1, le=32,
                                      description="Set: netx puts node address/prefixLength on the device.")
    prefix_length6: int | None = Field(None, alias="prefixLength6", ge=1, le=128,
                                       description="Set: netx puts node address6/prefixLength6 on the device.")
    load_balancer: Literal["none", "tc", "xdp", "xdpGeneric", "xdpNative"] = Field(
        "none", alias="loadBalancer",
        description="Balance service traffic arriving on the device: tc, or xdp (native where the driver has it, "
                    "else generic); replies are translated by tc egress.")


def _key(value: Any) -> str:
    import base64

    try:
        if len(base64.b64decode(str(value), validate=True)) == 32:
            return str(value)
    except ValueError:
        pass
    raise ValueError(f"'{value}' is not a WireGuard public key (allowed: 44 characters of base64, as netx keygen "
                     "prints)")


def _key_file(value: Any) -> str:
    text = str(value)
    if not text.startswith("/") or "/../" in f"{text}/" or "\0" in text:
        raise ValueError(f"'{text}' is not an absolute path without '..' (allowed: such as /etc/netx/wg.key)")
    return text


PublicKey = Annotated[str, BeforeValidator(_key), Field(description="WireGuard public key (base64).")]
KeyFile = Annotated[str, BeforeValidator(_key_file), Field(description="Absolute path of a 0600 key file.")]


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
BGP_FAMILIES = ("ipv4-unicast", "ipv6-unicast")


class BgpPeer(SpecModel):
    """A BGP neighbour of this node."""

    address: IP = Field(description="The neighbour's address; also its identity.")
    asn: ASN
    password_file: KeyFile | None = Field(None, alias="passwordFile",
                                          description="File holding the TCP MD5 password (0600, never printed).")
    multihop: int | None = Field(None, ge=1, le=255, description="eBGP multihop TTL (unset: directly connected).")
    hold_time: int = Field(90, alias="holdTime", ge=3, le=65535, description="Hold time in seconds.")
    keepalive: int | None = Field(None, ge=1, le=21845, description="Keepalive interval (default: holdTime / 3).")
    families: list[Literal["ipv4-unicast", "ipv6-unicast"]] | None = Field(
        None, min_length=1, description="Address families (default: the family of the address).")
    description: str = Field("", max_length=80, description="Free text shown by gobgp and netx show.")
    passive: bool = Field(False, description="Wait for the neighbour to connect; never dial it.")

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


class NodeBgp(SpecModel):
    """What one node's BGP adds to or changes in the cluster's."""

    asn: ASN | None = None
    router_id: IP4 | None = Field(None, alias="routerId", description="Router ID.")
    peers: list[BgpPeer] = Field(default_factory=list, description="Neighbours of this node only.")
    prefixes: list[BgpPrefix] = Field(default_factory=list, description="Prefixes this node alone advertises.")


class NodeWireguard(SpecModel):
    """A node's WireGuard identity: its public key here, its private key in a file on that node."""

    public_key: PublicKey = Field(alias="publicKey")
    private_key_file: KeyFile = Field(alias="privateKeyFile")


class Wireguard(SpecModel):
    """Encrypt traffic between endpoints on different nodes with WireGuard."""

    device: IfName = Field("netx-wg", description="Name of the WireGuard device on every node.")
    port: int = Field(51820, ge=1, le=65535, description="UDP listen port.")
    keepalive: int = Field(0, ge=0, le=65535, description="Persistent keepalive in seconds (0: off).")


class Encryption(SpecModel):
    wireguard: Wireguard = Field(description="WireGuard between all nodes.")


class Node(SpecModel):
    """One node of the cluster, and what only it has."""

    name: Name
    address: IP4 = Field(description="Underlay IPv4 address.")
    address6: IP6 | None = Field(None, description="Underlay IPv6 address (native routing of IPv6).")
    pod_cidr: Network4 = Field(alias="podCIDR", description="This node's IPv4 pod network.")
    pod_cidr6: Network6 | None = Field(None, alias="podCIDR6", description="This node's IPv6 pod network.")
    wireguard: NodeWireguard | None = Field(None, description="Keys (with cluster.encryption).")
    bgp: NodeBgp | None = Field(None, description="This node's BGP settings (with the spec's bgp section).")
    interfaces: list[Interface] = Field(default_factory=list, description="Links of this node only.")
    routes: list[Route] = Field(default_factory=list, description="Routes of this node only.")
    rules: list[Rule] = Field(default_factory=list, description="Rules of this node only.")
    sysctl: dict[SysctlKey, SysctlValue] = Field(default_factory=dict, description="Sysctls of this node only.",
                                                 json_schema_extra={"propertyNames": {"pattern": SYSCTL_PATTERN}})


class Cluster(SpecModel):
    """The nodes and how their pod networks reach each other; each node derives its own state."""

    name: Name = Field(description="Cluster name (prefix of the endpoint namespaces netx creates).")
    pod_cidr: Network4 = Field(alias="podCIDR", description="The cluster's IPv4 pod range.")
    pod_cidr6: Network6 | None = Field(None, alias="podCIDR6", description="The cluster's IPv6 pod range.")
    routing: Routing = Field(default_factory=Routing, description="tunnel or native.")
    underlay: Underlay = Field(default_factory=Underlay, description="The nodes' shared network.")
    encryption: Encryption | None = Field(None, description="Encrypt traffic between nodes.")
    nodes: list[Node] = Field(min_length=1, description="The nodes.")


class Endpoint(SpecModel):
    """A local workload: a namespace joined to its node by a veth pair."""

    name: Name
    node: Name = Field(description="The node it runs on.")
    address: IP4 = Field(description="IPv4 address from the node's podCIDR.")
    address6: IP6 | None = Field(None, description="IPv6 address from the node's podCIDR6.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels (policies select endpoints by them).")


class PingCheck(SpecModel):
    """The address must answer ping from the namespace after apply."""

    ping: IP = Field(description="Address to ping.")
    count: int = Field(3, ge=1, le=20, description="Echo requests; one answer is enough.")
    timeout: int = Field(2, ge=1, le=30, description="Seconds to wait for each answer.")


class Handshake(SpecModel):
    peer: Name = Field(description="The node whose WireGuard peer must have shaken hands.")
    within: int = Field(60, ge=1, le=86400, description="Maximum age of the latest handshake, in seconds.")


class HandshakeCheck(SpecModel):
    """A WireGuard peer must have a recent handshake after apply."""

    wireguard_handshake: Handshake = Field(alias="wireguardHandshake")


class Established(SpecModel):
    peer: IP = Field(description="The BGP peer's address.")
    within: int = Field(30, ge=1, le=600, description="Seconds the session may take to come up after apply.")


class EstablishedCheck(SpecModel):
    """A BGP session must be Established within some seconds of the apply."""

    bgp_established: Established = Field(alias="bgpEstablished")


class Spec(SpecModel):
    """A node's desired networking, or a cluster's (each node derives its own)."""

    api_version: Literal["netx/v1"] = Field(alias="apiVersion", description="Spec format version.")
    interfaces: list[Interface] = Field(default_factory=list, description="Links and their addresses.")
    routes: list[Route] = Field(default_factory=list, description="Routes.")
    rules: list[Rule] = Field(default_factory=list, description="Policy routing rules.")
    sysctl: dict[SysctlKey, SysctlValue] = Field(
        default_factory=dict, description="Network sysctls (net.*), per namespace.",
        json_schema_extra={"propertyNames": {"pattern": SYSCTL_PATTERN}})
    cluster: Cluster | None = Field(None, description="Nodes, pod networks and routing mode.")
    endpoints: list[Endpoint] = Field(default_factory=list, description="Workloads, each on one node.")
    bgp: Bgp | None = Field(None, description="BGP: sessions and advertised paths, through gobgpd.")
    checks: list[PingCheck | HandshakeCheck | EstablishedCheck] = Field(
        default_factory=list, description="Post-conditions: after apply they must hold, or the change is undone.")
    services: list[Service] = Field(default_factory=list, description="Load-balanced services (eBPF, Maglev).")
    policies: list[Policy] = Field(
        default_factory=list, description="Network policies over the endpoints, enforced in eBPF on every node.")

"""The ``cluster`` and ``endpoints`` sections: nodes, pod networks, routing between nodes, workloads.

A node's own settings (its interfaces, routes, keys, BGP...) are the node sections other features
declare; ``feature.py`` adds them to Node (and Node to Cluster) when the spec model is built.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from netplanx.document.fields import IP4, IP6, IfName, Name, NetnsName, Network4, Network6, SpecModel
from netplanx.features.wireguard.model import Encryption

TUNNEL_PORTS = {"vxlan": 8472, "geneve": 6081}
TUNNEL_OVERHEAD = {"vxlan": 50, "geneve": 50}  # outer IPv4 + UDP + tunnel header + inner Ethernet
ENDPOINT_MTU = 1500  # a host's endpoints (a cluster's get the overlay MTU)


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


class Node(SpecModel):
    """One node of the cluster, and what only it has."""

    name: Name
    address: IP4 = Field(description="Underlay IPv4 address.")
    address6: IP6 | None = Field(None, description="Underlay IPv6 address (native routing of IPv6).")
    pod_cidr: Network4 = Field(alias="podCIDR", description="This node's IPv4 pod network.")
    pod_cidr6: Network6 | None = Field(None, alias="podCIDR6", description="This node's IPv6 pod network.")


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
    """A local workload: a namespace joined to its node (or host) by a veth pair ``ep-NAME``."""

    name: Name
    node: Name | None = Field(None, description="The node it runs on (every endpoint of a cluster names one; a "
                                                "spec without cluster puts its endpoints on the host).")
    netns: NetnsName | None = Field(None, description="Without cluster: its namespace (default: its name); a "
                                                      "cluster's is CLUSTER-NAME.")
    mtu: int | None = Field(None, ge=68, le=65535, description=f"Without cluster: the MTU of its veth (default "
                                                                 f"{ENDPOINT_MTU}); a cluster's is derived.")
    address: IP4 = Field(description="IPv4 address (from the node's podCIDR).")
    address6: IP6 | None = Field(None, description="IPv6 address (from the node's podCIDR6).")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels (policies select endpoints by them).")

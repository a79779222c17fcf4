"""Compile the cluster section for one node: underlay, tunnel or native routes to every other node,
and the node's endpoints. Everything is derived from the one spec, so the nodes cannot disagree. A spec
without cluster puts its endpoints on the host."""

from __future__ import annotations

from typing import Any

from netplanx.engine.resource import Resource
from netplanx.features.cluster.endpoints import PURPOSE, endpoint_resource
from netplanx.features.cluster.model import ENDPOINT_MTU, TUNNEL_OVERHEAD, Endpoint, Node
from netplanx.features.cluster.namespaces import namespace_resource
from netplanx.features.cluster.nodes import GATEWAY4, GATEWAY6, endpoint_netns, endpoints_of, host_interface, tunnel_mac
from netplanx.features.interfaces.addresses import address_resource
from netplanx.features.interfaces.links import link_address
from netplanx.features.routing.neighbours import neighbour_resource
from netplanx.features.routing.routes import route_resource
from netplanx.features.sysctls.sysctls import sysctl_resource
from netplanx.features.wireguard.model import OVERHEAD as WIREGUARD_OVERHEAD
from netplanx.features.wireguard.types import device_resource, peer_resource

MAIN = 254


def _route(to: object, **values: Any) -> Resource:
    defaults: dict[str, Any] = {"metric": None, "kind": "unicast", "via": None, "dev": None, "src": None,
                                "scope": None, "onlink": False, "nexthops": []}
    return route_resource(table=MAIN, to=str(to), **{**defaults, **values})


def cluster_resources(spec: Any, node: Node) -> list[Resource]:
    """The resources the cluster section asks of ``node``."""
    cluster = spec.cluster
    others = [n for n in cluster.nodes if n.name != node.name]
    dual = cluster.pod_cidr6 is not None
    resources = [sysctl_resource("net.ipv4.ip_forward", 1)]
    if dual:
        resources.append(sysctl_resource("net.ipv6.conf.all.forwarding", 1))
    underlay = cluster.underlay
    if underlay.prefix_length or underlay.prefix_length6:
        resources.append(Resource("link", link_address(underlay.device),
                                  {"name": underlay.device, "state": "up", "master": None, "mtu": underlay.mtu}))
        if underlay.prefix_length:
            resources.append(address_resource(underlay.device, f"{node.address}/{underlay.prefix_length}"))
        if underlay.prefix_length6 and node.address6:
            resources.append(address_resource(underlay.device, f"{node.address6}/{underlay.prefix_length6}",
                                              nodad=True))
    if cluster.encryption is not None:
        inner_mtu = underlay.mtu - WIREGUARD_OVERHEAD
        resources += _wireguard(spec, node, others, inner_mtu)
    elif cluster.routing.mode == "tunnel":
        inner_mtu = underlay.mtu - TUNNEL_OVERHEAD[cluster.routing.tunnel.protocol]
        resources += _tunnel(spec, node, others, inner_mtu)
    else:
        inner_mtu = underlay.mtu
        for other in others if cluster.routing.routes == "static" else ():  # bgp: 'netx bgp sync' installs them
            resources.append(_route(other.pod_cidr, via=str(other.address), dev=underlay.device))
            if dual and other.address6 is not None:
                resources.append(_route(other.pod_cidr6, via=str(other.address6), dev=underlay.device))
    for endpoint in endpoints_of(spec, node):
        resources += endpoint_resources(endpoint, endpoint_netns(spec, endpoint), inner_mtu, dual)
    return resources


def host_resources(spec: Any) -> list[Resource]:
    """The endpoints of a spec without cluster, on the host."""
    return [res for endpoint in spec.endpoints
            for res in endpoint_resources(endpoint, endpoint_netns(spec, endpoint), endpoint.mtu or ENDPOINT_MTU,
                                          dual=True)]


def _vtep(network: Any) -> str:
    """A node's tunnel address: the network address of its pod CIDR (as flannel does)."""
    return str(network.network_address)


def _tunnel(spec: Any, node: Node, others: list[Node], mtu: int) -> list[Resource]:
    tunnel = spec.cluster.routing.tunnel
    device = tunnel.device
    attrs: dict[str, Any] = {"name": device, "state": "up", "master": None, "type": tunnel.protocol, "mtu": mtu,
                             "mac": tunnel_mac(spec, node), "external": True, "vni": None, "port": tunnel.udp_port,
                             "ttl": None}
    if tunnel.protocol == "vxlan":
        attrs.update(local=None, remote=None, group=None, device=None, learning=False)
    else:
        attrs.update(remote=None)
    resources = [Resource("link", link_address(device), attrs),
                 address_resource(device, f"{_vtep(node.pod_cidr)}/32")]
    if node.pod_cidr6 is not None:
        resources.append(address_resource(device, f"{_vtep(node.pod_cidr6)}/128", nodad=True))
    for other in others:
        encap = {"type": "ip", "id": tunnel.vni, "dst": str(other.address)}
        mac = tunnel_mac(spec, other)
        for network in (other.pod_cidr, other.pod_cidr6):
            if network is None or (network.version == 6 and node.pod_cidr6 is None):
                continue
            resources.append(neighbour_resource(device, _vtep(network), mac))
            resources.append(_route(network, via=_vtep(network), dev=device, onlink=True, encap=encap))
    return resources


def _wireguard(spec: Any, node: Node, others: list[Node], mtu: int) -> list[Resource]:
    """Encryption: a WireGuard device, every other node a peer (its pod networks as allowed IPs, its
    underlay address as endpoint), and the routes to those pod networks through the device."""
    settings = spec.cluster.encryption.wireguard
    device = settings.device
    resources = [device_resource(device, port=settings.port, public=node.wireguard.public_key,
                                 private_key_file=node.wireguard.private_key_file, mtu=mtu)]
    for other in others:
        networks = [n for n in (other.pod_cidr, other.pod_cidr6 if node.pod_cidr6 else None) if n is not None]
        resources.append(peer_resource(device, other.name, public=other.wireguard.public_key,
                                       endpoint=f"{other.address}:{settings.port}",
                                       allowed_ips=[str(n) for n in networks], keepalive=settings.keepalive))
        for network in networks:
            route = _route(network, dev=device)
            resources.append(Resource(route.kind, route.address, route.attrs, route.owned,
                                      {**route.meta, "requires": [f"wireguard.{device}"]}))
    return resources


def endpoint_resources(endpoint: Endpoint, namespace: str, mtu: int, dual: bool) -> list[Resource]:
    """An endpoint in ``namespace``: the namespace, the veth pair, the gateway addresses on the host's end,
    the routes to the endpoint and what is inside; IPv6 too when ``dual`` (and the endpoint has it)."""
    interface = host_interface(endpoint)
    link = Resource("link", link_address(interface),
                    {"name": interface, "state": "up", "master": None, "type": "veth", "mtu": mtu,
                     "peer": {"name": "eth0", "netns": namespace}},
                    meta={"requires": [f"netns.{namespace}"]})
    resources = [namespace_resource(namespace, f"{PURPOSE}{endpoint.name}"), link,
                 address_resource(interface, f"{GATEWAY4}/32"),
                 _route(f"{endpoint.address}/32", dev=interface)]
    addresses, gateways = [f"{endpoint.address}/32"], [GATEWAY4]
    if dual and endpoint.address6 is not None:
        resources += [address_resource(interface, f"{GATEWAY6}/64", nodad=True),
                      _route(f"{endpoint.address6}/128", dev=interface)]
        addresses.append(f"{endpoint.address6}/128")
        gateways.append(GATEWAY6)
    resources.append(endpoint_resource(endpoint.name, netns_name=namespace, host_interface=interface,
                                       interface="eth0", mtu=mtu, addresses=addresses, gateways=gateways,
                                       labels=endpoint.labels))
    return resources

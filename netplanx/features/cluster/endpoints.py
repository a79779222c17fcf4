"""The inside of an endpoint's namespace: its interface up with its MTU, its addresses, its default
routes through the node, and loopback up. The namespace, the veth pair and the node-side routes are
resources of their own kinds; this one is what netx configures inside.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from netplanx.engine.resource import Dependency, Query, Resource
from netplanx.features.base import StepwiseType
from netplanx.features.cluster.namespaces import owned_namespaces
from netplanx.features.interfaces.addresses import IFA_F_NODAD
from netplanx.system import netns, rtnl
from netplanx.system.netlink import NetlinkError
from netplanx.system.pyroute import IPRoute

PURPOSE = "endpoint "
RTNH_F_ONLINK = 4
MAIN_TABLE = 254


def endpoint_resource(name: str, *, netns_name: str, host_interface: str, interface: str, mtu: int,
                      addresses: Sequence[str], gateways: Sequence[str], labels: Mapping[str, str] | None = None,
                      owned: bool = True) -> Resource:
    """``endpoint.NAME``; labels are carried for the policy engine, never compared with the kernel."""
    attrs = {"netns": netns_name, "interface": interface, "mtu": mtu, "addresses": sorted(addresses),
             "gateways": sorted(gateways)}
    return Resource("endpoint", f"endpoint.{name}", attrs, owned,
                    {"host_interface": host_interface, "labels": dict(labels or {})})


class EndpointType(StepwiseType):
    kind = "endpoint"
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless", "update": "address loss", "replace": "traffic loss", "delete": "traffic loss",
    }

    def dependencies(self, resource: Resource) -> list[Dependency]:
        deps = [Dependency(f"netns.{resource.attrs['netns']}")]
        if resource.meta.get("host_interface"):
            deps.append(Dependency(f"link.{resource.meta['host_interface']}"))
        return deps

    def disruption(self, action: str, changed: Sequence[str], before: Resource | None,
                   after: Resource | None) -> str:
        if action == "update" and set(changed) <= {"mtu"}:
            return "hitless"
        return self.disruption_of[action]

    def read(self, query: Query) -> list[Resource]:
        wanted = {r.address: r for r in query.of_kind(self.kind)}
        places = {addr: (r.attrs["netns"], r.attrs["interface"], r.meta.get("host_interface", ""))
                  for addr, r in wanted.items()}
        for ns, purpose in owned_namespaces(self.ctx).items():
            if purpose.startswith(PURPOSE):
                places.setdefault(f"endpoint.{purpose[len(PURPOSE):]}", (ns, "eth0", ""))
        found = []
        owned = owned_namespaces(self.ctx)
        for address, (ns, interface, host_interface) in sorted(places.items()):
            if not netns.exists(ns):
                continue
            state = self._inside(ns, interface)
            if state is not None:
                found.append(endpoint_resource(address.split(".", 1)[1], netns_name=ns, host_interface=host_interface,
                                               interface=interface, owned=ns in owned, **state))
        return found

    def _inside(self, ns: str, interface: str) -> dict[str, Any] | None:
        """MTU, addresses and default gateways of ``interface`` in the endpoint's namespace (lean socket)."""
        nl = self.ctx.nl_in(ns)
        link = next((m for m in rtnl.links(nl, {}) if m.get_attr("IFLA_IFNAME") == interface), None)
        if link is None:
            return None
        index = link["index"]
        addresses = []
        for message in rtnl.addresses(nl):
            text = f"{message.get_attr('IFA_ADDRESS')}/{message['prefixlen']}"
            if message["index"] == index and not ipaddress.ip_interface(text).is_link_local:
                addresses.append(str(ipaddress.ip_interface(text)))
        gateways = [r.get_attr("RTA_GATEWAY") for family in (socket.AF_INET, socket.AF_INET6)
                    for r in rtnl.routes(nl, family)
                    if r["table"] == MAIN_TABLE and r["dst_len"] == 0 and r.get_attr("RTA_OIF") == index
                    and r.get_attr("RTA_GATEWAY")]
        return {"mtu": link.get_attr("IFLA_MTU"), "addresses": addresses, "gateways": gateways}

    def _create(self, res: Resource) -> None:
        self._configure(res)

    def _update(self, before: Resource, after: Resource) -> None:
        self._configure(after)

    def _delete(self, res: Resource) -> None:
        self._clear(res)

    def _configure(self, res: Resource) -> None:
        a = res.attrs
        sock = self.ctx.ipr_in(a["netns"])
        index = self._index(sock, a["interface"])
        sock.link("set", index=sock.link_lookup(ifname="lo")[0], state="up")
        sock.link("set", index=index, mtu=a["mtu"], state="up")
        current = self._inside(a["netns"], a["interface"]) or {"addresses": [], "gateways": []}
        for text in sorted(set(current["addresses"]) - set(a["addresses"])):
            self._address(sock, "del", index, text)
        for text in sorted(set(a["addresses"]) - set(current["addresses"])):
            self._address(sock, "add", index, text)
        for gateway in sorted(set(current["gateways"]) - set(a["gateways"])):
            self._default(sock, "del", index, gateway)
        for gateway in a["gateways"]:
            self._default(sock, "replace", index, gateway)
        self.ctx.count_write(2)

    def _clear(self, res: Resource) -> None:
        a = res.attrs
        if not netns.exists(a["netns"]):
            return  # the namespace went first: nothing is left inside
        sock = self.ctx.ipr_in(a["netns"])
        found = sock.link_lookup(ifname=a["interface"])
        if not found:
            return
        current = self._inside(a["netns"], a["interface"]) or {"addresses": [], "gateways": []}
        for gateway in current["gateways"]:
            self._default(sock, "del", found[0], gateway)
        for text in current["addresses"]:
            self._address(sock, "del", found[0], text)

    def _address(self, sock: IPRoute, command: str, index: int, text: str) -> None:
        interface = ipaddress.ip_interface(text)
        extra = {"flags": IFA_F_NODAD} if command == "add" and interface.version == 6 else {}
        sock.addr(command, index=index, address=str(interface.ip), prefixlen=interface.network.prefixlen, **extra)
        self.ctx.count_write()

    def _default(self, sock: IPRoute, command: str, index: int, gateway: str) -> None:
        version = ipaddress.ip_address(gateway).version
        request = {"dst": "0.0.0.0/0" if version == 4 else "::/0", "gateway": gateway, "oif": index,
                   "family": socket.AF_INET if version == 4 else socket.AF_INET6}
        if version == 4:
            request["flags"] = RTNH_F_ONLINK
        sock.route(command, **request)
        self.ctx.count_write()

    @staticmethod
    def _index(sock: IPRoute, interface: str) -> int:
        found = sock.link_lookup(ifname=interface)
        if not found:
            raise NetlinkError(errno.ENODEV, f"No such device in the endpoint namespace: {interface}")
        return found[0]

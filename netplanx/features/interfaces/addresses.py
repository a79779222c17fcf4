"""IP addresses on links; netx's own carry address protocol ``netx`` (IFA_PROTO)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from typing import ClassVar

from netplanx.engine.resource import Dependency, Query, Resource
from netplanx.features.base import OnLinkType
from netplanx.system import rtnl
from netplanx.system.names import NETX_PROTOCOL, live_meta

KERNEL_PROTOCOLS = (1, 2, 3)  # IFAPROT_KERNEL_LO, _RA, _LL
IFA_F_NODAD = 0x02
LOOPBACK_DEFAULTS = ("127.0.0.1/8", "::1/128")


def address_resource(dev: str, address: str, owned: bool = True, protocol: int | None = None,
                     nodad: bool = False) -> Resource:
    """``address.br0.10.0.0.1/24``; ``nodad`` skips IPv6 duplicate address detection (usable at once)."""
    attrs = {"dev": dev, "address": address}
    if nodad:
        attrs["nodad"] = True
    return Resource("address", f"address.{dev}.{address}", attrs, owned, live_meta(protocol))


@functools.lru_cache(maxsize=4096)
def _link_local(ip: str) -> bool:
    return ipaddress.ip_address(ip).is_link_local


class AddressType(OnLinkType):
    kind = "address"
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless", "update": "hitless", "replace": "address loss", "delete": "address loss",
    }

    def dependencies(self, resource: Resource) -> list[Dependency]:
        """Its link; an IPv4 address stays when the link goes down, an IPv6 one goes (keep_addr_on_down 0)."""
        ipv4 = ":" not in resource.attrs["address"]
        return [Dependency(f"link.{resource.attrs['dev']}", outlives_down=ipv4)]

    def read(self, query: Query) -> list[Resource]:
        names = self.ctx.link_names()
        found = []
        for message in rtnl.addresses(self.ctx.nl):
            protocol = message.get_attr("IFA_PROTO") or 0
            if protocol in KERNEL_PROTOCOLS:
                continue  # kernel-made addresses are never resources
            ip = message.get_attr("IFA_ADDRESS") if message["family"] == 10 else (
                message.get_attr("IFA_LOCAL") or message.get_attr("IFA_ADDRESS"))
            text = f"{ip}/{message['prefixlen']}"  # canonical already (rtnl.ip)
            if protocol != NETX_PROTOCOL and _link_local(ip):
                continue  # nor are link-local ones that netx did not make
            dev = names.get(message["index"], f"if{message['index']}")
            if dev == "lo" and text in LOOPBACK_DEFAULTS:
                continue
            nodad = bool((message.get_attr("IFA_FLAGS") or message["flags"]) & IFA_F_NODAD)
            found.append(address_resource(dev, text, protocol == NETX_PROTOCOL, protocol, nodad))
        return found

    def _request(self, command: str, res: Resource, index: int) -> None:
        interface = ipaddress.ip_interface(res.attrs["address"])
        protocol = NETX_PROTOCOL if res.owned else res.meta.get("protocol", 0)
        extra: dict[str, int] = {"proto": protocol} if command != "del" and protocol else {}
        if command != "del" and res.attrs.get("nodad"):
            extra["flags"] = IFA_F_NODAD
        self.ctx.ipr.addr(command, index=index, address=str(interface.ip), prefixlen=interface.network.prefixlen,
                          **extra)

"""Permanent neighbour entries (IP -> MAC on a link), such as a tunnel's remote endpoints.

netx's own carry neighbour protocol ``netx`` (NDA_PROTOCOL); only permanent entries are resources (the
kernel's learned ones come and go).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import ClassVar

from netplanx.engine.resource import Query, Resource
from netplanx.features.base import OnLinkType
from netplanx.system import rtnl
from netplanx.system.names import NETX_PROTOCOL, live_meta

NUD_PERMANENT = 0x80


def neighbour_resource(dev: str, ip: str, lladdr: str, owned: bool = True, protocol: int | None = None) -> Resource:
    """``neigh.vxlan0.10.244.2.0``."""
    return Resource("neighbour", f"neigh.{dev}.{ip}", {"dev": dev, "ip": ip, "lladdr": lladdr}, owned,
                    live_meta(protocol))


class NeighbourType(OnLinkType):
    kind = "neighbour"
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless", "update": "hitless", "replace": "route gap", "delete": "route gap",
    }

    def read(self, query: Query) -> list[Resource]:
        names = self.ctx.link_names()
        found = []
        for family in (socket.AF_INET, socket.AF_INET6):
            for message in rtnl.neighbours(self.ctx.nl, family):
                if not message["state"] & NUD_PERMANENT or message.get_attr("NDA_LLADDR") is None:
                    continue
                protocol = message.get_attr("NDA_PROTOCOL") or 0
                dev = names.get(message["ifindex"], f"if{message['ifindex']}")
                found.append(neighbour_resource(dev, message.get_attr("NDA_DST"), message.get_attr("NDA_LLADDR"),
                                                protocol == NETX_PROTOCOL, protocol))
        return found

    def _request(self, command: str, res: Resource, index: int) -> None:
        a = res.attrs
        request = {"dst": a["ip"], "ifindex": index, "state": NUD_PERMANENT}
        if command != "del":
            request.update(lladdr=a["lladdr"],
                           NDA_PROTOCOL=NETX_PROTOCOL if res.owned else res.meta.get("protocol", 0))
        self.ctx.ipr.neigh(command, **request)

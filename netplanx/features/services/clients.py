"""``lbclient.ENDPOINT``: an endpoint's addresses, registered for its network namespace in lb_sk_client.

connect() knows no source address yet, so the socket programs cannot hash the client address as the packet
programs do for a clientIP-affinity service. With the endpoint's addresses registered under its namespace's
cookie, they hash exactly that address: a client's sockets and its packets that pass the tc path go to the
same backend. (Without a registration, the socket programs hash the namespace cookie: one backend per
namespace still, but not necessarily the tc path's.) The entry lives with the namespace: a namespace made
again has a new cookie, so the entry is written again with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from netplanx.engine.resource import Dependency, Query, Resource
from netplanx.features.base import StepwiseType
from netplanx.features.services.lbmaps import SkClient, addr_in, addr_out
from netplanx.features.services.services import PROGRAM_ADDRESS, LbContext, family
from netplanx.system import netns
from netplanx.system.context import KernelContext

RECORD = "lb-clients"  # endpoint -> namespace, of the registrations netx wrote


def client_resource(name: str, namespace: str, addresses: Sequence[str], owned: bool = True,
                    cookie: int | None = None) -> Resource:
    """Endpoint ``name`` in ``namespace`` with its IPv4 and (optional) IPv6 address."""
    return Resource("lbclient", f"lbclient.{name}", {"netns": namespace, "addresses": sorted(addresses)}, owned,
                    {"_cookie": cookie} if cookie is not None else {})


class ClientType(StepwiseType):
    kind = "lbclient"
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless: clientIP affinity of the namespace's sockets follows its address",
        "update": "hitless: clientIP affinity of the namespace's sockets follows its address",
        "delete": "hitless: the namespace's sockets hash its cookie for clientIP affinity"}

    def __init__(self, ctx: KernelContext, lb: LbContext):
        super().__init__(ctx)
        self.lb = lb

    def dependencies(self, resource: Resource) -> list[Dependency]:
        """The program's maps, and the namespace: the registration dies with it (a new one has a new cookie)."""
        namespace = resource.attrs["netns"]
        return [Dependency(PROGRAM_ADDRESS), *([Dependency(f"netns.{namespace}")] if namespace else [])]

    def read(self, query: Query) -> list[Resource]:
        """The entries of lb_sk_client, named after the endpoint whose namespace has the cookie."""
        maps = self.lb.maps()
        entries = dict(maps.sk_client.items()) if maps is not None else {}
        if not entries:
            return []
        places = {**self.ctx.store.load(RECORD),
                  **{r.address.removeprefix("lbclient."): r.attrs["netns"] for r in query.of_kind(self.kind)}}
        cookies = {netns.cookie(ns): (name, ns) for name, ns in places.items() if netns.exists(ns)}
        found = []
        for cookie, value in entries.items():
            name, namespace = cookies.get(cookie, (f"cookie-{cookie}", None))
            addresses = [addr_out(a) for a in (value.v4, value.v6) if any(bytes(a))]
            found.append(client_resource(name, namespace, addresses, cookie=cookie))
        return found

    def _create(self, res: Resource) -> None:
        maps = self.lb.writable()
        name, namespace = res.address.removeprefix("lbclient."), res.attrs["netns"]
        by_family = {family(a): a for a in res.attrs["addresses"]}
        maps.sk_client.update(netns.cookie(namespace), SkClient(addr_in(by_family.get("ipv4")),
                                                                 addr_in(by_family.get("ipv6"))))
        recorded = self.ctx.store.load(RECORD)
        self.ctx.store.save(RECORD, {**recorded, name: namespace})
        self.ctx.count_write()

    def _update(self, before: Resource, after: Resource) -> None:
        self._create(after)

    def _delete(self, res: Resource) -> None:
        maps = self.lb.maps()
        cookie = res.meta.get("_cookie")
        if maps is not None and cookie is not None:
            maps.sk_client.delete(cookie)
        recorded = self.ctx.store.load(RECORD)
        recorded.pop(res.address.removeprefix("lbclient."), None)
        self.ctx.store.save(RECORD, recorded)
        self.ctx.count_write()

"""The ``routes``, ``rules`` and ``neighbours`` sections, and the ``ping`` post-condition."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from netplanx.document.fields import IP, IP4, Destination, IfName, Mac, Network, SpecModel, Table


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


class Encap(SpecModel):
    """Lightweight tunnel metadata of a route through a collect-metadata (``external``) vxlan or geneve."""

    type: Literal["ip"] = Field("ip", description="ip: the tunnel's id and remote address.")
    id: int = Field(ge=0, le=16777215, description="Tunnel id: the VNI (0-16777215).")
    dst: IP4 | None = Field(None, description="The remote tunnel endpoint, IPv4 (unset: the device's own remote).")


class Route(SpecModel):
    """A route in a routing table."""

    to: Destination = Field(description="Destination network in CIDR form, or 'default'.")
    via: IP | None = Field(None, description="Gateway.")
    dev: IfName | None = Field(None, description="Output interface.")
    src: IP | None = Field(None, description="Preferred source address.")
    table: Table = Field("main", description="Table: main, local, default or 1-4294967295.")
    vrf: IfName | None = Field(None, description="The vrf whose table the route is in (instead of table).")
    metric: int | None = Field(None, ge=0, le=4294967295, description="Metric (priority); unset: kernel default.")
    scope: Literal["global", "link", "host"] | None = Field(None, description="Scope (IPv4); unset: derived.")
    type: Literal["unicast", "local", "blackhole", "unreachable", "prohibit"] = Field(
        "unicast", description="Route type (local: deliver to this host, as a transparent proxy's table does).")
    onlink: bool = Field(False, description="Treat the gateway as directly reachable on dev.")
    nexthops: list[Nexthop] = Field(default_factory=list, description="Multipath (ECMP) next hops.")
    encap: Encap | None = Field(None, description="Tunnel metadata (an external vxlan or geneve as dev).")

    @model_validator(mode="after")
    def _consistent(self) -> Route:
        if self.type == "local" and (self.via or self.nexthops or not self.dev):
            raise ValueError("a local route needs dev and takes no via or nexthops (allowed: dev: lo)")
        if self.type not in ("unicast", "local") and (self.via or self.dev or self.nexthops):
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
        if self.encap and not self.dev:
            raise ValueError("encap needs dev, the tunnel device (allowed: dev: an external vxlan or geneve)")
        if self.vrf is not None and "table" in self.model_fields_set:
            raise ValueError("vrf and table are exclusive (allowed: one of them; vrf names its table)")
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


class Neighbour(SpecModel):
    """A permanent neighbour entry: ``ip`` on link ``dev`` is at link-layer address ``lladdr``."""

    dev: IfName = Field(description="The link.")
    ip: IP = Field(description="The neighbour's IPv4 or IPv6 address.")
    lladdr: Mac = Field(description="Its MAC address.")


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
    vrf: IfName | None = Field(None, description="The vrf whose table to look up (action lookup; instead of table).")

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        families = {n.version for n in (self.from_, self.to) if n}
        if self.family:
            families.add(4 if self.family == "ipv4" else 6)
        if len(families) > 1:
            raise ValueError("rule mixes IPv4 and IPv6 in family, from and to (allowed: one family)")
        if self.vrf is not None and self.table is not None:
            raise ValueError("vrf and table are exclusive (allowed: one of them; vrf names its table)")
        if self.action == "lookup" and self.table is None and self.vrf is None:
            raise ValueError("a lookup rule needs a table (allowed: main, local, default, 1-4294967295, or vrf)")
        if self.action != "lookup" and (self.table is not None or self.vrf is not None):
            raise ValueError(f"a {self.action} rule takes no table (allowed: omit table and vrf)")
        if self.fwmask is not None and self.fwmark is None:
            raise ValueError("fwmask needs fwmark (allowed: set fwmark too)")
        return self

    @property
    def ip_family(self) -> int:
        if self.family:
            return 4 if self.family == "ipv4" else 6
        networks = [n for n in (self.from_, self.to) if n]
        return networks[0].version if networks else 4


class PingCheck(SpecModel):
    """The address must answer ping from the namespace after apply."""

    ping: IP = Field(description="Address to ping.")
    count: int = Field(3, ge=1, le=20, description="Echo requests; one answer is enough.")
    timeout: int = Field(2, ge=1, le=30, description="Seconds to wait for each answer.")

    def to_check(self) -> dict[str, object]:
        return {"type": "ping", "address": str(self.ping), "count": self.count, "timeout": self.timeout}

"""Policy routing rules, identified by family and priority; netx's own carry protocol ``netx``."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from netplanx.engine.resource import Dependency, Query, Resource
from netplanx.features.base import KernelType, gone_is_done
from netplanx.system import rtnl
from netplanx.system.names import NETX_PROTOCOL, RULE_ACTION_NAMES, RULE_ACTIONS, live_meta

PROTO_KERNEL = 2
FAMILIES = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}
FAMILY_NAMES = {number: name for name, number in FAMILIES.items()}
ALL_MASK = 0xFFFFFFFF


def rule_resource(*, family: str, priority: int, action: str, table: int | None, from_: str | None,
                  to: str | None, iif: str | None, oif: str | None, fwmark: int | None, fwmask: int | None,
                  owned: bool = True, protocol: int | None = None) -> Resource:
    """``rule.ipv4.100`` (a foreign rule that shares the priority is read as ``rule.ipv4.100#1``...)."""
    attrs = {"family": family, "priority": priority, "action": action, "table": table, "from": from_, "to": to,
             "iif": iif, "oif": oif, "fwmark": fwmark,
             "fwmask": (ALL_MASK if fwmask is None else fwmask) if fwmark is not None else None}
    return Resource("rule", f"rule.{family}.{priority}", attrs, owned, live_meta(protocol))


class RuleType(KernelType):
    kind = "rule"
    replace_on = frozenset({"action", "table", "from", "to", "iif", "oif", "fwmark", "fwmask"})
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless", "update": "hitless", "replace": "route gap", "delete": "route gap",
    }

    def dependencies(self, resource: Resource) -> list[Dependency]:
        """A lookup rule comes after the routes of its table (and goes before them): traffic it sends
        there finds them."""
        table = resource.attrs.get("table")
        if table is None:
            return []
        return [Dependency(kind="route", lifetime=False, matches=lambda route: route.attrs["table"] == table)]

    def read(self, query: Query) -> list[Resource]:
        """Rules have no unique key in the kernel: a foreign rule takes the plain ``rule.FAMILY.PRIORITY``
        address only when it is the one the spec describes, or when no other rule shares its priority."""
        wanted = {r.address: r for r in query.of_kind(self.kind)}
        found = [self._resource(m) for m in rtnl.rules(self.ctx.nl) if m["family"] in FAMILY_NAMES
                 and m.get_attr("FRA_PROTOCOL") != PROTO_KERNEL]
        taken = {r.address for r in found if r.owned}
        sharing: dict[str, int] = {}
        for res in found:
            sharing[res.address] = sharing.get(res.address, 0) + 1
        result = []
        for res in found:
            plain = res.address
            want = wanted.get(plain)
            fits = want is not None and want.attrs == res.attrs
            if not res.owned and (plain in taken or (want is not None and not fits)
                                  or (want is None and sharing[plain] > 1)):
                suffix = 1 + sum(1 for r in result if r.address.startswith(f"{plain}#"))
                res = Resource(res.kind, f"{plain}#{suffix}", res.attrs, res.owned, res.meta)
            else:
                taken.add(plain)
            result.append(res)
        return result

    def _resource(self, message: Any) -> Resource:
        protocol = message.get_attr("FRA_PROTOCOL") or 0
        table = message.get_attr("FRA_TABLE") or message["table"]
        action = RULE_ACTION_NAMES.get(message["action"], str(message["action"]))
        return rule_resource(
            family=FAMILY_NAMES[message["family"]], priority=message.get_attr("FRA_PRIORITY") or 0, action=action,
            table=table if action == "lookup" else None,
            from_=_prefix(message.get_attr("FRA_SRC"), message["src_len"]),
            to=_prefix(message.get_attr("FRA_DST"), message["dst_len"]),
            iif=message.get_attr("FRA_IIFNAME"), oif=message.get_attr("FRA_OIFNAME"),
            fwmark=message.get_attr("FRA_FWMARK"), fwmask=message.get_attr("FRA_FWMASK"),
            owned=protocol == NETX_PROTOCOL, protocol=protocol,
        )

    def create(self, resources: Sequence[Resource]) -> list[Exception | None]:
        return [self._call("add", r) for r in resources]

    def update(self, pairs: Sequence[tuple[Resource, Resource]]) -> list[Exception | None]:
        """Only the owner marker changes in place: the new rule is added before the old one goes (rules
        may share a priority), so lookups never miss it."""
        results: list[Exception | None] = []
        for before, after in pairs:
            error = self._call("add", after)
            results.append(error if error else self._call("del", before))
        return results

    def delete(self, resources: Sequence[Resource]) -> list[Exception | None]:
        return [gone_is_done(self._call("del", r)) for r in resources]

    def _call(self, command: str, res: Resource) -> Exception | None:
        a = res.attrs
        request: dict[str, Any] = {
            "family": FAMILIES[a["family"]], "priority": a["priority"], "action": RULE_ACTIONS[a["action"]],
            "protocol": NETX_PROTOCOL if res.owned else res.meta.get("protocol", 0),
        }
        if a["table"] is not None:
            request["table"] = a["table"]
        for key, field in (("from", "src"), ("to", "dst")):
            if a[key]:
                network = ipaddress.ip_network(a[key])
                request[field] = str(network.network_address)
                request[f"{field}_len"] = network.prefixlen
        for key, field in (("iif", "iifname"), ("oif", "oifname"), ("fwmark", "fwmark"), ("fwmask", "fwmask")):
            if a[key] is not None:
                request[field] = a[key]
        try:
            self.ctx.ipr.rule(command, **request)
            self.ctx.count_write()
        except OSError as exc:
            return exc
        return None


def _prefix(address: str | None, length: int) -> str | None:
    return str(ipaddress.ip_network(f"{address}/{length}")) if address else None

"""Adoption of sysctls: the keys netx manages, and the router sysctls of the namespace."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from netplanx.engine.resource import Resource

ROUTER_SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.rp_filter",
    "net.ipv4.fib_multipath_hash_policy",
    "net.ipv6.fib_multipath_hash_policy",
)


def adopt_sysctls(live: Mapping[str, Sequence[Resource]], spec: dict[str, Any]) -> None:
    sysctls = {r.attrs["key"]: _number(r.attrs["value"]) for r in live.get("sysctl", ())}
    if sysctls:
        spec["sysctl"] = dict(sorted(sysctls.items()))


def _number(value: str) -> int | str:
    return int(value) if value.lstrip("-").isdigit() else value

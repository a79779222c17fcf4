"""Adoption of sysctls: the keys netx manages, and the router sysctls of the namespace."""

from __future__ import annotations

from netplanx.engine.feature import Adoption

ROUTER_SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.rp_filter",
    "net.ipv4.fib_multipath_hash_policy",
    "net.ipv6.fib_multipath_hash_policy",
)


def adopt_sysctls(adoption: Adoption) -> None:
    live = adoption.live("sysctl")
    adoption.describe(live)
    if live:
        adoption.spec["sysctl"] = dict(sorted((r.attrs["key"], _number(r.attrs["value"])) for r in live))


def _number(value: str) -> int | str:
    return int(value) if value.lstrip("-").isdigit() else value

"""Kernel numbers and the names netx shows for them; netx's ownership marker."""

from __future__ import annotations

NETX_PROTOCOL = 78  # rtnetlink protocol of routes, rules and addresses netx creates ("proto netx")
NETX_BGP_PROTOCOL = 79  # routes 'netx bgp sync' installs from what BGP peers announce ("proto netx-bgp")
NETX_ALIAS = "netx"  # IFLA_IFALIAS of links netx creates

TABLES = {"main": 254, "local": 255, "default": 253}
TABLE_NAMES = {number: name for name, number in TABLES.items()}
SCOPES = {"global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
SCOPE_NAMES = {number: name for name, number in SCOPES.items()}
ROUTE_TYPES = {"unicast": 1, "local": 2, "blackhole": 6, "unreachable": 7, "prohibit": 8}
ROUTE_TYPE_NAMES = {number: name for name, number in ROUTE_TYPES.items()}
RULE_ACTIONS = {"lookup": 1, "blackhole": 6, "unreachable": 7, "prohibit": 8}
RULE_ACTION_NAMES = {number: name for name, number in RULE_ACTIONS.items()}


def table_number(table: str | int) -> int:
    return TABLES[table] if isinstance(table, str) else table


def table_name(number: int) -> str:
    return TABLE_NAMES.get(number, str(number))


def live_meta(protocol: int | None) -> dict[str, int]:
    """A read object carries the protocol it had (to write it back unchanged); a desired one none."""
    return {} if protocol is None else {"protocol": protocol}

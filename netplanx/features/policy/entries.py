"""Policy map entries as plain values (no spec model: the providers and ``netx flows`` import this)."""

from __future__ import annotations

from typing import NamedTuple

PROTOCOLS = {"any": 0, "icmp": 1, "tcp": 6, "udp": 17}
PROTOCOL_NAMES = {**{v: k for k, v in PROTOCOLS.items()}, 58: "icmp6"}  # a policy's icmp covers ICMPv6 too
DIRECTIONS = ("ingress", "egress")
DEFAULT_DENY, OPEN_RULE, RULE_BASE = 0, 1, 16
BUILTIN_RULES = {DEFAULT_DENY: "default-deny", OPEN_RULE: "open"}
MAX_RULES = 16384 - RULE_BASE  # the per-rule counter array has 16384 slots


class Key(NamedTuple):
    """A policymap key for one endpoint: 0 = ingress, 1 = egress; 0 is the wildcard of the others."""

    egress: int
    identity: int
    protocol: int
    port: int


class Verdict(NamedTuple):
    deny: bool
    rule: int

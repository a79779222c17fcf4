"""Policy map entries as plain values (no spec model: the providers and ``netx flows`` import this)."""

from __future__ import annotations

from typing import NamedTuple

PROTOCOLS = {"any": 0, "icmp": 1, "tcp": 6, "udp": 17}
PROTOCOL_NAMES = {**{v: k for k, v in PROTOCOLS.items()}, 58: "icmp6"}  # a policy's icmp covers ICMPv6 too
DIRECTIONS = ("ingress", "egress")
DEFAULT_DENY, OPEN_RULE, RULE_BASE = 0, 1, 16
BUILTIN_RULES = {DEFAULT_DENY: "default-deny", OPEN_RULE: "open"}
MAX_RULES = 16384 - RULE_BASE  # the per-rule counter array has 16384 slots
PORT_BITS = 16


class Key(NamedTuple):
    """A policymap key for one endpoint: 0 = ingress, 1 = egress; identity and protocol 0 are wildcards.

    Ports are an aligned block: ``port`` is its first and ``bits`` how many leading bits of a packet's port
    must equal its own (16: that one port; 0: every port, with ``port`` 0)."""

    egress: int
    identity: int
    protocol: int
    port: int
    bits: int = 0

    @property
    def last(self) -> int:
        """The block's last port."""
        return self.port + (1 << (PORT_BITS - self.bits)) - 1 if self.bits else 0

    def covers(self, port: int) -> bool:
        return port >> (PORT_BITS - self.bits) == self.port >> (PORT_BITS - self.bits)


def port_blocks(first: int, last: int) -> list[tuple[int, int]]:
    """The fewest aligned blocks (port, bits) covering first..last exactly: 80-95 is (80, 12); 8000-8099
    is 8000-8063, 8064-8095 and 8096-8099; no range takes more than 30 blocks."""
    blocks = []
    while first <= last:
        size = first & -first or 1 << PORT_BITS  # the largest block aligned at first ...
        while first + size - 1 > last:  # ... that ends within the range
            size >>= 1
        blocks.append((first, PORT_BITS - size.bit_length() + 1))
        first += size
    return blocks


class Verdict(NamedTuple):
    """Allow or deny, and the rule that decided; ``proxy``: allowed through the node's L7 proxy, whose HTTP
    rules decide each request."""

    deny: bool
    rule: int
    proxy: bool = False

"""Compile the spec's policies for one node: ipcache prefixes and each local endpoint's policy entries.

A policy entry is Cilium's policymap key (direction, peer identity, protocol, destination port block) with
identity 0 and protocol 0 as wildcards, and a verdict (allow or deny, and the rule that wrote it). A port
range becomes the fewest aligned power-of-two blocks that cover it (``entries.port_blocks``), each one
entry. The datapath takes, among the peer's entries that match the packet, the most specific one (longest
prefix: a port block before a smaller-prefix block before the protocol alone before any protocol); when
the peer has none, the same among the entries for any peer; no match is a drop in an enforced direction.
Deny wins over allow because every allow entry that a deny entry overlaps gets the overlap written as a
deny entry: two aligned blocks are nested or disjoint, so the overlap is at least as specific as both and
is found first.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from netplanx.engine.feature import NodeView
from netplanx.engine.resource import Resource
from netplanx.features.cluster.model import Endpoint, Node
from netplanx.features.cluster.nodes import GATEWAY4, GATEWAY6, host_interface
from netplanx.features.policy.entries import (
    BUILTIN_RULES,
    DIRECTIONS,
    OPEN_RULE,
    PORT_BITS,
    PROTOCOLS,
    RULE_BASE,
    Key,
    Verdict,
    port_blocks,
)
from netplanx.features.policy.identity import (
    ANY,
    HOST,
    REMOTE_NODE,
    RESERVED,
    WORLD,
    cidr_identity,
    identity_name,
    label_identity,
    label_text,
    selects,
)
from netplanx.features.policy.l7resources import l7_resources
from netplanx.features.policy.l7scopes import Scope, l7_scopes
from netplanx.features.policy.model import Peer, Policy, PortRule
from netplanx.features.policy.resources import ipcache_resource, policy_program_resource, policy_resource


@dataclass
class Compiled:
    """What one node's datapath holds: identity and rule names, ipcache, per-endpoint entries; and what its L7
    proxy applies (the scopes)."""

    identities: dict[int, str] = field(default_factory=dict)
    rules: dict[int, str] = field(default_factory=lambda: dict(BUILTIN_RULES))
    ipcache: dict[str, tuple[int, str]] = field(default_factory=dict)
    endpoints: dict[str, dict[Key, Verdict]] = field(default_factory=dict)
    scopes: list[Scope] = field(default_factory=list)


def rule_names(spec: Any) -> list[tuple[Policy, str, str, int, object]]:
    """Every rule of every policy in spec order: (policy, direction, verdict, rule id, rule)."""
    found = []
    for policy in spec.policies:
        for direction, verdict, rules in policy.sections():
            for rule in rules:
                found.append((policy, direction, verdict, RULE_BASE + len(found), rule))
    return found


def rule_label(policy: Policy, direction: str, verdict: str, index: int) -> str:
    section = direction if verdict == "allow" else f"{direction}Deny"
    return f"{policy.name}/{section}[{index}]"


def policy_cidrs(spec: Any) -> list[str]:
    return sorted({str(p.cidr) for policy in spec.policies for _d, _v, rules in policy.sections()
                   for rule in rules for p in (rule.peers or []) if p.cidr is not None})


class Resolver:
    """Turns peers into sets of identities (cached: many rules name the same peers)."""

    def __init__(self, spec: Any):
        self.endpoint_ids = {e.name: label_identity(e.labels) for e in spec.endpoints}
        self.cidrs = {c: cidr_identity(c) for c in policy_cidrs(spec)}
        self.spec = spec
        self._cache: dict[str, frozenset[int]] = {}

    def peers(self, peers: list[Peer] | None) -> frozenset[int]:
        if peers is None:
            return frozenset({ANY})
        return frozenset().union(*(self.peer(p) for p in peers)) if peers else frozenset()

    def peer(self, peer: Peer) -> frozenset[int]:
        cache_key = peer.model_dump_json()
        if cache_key not in self._cache:
            self._cache[cache_key] = frozenset(self._resolve(peer))
        return self._cache[cache_key]

    def _resolve(self, peer: Peer) -> set[int]:
        if peer.labels is not None:
            return {label_identity(e.labels) for e in self.spec.endpoints if selects(peer.labels, e.labels)}
        if peer.cidr is not None:
            found = {i for c, i in self.cidrs.items()
                     if (n := ipaddress.ip_network(c)).version == peer.cidr.version and n.subnet_of(peer.cidr)}
            return found | ({WORLD} if peer.cidr.prefixlen == 0 else set())
        return {"host": {HOST}, "remote-node": {REMOTE_NODE}, "world": {WORLD, *self.cidrs.values()},
                "cluster": {HOST, REMOTE_NODE, *self.endpoint_ids.values()}, "all": {ANY}}[peer.entity]


def _ports(ports: list[PortRule]) -> list[tuple[int, int, int, bool]]:
    """(protocol, first port of a block, prefix bits, L7) for every block of every port rule; any: (0, 0, 0)."""
    if not ports:
        return [(0, 0, 0, False)]
    return [(PROTOCOLS[p.protocol], *block, p.rules is not None) for p in ports
            for block in (port_blocks(p.port, p.end_port or p.port) if p.port is not None else [(0, 0)])]


def _plain_allow(allow: dict[Key, Verdict], key: Key) -> Verdict | None:
    """An L4 allow of the same peer (or of any peer) that covers an L7 entry's port: it wins, and the connection
    is not redirected (Cilium allows such traffic too)."""
    for other, verdict in allow.items():
        if (not verdict.proxy and other.egress == key.egress and other.identity in (key.identity, ANY)
                and other.protocol in (key.protocol, 0) and (not other.bits or other.covers(key.port))):
            return verdict
    return None


def _overlap(a: Key, b: Key) -> Key | None:
    """The packets both keys match, as one key (None when they have none in common). Port blocks are
    aligned, so they are nested or disjoint: the overlap is the smaller one."""
    identity, protocol = (x or y if not (x and y and x != y) else None
                          for x, y in ((a.identity, b.identity), (a.protocol, b.protocol)))
    if identity is None or protocol is None:
        return None
    wide, narrow = sorted((a, b), key=lambda key: key.bits)
    if narrow.port >> (PORT_BITS - wide.bits) != wide.port >> (PORT_BITS - wide.bits):
        return None
    return Key(a.egress, identity, protocol, narrow.port, narrow.bits)


def endpoint_entries(spec: Any, endpoint: Endpoint, resolver: Resolver,
                     rules: list[tuple[Policy, str, str, int, object]]) -> dict[Key, Verdict]:
    """The policy entries of one endpoint, deny precedence resolved; an unselected direction is open."""
    entries: dict[Key, Verdict] = {}
    for egress, direction in enumerate(DIRECTIONS):
        mine = [r for r in rules if r[1] == direction and selects(r[0].selector, endpoint.labels)]
        selected = any(direction in (d for d, _v, _r in p.sections()) for p in spec.policies
                       if selects(p.selector, endpoint.labels))
        if not selected:
            entries[Key(egress, ANY, 0, 0)] = Verdict(False, OPEN_RULE)
            continue
        allow: dict[Key, Verdict] = {}
        deny: dict[Key, Verdict] = {}
        for _policy, _direction, verdict, rule_id, rule in mine:
            target = deny if verdict == "deny" else allow
            for identity in sorted(resolver.peers(rule.peers)):
                for protocol, port, bits, l7 in _ports(rule.ports):
                    key = Key(egress, identity, protocol, port, bits)
                    if key not in target or (target[key].proxy and not l7):
                        target[key] = Verdict(verdict == "deny", rule_id, l7)
        for key, found in list(allow.items()):
            if found.proxy:
                allow[key] = _plain_allow(allow, key) or found
        entries.update(allow)
        for deny_key, deny_verdict in deny.items():
            for allow_key in allow:
                overlap = _overlap(allow_key, deny_key)
                if overlap is not None:
                    entries[overlap] = deny_verdict
        entries.update(deny)
    return entries


def _host_prefix(address: object) -> str:
    return f"{address}/128" if ":" in str(address) else f"{address}/32"


def compile_policies(spec: Any, node: Node) -> Compiled:
    """The datapath state of ``node``: only when the spec has policies (else nothing is loaded)."""
    compiled = Compiled()
    if not spec.policies or spec.cluster is None:
        return compiled
    resolver = Resolver(spec)
    rules = rule_names(spec)
    counters: dict[tuple[str, str, str], int] = {}
    for policy, direction, verdict, rule_id, _rule in rules:
        index = counters.get((policy.name, direction, verdict), 0)
        counters[(policy.name, direction, verdict)] = index + 1
        compiled.rules[rule_id] = rule_label(policy, direction, verdict, index)
    compiled.identities.update(RESERVED)
    compiled.ipcache["0.0.0.0/0"] = (WORLD, "world")
    compiled.ipcache["::/0"] = (WORLD, "world")
    for cidr, identity in resolver.cidrs.items():
        compiled.ipcache[cidr] = (identity, f"cidr:{cidr}")
        compiled.identities[identity] = f"cidr:{cidr}"
    for other in spec.cluster.nodes:
        identity = HOST if other.name == node.name else REMOTE_NODE
        for address in (other.address, other.pod_cidr.network_address, other.address6,
                        other.pod_cidr6.network_address if other.pod_cidr6 else None):
            if address is not None:
                compiled.ipcache[_host_prefix(address)] = (identity, other.name)
    compiled.ipcache[f"{GATEWAY4}/32"] = (HOST, node.name)
    compiled.ipcache[f"{GATEWAY6}/128"] = (HOST, node.name)
    for endpoint in spec.endpoints:
        identity = label_identity(endpoint.labels)
        compiled.identities[identity] = label_text(endpoint.labels)
        compiled.ipcache[f"{endpoint.address}/32"] = (identity, endpoint.name)
        if endpoint.address6 is not None:
            compiled.ipcache[f"{endpoint.address6}/128"] = (identity, endpoint.name)
    for endpoint in spec.endpoints:
        if endpoint.node == node.name:
            compiled.endpoints[endpoint.name] = endpoint_entries(spec, endpoint, resolver, rules)
    compiled.scopes = l7_scopes(spec, compiled.endpoints, rules, compiled.rules, resolver.peers)
    return compiled


def policy_resources(view: NodeView) -> list[Resource]:
    """Desired resources of the policy datapath on the view's node (none when the spec has no policies)."""
    from netplanx.features.policy.maps import POLICY

    spec = view.spec
    compiled = compile_policies(spec, view.node)
    if not compiled.endpoints and not compiled.ipcache:
        return []

    resources = [policy_program_resource(POLICY.version, POLICY.map_version)]
    for cidr, (identity, name) in sorted(compiled.ipcache.items()):
        resources.append(ipcache_resource(cidr, identity, name, identity_name(identity, compiled.identities)))
    interfaces = {e.name: host_interface(e) for e in spec.endpoints}
    redirected = {s.endpoint: list(s.addresses) for s in compiled.scopes if s.direction == "ingress"}
    for endpoint, entries in sorted(compiled.endpoints.items()):
        resources.append(policy_resource(endpoint, interfaces[endpoint], entries, compiled.identities,
                                         compiled.rules, redirected=redirected.get(endpoint, [])))
    return resources + l7_resources(view, compiled.scopes, compiled.ipcache)

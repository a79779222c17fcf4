"""The policy datapath as resources a plan can show: ``policydp.policy`` (programs and maps),
``ipcache.CIDR`` (prefix -> identity) and ``policy.ENDPOINT`` (what one endpoint may send and receive).

A ``policy.ENDPOINT`` resource reads at the policy level: per direction, each peer (labels, CIDR or
entity) with its allowed or denied ports and the rule that wrote them, plus the number of map entries.
The entries themselves travel in ``meta['_entries']``, so an apply writes exactly them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from netplanx.engine.resource import Resource
from netplanx.policy.entries import DIRECTIONS, PROTOCOL_NAMES, Key, Verdict
from netplanx.policy.identity import identity_name

if TYPE_CHECKING:
    from netplanx.spec.model import Node, Spec

DATAPATH = "policydp.policy"
Entries = dict[Key, Verdict]


def port_text(protocol: int, port: int) -> str:
    name = PROTOCOL_NAMES.get(protocol, str(protocol))
    return f"{name}/{port}" if port else name


def summary(entries: Entries, identities: Mapping[int, str], rules: Mapping[int, str]) -> dict[str, Any]:
    """Per direction: peer name -> sorted ``proto/port allow|deny by RULE`` lines."""
    found: dict[str, dict[str, list[str]]] = {d: {} for d in DIRECTIONS}
    for key, verdict in entries.items():
        peer = identity_name(key.identity, identities)
        rule = rules.get(verdict.rule, f"rule {verdict.rule}")
        line = f"{port_text(key.protocol, key.port)} {'deny' if verdict.deny else 'allow'} by {rule}"
        found[DIRECTIONS[key.egress]].setdefault(peer, []).append(line)
    for peers in found.values():
        for lines in peers.values():
            lines.sort()
    return found


def entries_meta(entries: Entries) -> list[list[int]]:
    return sorted([*key, int(verdict.deny), verdict.rule] for key, verdict in entries.items())


def entries_from_meta(rows: Iterable[Iterable[int]]) -> Entries:
    found: Entries = {}
    for row in rows:
        egress, identity, protocol, port, deny, rule = row
        found[Key(egress, identity, protocol, port)] = Verdict(bool(deny), rule)
    return found


def policy_resource(endpoint: str, interface: str, entries: Entries, identities: Mapping[int, str],
                    rules: Mapping[int, str], attached: bool = True, ifindex: int = 0) -> Resource:
    attrs = {**summary(entries, identities, rules), "entries": len(entries), "attached": attached}
    names = {"rules": {str(r.rule): rules[r.rule] for r in entries.values() if r.rule in rules},
             "identities": {str(k.identity): identities[k.identity] for k in entries if k.identity in identities}}
    return Resource("policy", f"policy.{endpoint}", attrs, True,
                    {"host_interface": interface, "ifindex": ifindex, "_entries": entries_meta(entries),
                     "_names": names})


def ipcache_resource(cidr: str, identity: int, name: str, identity_label: str) -> Resource:
    return Resource("ipcache", f"ipcache.{cidr}", {"identity": identity, "name": name}, True,
                    {"cidr": cidr, "identity_name": identity_label})


def datapath_resource(program: str, maps: str) -> Resource:
    return Resource("policydp", DATAPATH, {"program": program, "maps": maps})


def policy_resources(spec: Spec, node: Node) -> list[Resource]:
    """Desired resources of the policy datapath on ``node`` (none when the spec has no policies)."""
    from netplanx.policy.compile import compile_policies  # the spec model: only when compiling
    from netplanx.providers.bpf.policy_maps import POLICY
    from netplanx.spec.nodes import host_interface

    compiled = compile_policies(spec, node)
    if not compiled.endpoints and not compiled.ipcache:
        return []

    resources = [datapath_resource(POLICY.version, POLICY.map_version)]
    for cidr, (identity, name) in sorted(compiled.ipcache.items()):
        resources.append(ipcache_resource(cidr, identity, name, identity_name(identity, compiled.identities)))
    interfaces = {e.name: host_interface(e) for e in spec.endpoints}
    for endpoint, entries in sorted(compiled.endpoints.items()):
        resources.append(policy_resource(endpoint, interfaces[endpoint], entries, compiled.identities,
                                         compiled.rules))
    return resources

"""The policy datapath as resources a plan can show: ``policydp.policy`` (programs and maps),
``ipcache.CIDR`` (prefix -> identity) and ``policy.ENDPOINT`` (what one endpoint may send and receive).

A ``policy.ENDPOINT`` resource reads at the policy level: per direction, each peer (labels, CIDR or
entity) with its allowed or denied ports and the rule that wrote them, plus the number of map entries.
The entries themselves travel in ``meta['_entries']``, so an apply writes exactly them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from netplanx.engine.resource import Resource
from netplanx.features.policy.entries import DIRECTIONS, PROTOCOL_NAMES, Key, Verdict
from netplanx.features.policy.identity import identity_name

POLICY_PROGRAM = "policydp.policy"
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


def policy_program_resource(program: str, maps: str) -> Resource:
    return Resource("policydp", POLICY_PROGRAM, {"program": program, "maps": maps})

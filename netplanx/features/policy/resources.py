"""The policy datapath as resources a plan can show: ``policydp.policy`` (programs and maps),
``ipcache.CIDR`` (prefix -> identity) and ``policy.ENDPOINT`` (what one endpoint may send and receive).

A ``policy.ENDPOINT`` resource reads at the policy level: per direction, each peer (labels, CIDR or
entity) with its allowed or denied ports (a range as ``tcp/8000-8099``, however many map entries it takes)
and the rule that wrote them (``tcp/80 L7 by web/ingress[0]``: allowed through the node's L7 proxy), plus
the number of map entries, and the endpoint's addresses whose L7 ingress redirect the node applies at a
packet's first hop (``redirected``).
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


def port_text(protocol: int, first: int = 0, last: int = 0) -> str:
    """``tcp``, ``tcp/80`` or ``tcp/8000-8099``."""
    name = PROTOCOL_NAMES.get(protocol, str(protocol))
    if not first:
        return name
    return f"{name}/{first}" if last in (0, first) else f"{name}/{first}-{last}"


def verdict_word(verdict: Verdict) -> str:
    return "deny" if verdict.deny else "L7" if verdict.proxy else "allow"


def summary(entries: Entries, identities: Mapping[int, str], rules: Mapping[int, str]) -> dict[str, Any]:
    """Per direction: peer name -> sorted ``proto/port allow|deny|L7 by RULE`` lines, where the port blocks of
    a range (adjacent, with the same verdict and rule) read as the range again."""
    spans: dict[tuple[int, str, int, str, int], list[list[int]]] = {}
    for key, verdict in sorted(entries.items()):  # by direction, identity, protocol, then port
        group = (key.egress, identity_name(key.identity, identities), key.protocol, verdict_word(verdict),
                 verdict.rule)
        found = spans.setdefault(group, [])
        if key.bits and found and found[-1][0] and found[-1][1] + 1 == key.port:
            found[-1][1] = key.last
        else:
            found.append([key.port, key.last])
    lines: dict[str, dict[str, list[str]]] = {d: {} for d in DIRECTIONS}
    for (egress, peer, protocol, word, rule), ranges in spans.items():
        name = rules.get(rule, f"rule {rule}")
        lines[DIRECTIONS[egress]].setdefault(peer, []).extend(
            f"{port_text(protocol, first, last)} {word} by {name}" for first, last in ranges)
    for peers in lines.values():
        for text in peers.values():
            text.sort()
    return lines


def entries_meta(entries: Entries) -> list[list[int]]:
    return sorted([*key, int(verdict.deny), verdict.rule, int(verdict.proxy)] for key, verdict in entries.items())


def entries_from_meta(rows: Iterable[Iterable[int]]) -> Entries:
    found: Entries = {}
    for row in rows:
        egress, identity, protocol, port, bits, deny, rule, proxy = row
        found[Key(egress, identity, protocol, port, bits)] = Verdict(bool(deny), rule, bool(proxy))
    return found


def policy_resource(endpoint: str, interface: str, entries: Entries, identities: Mapping[int, str],
                    rules: Mapping[int, str], attached: bool = True, ifindex: int = 0,
                    redirected: list[str] | None = None) -> Resource:
    attrs = {**summary(entries, identities, rules), "entries": len(entries), "attached": attached,
             "redirected": sorted(redirected or [])}
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

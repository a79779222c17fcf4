"""L7 scopes: the HTTP rules the node's proxy applies, one scope per (endpoint, direction, port) whose policy
entries redirect connections to it.

A scope holds every HTTP rule that applies there, in spec order, each with the peers its policy rule names
(an identity set, or any peer); a request is allowed when a rule whose peers include the connection's peer
matches it, and gets 403 otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netplanx.features.policy.entries import DIRECTIONS, Key, Verdict
from netplanx.features.policy.identity import ANY, label_text, selects

if TYPE_CHECKING:  # the spec's models (pydantic) are not imported to read or write the datapath
    from netplanx.features.policy.model import Peer


@dataclass(frozen=True)
class HttpMatch:
    """One HTTP rule of one policy rule: what a request must look like, and whose requests it allows."""

    label: str  # the deciding rule as flows name it: web/ingress[0]/http[1]
    rule: str  # the policy rule: web/ingress[0]
    peers: frozenset[int]  # identities; {ANY}: any peer
    peer_text: str  # app=client, cidr:192.0.2.0/24, host, any
    method: str | None
    path: str | None
    headers: tuple[tuple[str, str | None], ...]  # (name, exact value or None: present)
    text: str  # GET /api/v1/.* [X-Team: blue]


@dataclass(frozen=True)
class Scope:
    endpoint: str
    direction: str
    port: int
    addresses: tuple[str, ...]  # the endpoint's (the proxy finds the scope by address and port)
    matches: tuple[HttpMatch, ...]

    @property
    def name(self) -> str:
        """The scope's backend in the proxy, and its resource's address after ``l7rule.``."""
        return f"{self.endpoint}.{self.direction}.{self.port}"

    def requests(self) -> list[str]:
        """The scope's rules as plans show them: ``GET /api/v1/.* allowed for app=client by web/ingress[0]``."""
        towards = "to" if self.direction == "egress" else "for"
        return [f"{m.text} allowed {towards} {m.peer_text} by {m.rule}" for m in self.matches]


def peer_text(peers: list[Peer] | None) -> str:
    if peers is None:
        return "any"
    return ", ".join(label_text(p.labels) if p.labels is not None else f"cidr:{p.cidr}" if p.cidr is not None
                     else str(p.entity) for p in peers)


def l7_scopes(spec: Any, entries: Mapping[str, Mapping[Key, Verdict]], rules: Iterable[tuple[Any, ...]],
              labels: Mapping[int, str], resolve: Callable[[list[Peer] | None], frozenset[int]]) -> list[Scope]:
    """The scopes of the node whose endpoints' ``entries`` are given; ``rules`` as ``compile.rule_names`` lists
    them, ``labels`` their names, ``resolve`` turns a rule's peers into identities."""
    endpoints = {e.name: e for e in spec.endpoints}
    scopes = []
    for name, found in sorted(entries.items()):
        endpoint = endpoints[name]
        redirected = sorted({(key.egress, key.port) for key, verdict in found.items() if verdict.proxy})
        for egress, port in redirected:
            direction = DIRECTIONS[egress]
            matches = []
            for policy, rule_direction, verdict, rule_id, rule in rules:
                if rule_direction != direction or verdict != "allow" or not selects(policy.selector, endpoint.labels):
                    continue
                for port_rule in rule.ports:
                    if port_rule.rules is None or port_rule.port != port:
                        continue
                    for index, http in enumerate(port_rule.rules.http):
                        matches.append(HttpMatch(f"{labels[rule_id]}/http[{index}]", labels[rule_id],
                                                 resolve(rule.peers), peer_text(rule.peers), http.method, http.path,
                                                 tuple(http.header_pairs()), http.text()))
            addresses = tuple(str(a) for a in (endpoint.address, endpoint.address6) if a is not None)
            scopes.append(Scope(name, direction, port, addresses, tuple(matches)))
    return scopes


def any_peer(match: HttpMatch) -> bool:
    return ANY in match.peers

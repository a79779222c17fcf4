"""Spec checks of the policies that need the whole spec: names, peers that select nothing, identities, L7
rules in deny sections; and, on a host's view, the rule priority and table the L7 redirect takes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from netplanx.document.problems import Problem
from netplanx.features.policy.compile import rule_names
from netplanx.features.policy.entries import MAX_RULES
from netplanx.features.policy.identity import collisions, label_text, selects
from netplanx.features.policy.l7resources import ROUTE_TABLE, RULE_PRIORITY
from netplanx.system.names import table_number

SECTION_KEYS = {"ingress": "ingress", "ingress_deny": "ingressDeny", "egress": "egress", "egress_deny": "egressDeny"}


def policy_problems(spec: Any) -> list[Problem]:
    if not spec.policies:
        return []
    if spec.cluster is None:
        return [Problem(("policies", 0), "policies need a cluster section with endpoints (allowed: add "
                                               "cluster: and endpoints:)")]
    return [*_names(spec), *_peers(spec), *_identities(spec), *_l7_denies(spec)]


def _l7_denies(spec: Any) -> Iterator[Problem]:
    for index, policy in enumerate(spec.policies):
        for attribute in ("ingress_deny", "egress_deny"):
            for number, rule in enumerate(getattr(policy, attribute) or []):
                for place, port in enumerate(rule.ports):
                    if port.rules is not None:
                        yield Problem(("policies", index, SECTION_KEYS[attribute], number, "ports", place, "rules"),
                                      f"L7 rules in {SECTION_KEYS[attribute]}: a deny rule denies the whole port "
                                      "(allowed: L7 rules in ingress or egress, which allow only the requests they "
                                      "match)", True)


def has_l7(spec: Any) -> bool:
    return any(port.rules is not None for policy in spec.policies for _d, _v, rules in policy.sections()
               for rule in rules for port in rule.ports)


def l7_reserved_problems(view: Any) -> Iterator[Problem]:
    """With L7 rules, netx's redirect takes rule priority RULE_PRIORITY and table ROUTE_TABLE on the nodes."""
    if not has_l7(view.spec):
        return
    for index, rule in enumerate(view.spec.rules):
        if rule.priority == RULE_PRIORITY:
            yield Problem(("rules", index, "priority"), f"rule priority {RULE_PRIORITY} is taken by netx's L7 "
                                                        "redirect (fwmark 0x200/0xf00) (allowed: another priority)")
    for index, route in enumerate(view.spec.routes):
        if table_number(route.table) == ROUTE_TABLE:
            yield Problem(("routes", index, "table"), f"table {ROUTE_TABLE} is taken by netx's L7 redirect "
                                                      "(allowed: another table)")


def _names(spec: Any) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for index, policy in enumerate(spec.policies):
        if policy.name in seen:
            yield Problem(("policies", index, "name"), f"policy name '{policy.name}' is used twice, first at "
                                f"policies[{seen[policy.name]}] (allowed: unique names)")
        seen.setdefault(policy.name, index)
    if len(rule_names(spec)) > MAX_RULES:
        yield Problem(("policies",), f"the policies have {len(rule_names(spec))} rules (allowed: at most "
                                           f"{MAX_RULES})", True)


def _peers(spec: Any) -> Iterator[Problem]:
    known = sorted({label_text(e.labels) for e in spec.endpoints})
    for index, policy in enumerate(spec.policies):
        if not any(selects(policy.selector, e.labels) for e in spec.endpoints):
            yield Problem(("policies", index, "selector"), f"selector {{{_text(policy.selector)}}} selects no "
                                f"endpoint (allowed: labels of an endpoint: {'; '.join(known) or 'none in the spec'})")
        for attribute, key in SECTION_KEYS.items():
            for number, rule in enumerate(getattr(policy, attribute) or []):
                peers_key = "from" if attribute.startswith("ingress") else "to"
                for place, peer in enumerate(rule.peers or []):
                    if peer.labels is None or any(selects(peer.labels, e.labels) for e in spec.endpoints):
                        continue
                    yield Problem(("policies", index, key, number, peers_key, place, "labels"),
                                        f"labels {{{_text(peer.labels)}}} select no endpoint (allowed: labels of an "
                                        f"endpoint: {'; '.join(known) or 'none in the spec'})")


def _text(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _identities(spec: Any) -> Iterator[Problem]:
    from netplanx.features.policy.compile import policy_cidrs

    for first, second, identity in collisions(sorted({label_text(e.labels) for e in spec.endpoints}),
                                              policy_cidrs(spec)):
        yield Problem(("endpoints",), f"labels '{first}' and '{second}' hash to the same identity {identity} "
                                            "(allowed: change a label of one of them)", True)

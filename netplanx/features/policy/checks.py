"""Spec checks of the policies that need the whole spec: names, peers that select nothing, identities."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from netplanx.document.problems import Problem
from netplanx.features.policy.compile import rule_names
from netplanx.features.policy.entries import MAX_RULES
from netplanx.features.policy.identity import collisions, label_text
from netplanx.features.policy.model import selects

SECTION_KEYS = {"ingress": "ingress", "ingress_deny": "ingressDeny", "egress": "egress", "egress_deny": "egressDeny"}


def policy_problems(spec: Any) -> list[Problem]:
    if not spec.policies:
        return []
    if spec.cluster is None:
        return [Problem(("policies", 0), "policies need a cluster section with endpoints (allowed: add "
                                               "cluster: and endpoints:)")]
    return [*_names(spec), *_peers(spec), *_identities(spec)]


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

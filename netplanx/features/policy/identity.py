"""Numeric identities, derived from the cluster spec alone (the same on every node, no allocator).

An endpoint's identity is a hash of its sorted labels into ``[256, 2**24)``; a CIDR named by a policy
gets a hash of its text into ``[2**24, 2**25)`` (Cilium's local CIDR scope); below 256 are the reserved
identities. Two label sets hashing to one number is a spec error found by ``collisions``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

ANY = 0  # wildcard in policy keys: every peer
HOST = 1
WORLD = 2
REMOTE_NODE = 6
RESERVED = {HOST: "host", WORLD: "world", REMOTE_NODE: "remote-node"}
LABEL_BASE, LABEL_SPAN = 256, (1 << 24) - 256
CIDR_BASE, CIDR_SPAN = 1 << 24, 1 << 24


def label_text(labels: Mapping[str, str]) -> str:
    """The canonical text of a label set: ``k=v,k2=v2`` sorted by key (``(no labels)`` when empty)."""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels)) or "(no labels)"


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether an endpoint with ``labels`` matches a selector (every selector label present and equal)."""
    return all(labels.get(key) == value for key, value in selector.items())


def _hash(text: str, span: int) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % span


def label_identity(labels: Mapping[str, str]) -> int:
    return LABEL_BASE + _hash(f"labels:{label_text(labels)}", LABEL_SPAN)


def cidr_identity(cidr: str) -> int:
    return CIDR_BASE + _hash(f"cidr:{cidr}", CIDR_SPAN)


def identity_name(identity: int, names: Mapping[int, str]) -> str:
    """How a person reads an identity: ``any``, a reserved name, the labels or CIDR, else its number."""
    if identity == ANY:
        return "any"
    return RESERVED.get(identity) or names.get(identity) or f"identity {identity}"


def collisions(label_sets: Iterable[str], cidrs: Iterable[str]) -> list[tuple[str, str, int]]:
    """Pairs of distinct label sets (or CIDRs) that hash to one identity: (first, second, identity)."""
    found = []
    seen: dict[int, str] = {}
    for text, identity in [*((t, LABEL_BASE + _hash(f"labels:{t}", LABEL_SPAN)) for t in label_sets),
                           *((c, cidr_identity(c)) for c in cidrs)]:
        if seen.setdefault(identity, text) != text:
            found.append((seen[identity], text, identity))
    return found

"""Maglev consistent hashing (Eisenbud et al., NSDI 2016) for the services load balancer.

Each backend, identified by a stable key such as ``"10.244.2.11:8080"``, gets a permutation of the
table's slots: ``offset = h1(key) % M``, ``skip = h2(key) % (M - 1) + 1``, slot ``j`` of its permutation
is ``(offset + j * skip) % M``. Backends take turns; on its turn a backend claims its next preferred
slot that is still empty, until the table is full.

- Hashes: h1 and h2 are the two 64-bit little-endian halves of BLAKE2b-128 of the key's UTF-8 bytes, so
  every process on every node computes the same table (Python's ``hash()`` is salted per process).
- Order: backends are sorted by key, whatever order the spec lists them in; table entries are indices
  into that order (see ``backend_order``).
- Weights, as Cilium does (after Envoy): on turn ``n`` the candidate starts at backend ``n % N`` and
  passes to the next backend while ``(n + 1) * w_i < w_i / N + k_i * W`` (``k_i``: slots backend ``i``
  already claimed, ``W``: the sum of weights). Two deliberate differences from Cilium's float code:
  the comparison is exact in integers (both sides times N), which makes weights scale-free (2:4 is 1:2)
  and equal weights exactly the paper's round robin; and weights always count (Cilium ignores them
  unless the mean weight is at least 2, so it treats weights 1 and 2 as equal).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from itertools import cycle, islice, pairwise
from operator import itemgetter

DEFAULT_TABLE_SIZE = 16381
TABLE_SIZES = (251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071)  # Cilium's primes

_MR_BASES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)  # deterministic Miller-Rabin below 3.3e24


def is_prime(n: int) -> bool:
    """Whether ``n`` is prime (deterministic Miller-Rabin; exact for every size a table can have)."""
    if n < 2:
        return False
    for p in _MR_BASES:
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in _MR_BASES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def table_size_problem(size: int, backends: int) -> str | None:
    """What is wrong with a Maglev table of ``size`` slots for ``backends`` backends, or None if nothing."""
    if is_prime(size) and size > backends:
        return None
    allowed = ", ".join(map(str, TABLE_SIZES))
    return (f"maglev table size {size} must be a prime number greater than the number of backends ({backends}) "
            f"(allowed: {allowed} or any other such prime; about 100 times the backends or more keeps "
            "their shares within 1%)")


def backend_order(backends: Sequence[tuple[str, int]]) -> list[str]:
    """The backends' keys in table order (sorted): ``maglev_table``'s entries index this list."""
    return sorted(key for key, _ in backends)


def _offset_skip(key: str, size: int) -> tuple[int, int]:
    digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
    return int.from_bytes(digest[:8], "little") % size, int.from_bytes(digest[8:], "little") % (size - 1) + 1


def _checked(backends: Sequence[tuple[str, int]], size: int) -> list[tuple[str, int]]:
    """The backends sorted by key, after checking keys, weights and the table size."""
    ordered = sorted(backends, key=itemgetter(0))
    for (key, _), (following, _) in pairwise(ordered):
        if key == following:
            raise ValueError(f"maglev backend {key!r} is listed twice (allowed: each key once)")
    for key, weight in ordered:
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            raise ValueError(f"maglev backend {key!r} has weight {weight!r} (allowed: an integer >= 1)")
    problem = table_size_problem(size, len(ordered))
    if problem:
        raise ValueError(problem)
    return ordered


def _turns(weights: list[int], size: int) -> list[int]:
    """Which backend claims a slot on each of the ``size`` turns (Cilium's weighted round robin, exact)."""
    count = len(weights)
    total = sum(weights)
    due = [w * count for w in weights]  # (n + 1) * due[i] >= counter[i] gives backend i the turn
    counter = weights[:]  # w_i + k_i * W * N: the float w_i / N + k_i * W, times N
    step = total * count
    turns = [0] * size
    for n in range(size):
        i = n % count
        while (n + 1) * due[i] < counter[i]:
            i += 1
            if i == count:
                i = 0
        counter[i] += step
        turns[n] = i
    return turns


def maglev_table(backends: Sequence[tuple[str, int]], size: int = DEFAULT_TABLE_SIZE) -> list[int]:
    """The Maglev lookup table: ``size`` entries, each an index into the backends sorted by key.

    ``backends`` holds ``(key, weight)`` pairs: the key stable across nodes (e.g. ``"10.244.2.11:8080"``),
    the weight an integer >= 1; their order does not matter. Entry ``i`` names ``backend_order(backends)[i]``,
    i.e. ``sorted(keys)[i]``. No backends give an empty table (``[]``): the service has nowhere to send
    traffic. Raises ValueError when ``size`` is not a prime greater than the number of backends, a weight
    is not an integer >= 1, or a key is listed twice.
    """
    ordered = _checked(backends, size)
    if not ordered:
        return []
    count = len(ordered)
    offsets, skips = [], []
    for key, _ in ordered:
        offset, skip = _offset_skip(key, size)
        offsets.append(offset)
        skips.append(skip)
    weights = [w for _, w in ordered]
    turns: Iterable[int] = (islice(cycle(range(count)), size) if min(weights) == max(weights)
                            else _turns(weights, size))
    table = [-1] * size
    position = offsets  # each backend's next preferred slot
    for i in turns:
        slot = position[i]
        skip = skips[i]
        while table[slot] >= 0:
            slot += skip
            if slot >= size:
                slot -= size
        table[slot] = i
        slot += skip
        position[i] = slot - size if slot >= size else slot
    return table


def slots_moved(before: Sequence[int], after: Sequence[int], before_keys: Sequence[str],
                after_keys: Sequence[str]) -> int:
    """How many slots send traffic to a different backend after a change, comparing backends by key.

    ``before_keys`` / ``after_keys`` are the tables' ``backend_order`` (indices resolve to keys, so a backend
    whose index shifts because another was added still counts as staying). Tables of different sizes map
    every flow afresh: the larger size is returned. An empty table (no backends) moves all slots of the other.
    """
    if len(before) != len(after):
        return max(len(before), len(after))
    return sum(before_keys[b] != after_keys[a] for b, a in zip(before, after, strict=True))

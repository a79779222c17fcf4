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
- Sizes: M must be a prime greater than the number of backends (``table_size_problem`` words the error for
  the spec validator); M > 100 N keeps every backend's share within 1% of the mean.
- No backends: the table is empty (``[]``); the service has nowhere to send traffic.
- Cost: benchmarks/maglev.py; about 1.0 ms for M = 16381 with 1,000 backends, 1.5 ms for M = 65537 with 100, with
  the fill in C (_maglev_fill.c, built at install); 3.3 and 9.4 ms with the Python fill where it was not built.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from itertools import cycle, islice, pairwise
from operator import itemgetter

try:  # built at install (setup.py); pip leaves it out where no C compiler is, and _populate serves instead
    from netplanx.features.services import _maglev_fill
except ImportError:
    _maglev_fill = None

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
    if isinstance(size, int) and not isinstance(size, bool) and size > backends and is_prime(size):
        return None
    allowed = ", ".join(map(str, TABLE_SIZES))
    return (f"maglev table size {size} must be a prime number greater than the number of backends ({backends}) "
            f"(allowed: {allowed} or any other such prime; about 100 times the backends or more keeps "
            "their shares within 1%)")


def backend_order(backends: Sequence[tuple[str, int]]) -> list[str]:
    """The backends' keys in table order (sorted): ``maglev_table``'s entries index this list."""
    return sorted(key for key, _ in backends)


def _offset_skip(key: str, size: int) -> tuple[int, int]:
    """The paper's offset and skip for one backend (about 0.5 us: BLAKE2b dominates)."""
    digest = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=16).digest(), "little")
    return (digest & 0xFFFF_FFFF_FFFF_FFFF) % size, (digest >> 64) % (size - 1) + 1


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
    """Which backend claims a slot on each of the ``size`` turns: Cilium's weighted round robin, exactly.

    Turn ``n`` goes to the first backend, cyclically from ``n % N``, that is ready: backend ``i`` with ``k``
    claims is ready on every turn ``n`` with ``(n + 1) * w_i * N >= w_i + k * W * N``. Testing backends one by
    one would cost up to N steps a turn (one heavy backend among light ones), so readiness is a byte per
    backend, searched by bytearray.find(), and a backend that claimed waits in a bucket for the turn it is
    ready on again.
    """
    count = len(weights)
    step = sum(weights) * count
    rate = [w * count for w in weights]
    need = weights[:]  # w_i + k_i * W * N
    ready = bytearray(b"\x01") * count  # on turn 0, w_i <= w_i * N holds for all
    waiting: dict[int, list[int]] = {}  # turn -> backends ready again on it
    turns = [0] * size
    for n in range(size):
        for i in waiting.pop(n, ()):
            ready[i] = 1
        i = ready.find(1, n % count)
        if i < 0:
            i = ready.find(1)
        turns[n] = i
        need[i] += step
        again = (need[i] + rate[i] - 1) // rate[i] - 1  # the first turn it is ready on again
        if again > n + 1:
            ready[i] = 0
            if again in waiting:
                waiting[again].append(i)
            else:
                waiting[again] = [i]
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
    offsets, skips = [], []
    for key, _ in ordered:
        offset, skip = _offset_skip(key, size)
        offsets.append(offset)
        skips.append(skip)
    weights = [w for _, w in ordered]
    turns = None if min(weights) == max(weights) else _turns(weights, size)  # None: round robin
    fill = _maglev_fill.fill if _maglev_fill else _populate
    return fill(offsets, skips, turns, size)


# Filling the table in Python, where the C fill (_maglev_fill.c: the paper's plain loop) was not built. Every turn
# claims exactly one slot, so after n turns size - n slots are free; each phase below finds a backend's next empty
# slot in its permutation differently, all giving the paper's result:
# 1. probe the permutation slot by slot while the table is sparse (few probes per claim);
# 2. then read many permutation steps at once: a strided slice of the occupancy map, repeated _COPIES times so
#    that a slice can wrap around the table, and bytes.find() (C speed) for the first empty one;
# 3. with the last few empty slots, compute each one's rank in the backend's permutation and take the lowest.
_PROBE_UNTIL = 12  # phase 1 until 1/_PROBE_UNTIL of the table is free
_RANK_FROM = 64  # phase 3 from this many free slots
_COPIES = 16  # of the occupancy map in phase 2 (2 MiB for the largest of TABLE_SIZES; more copies gain nothing)
_MAX_REPEATED = 4 << 20  # fewer copies for larger tables


def _populate(offsets: list[int], skips: list[int], turns: list[int] | None, size: int) -> list[int]:
    """The table after ``size`` turns (backend indices from ``turns``, round robin if None), each claiming the
    backend's next empty slot."""
    claims = iter(turns) if turns is not None else islice(cycle(range(len(offsets))), size)
    table = [-1] * size
    occupied = bytearray(size)
    position = offsets[:]  # each backend's next slot to try: every slot before it in its permutation is taken
    free = size // _PROBE_UNTIL
    _claim_by_probing(table, occupied, position, skips, islice(claims, size - free))
    if free > _RANK_FROM:
        _claim_by_scanning(table, occupied, position, skips, claims, free)
    _claim_by_ranking(table, occupied, position, skips, claims)
    return table


def _claim_by_probing(table: list[int], occupied: bytearray, position: list[int], skips: list[int],
                      turns: Iterator[int]) -> None:
    """Claim a slot on each turn, trying the backend's permutation one slot after another."""
    size = len(table)
    for i in turns:
        slot = position[i]
        skip = skips[i]
        while occupied[slot]:
            slot = (slot + skip) % size
        occupied[slot] = 1
        table[slot] = i
        position[i] = (slot + skip) % size


def _claim_by_scanning(table: list[int], occupied: bytearray, position: list[int], skips: list[int],
                       turns: Iterator[int], free: int) -> None:
    """Claim slots until _RANK_FROM are free; ``occupied`` is up to date again on return."""
    size = len(table)
    half = size // 2
    copies = max(1, min(_COPIES, _MAX_REPEATED // size))
    repeated = occupied * copies  # byte x tells whether slot x % size is taken
    last = copies * size - size  # where the last copy starts
    taken = b"\x01" * copies
    while free > _RANK_FROM:
        width = 2 * size // free + 16  # permutation steps read at once: twice the expected distance to an empty slot
        target = max(free // 2, _RANK_FROM)
        for i in islice(turns, free - target):
            pos = position[i]
            skip = skips[i]
            while True:
                if skip <= half:  # forwards; else backwards by size - skip, the same permutation
                    window = repeated[pos:pos + width * skip:skip]
                else:
                    start = pos + last
                    stop = start - width * (size - skip)
                    window = repeated[start:stop:skip - size] if stop >= 0 else repeated[start::skip - size]
                step = window.find(0)
                if step >= 0:
                    break
                pos = (pos + len(window) * skip) % size
            slot = (pos + step * skip) % size
            repeated[slot::size] = taken
            table[slot] = i
            position[i] = (slot + skip) % size
        free = target
    occupied[:] = repeated[:size]


def _claim_by_ranking(table: list[int], occupied: bytearray, position: list[int], skips: list[int],
                      turns: Iterator[int]) -> None:
    """Claim the remaining slots: a backend takes the empty slot with the lowest rank (c - pos) / skip mod size."""
    size = len(table)
    empty = []
    slot = occupied.find(0)
    while slot >= 0:
        empty.append(slot)
        slot = occupied.find(0, slot + 1)
    for i in turns:
        pos = position[i]
        skip = skips[i]
        inverse = pow(skip, -1, size)
        ranks = [(c - pos) * inverse % size for c in empty]
        slot = empty.pop(ranks.index(min(ranks)))
        table[slot] = i
        position[i] = (slot + skip) % size


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

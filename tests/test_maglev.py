"""Maglev tables: equal to a plain reference implementation, deterministic, balanced, weighted, minimally
disruptive, and strict about their sizes."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence

import pytest

from netplanx.features.services import maglev
from netplanx.features.services.maglev import (
    DEFAULT_TABLE_SIZE,
    TABLE_SIZES,
    backend_order,
    is_prime,
    maglev_table,
    slots_moved,
    table_size_problem,
)

SIZE_MESSAGE = "must be a prime number greater than the number of backends"


@pytest.fixture(params=["c", "python"])
def fill(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with the C fill and again with the Python one (what an install without a compiler uses)."""
    if request.param == "python":
        monkeypatch.setattr(maglev, "_maglev_fill", None)
    return request.param


def reference_table(backends: Sequence[tuple[str, int]], size: int) -> list[int]:
    """Maglev as the paper writes it, with Cilium's weighted turns, plain and slow (no shortcut for equal weights)."""
    ordered = sorted(backends)
    if not ordered:
        return []
    count = len(ordered)
    offsets, skips = [], []
    for key, _ in ordered:
        digest = hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest()
        h1, h2 = int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little")
        offsets.append(h1 % size)
        skips.append(h2 % (size - 1) + 1)
    weights = [w for _, w in ordered]
    total = sum(weights)
    picks = [0] * count
    following = [0] * count
    entry = [-1] * size
    for n in range(size):
        i = n % count
        # Cilium passes the turn on while (n + 1) * w_i < w_i / N + k_i * W; here multiplied by N to stay exact
        while (n + 1) * weights[i] * count < weights[i] + picks[i] * total * count:
            i = (i + 1) % count
        picks[i] += 1
        c = (offsets[i] + following[i] * skips[i]) % size
        while entry[c] >= 0:
            following[i] += 1
            c = (offsets[i] + following[i] * skips[i]) % size
        entry[c] = i
        following[i] += 1
    return entry


def backends_of(count: int, weight: int = 1, prefix: str = "10.244") -> list[tuple[str, int]]:
    return [(f"{prefix}.{i // 250}.{i % 250 + 1}:8080", weight) for i in range(count)]


def shares(backends: Sequence[tuple[str, int]], size: int) -> dict[str, int]:
    keys = backend_order(backends)
    return {keys[i]: n for i, n in Counter(maglev_table(backends, size)).items()}


def moved(before: Sequence[tuple[str, int]], after: Sequence[tuple[str, int]], size: int) -> int:
    return slots_moved(maglev_table(before, size), maglev_table(after, size), backend_order(before),
                       backend_order(after))


@pytest.mark.usefixtures("fill")
def test_equal_to_the_reference_on_random_inputs() -> None:
    rng = random.Random(5)
    sizes = [2, 3, 5, 7, 13, 31, 101, *TABLE_SIZES[:3]]
    for case in range(300):
        size = rng.choice(sizes)
        count = rng.randrange(1, min(size - 1, 40) + 1) if size > 2 else 1
        keys = rng.sample(range(1 << 32), count)
        kind = case % 3  # equal weights 1, equal weights > 1, mixed weights
        weights = [1 if kind == 0 else 7 if kind == 1 else rng.randrange(1, 6) for _ in range(count)]
        backends = [(f"192.0.2.{k & 0xFF}:{k >> 8}", w) for k, w in zip(keys, weights, strict=True)]
        assert maglev_table(backends, size) == reference_table(backends, size), (size, backends)


@pytest.mark.usefixtures("fill")
@pytest.mark.parametrize(("size", "count", "mixed"), [(4093, 40, False), (4093, 40, True), (16381, 150, True),
                                                      (16381, 1000, False), (65537, 100, False), (131071, 50, True)])
def test_equal_to_the_reference_on_larger_tables(size: int, count: int, mixed: bool) -> None:
    rng = random.Random(size + count)
    backends = [(key, rng.randrange(1, 100) if mixed else 1) for key, _ in backends_of(count)]
    assert maglev_table(backends, size) == reference_table(backends, size)


@pytest.mark.usefixtures("fill")
@pytest.mark.parametrize("weights", [
    [1000, *[1] * 199],  # one heavy backend first among light ones: few may take a turn, the rest wait
    [*[1] * 199, 1000],
    [50] * 100 + [1] * 100,
    [1, 2] * 100,
])
def test_equal_to_the_reference_with_skewed_weights(weights: list[int]) -> None:
    backends = [(key, w) for (key, _), w in zip(backends_of(len(weights)), weights, strict=True)]
    assert maglev_table(backends, 4093) == reference_table(backends, 4093)


@pytest.mark.parametrize(("probe_until", "rank_from", "repeated"), [
    (10**9, 0, maglev._MAX_REPEATED),  # probing only
    (1, 0, maglev._MAX_REPEATED),  # scanning the repeated occupancy map only, down to the last slot
    (1, 0, 1),  # the same with a single copy: no slice wraps around
    (1, 10**9, maglev._MAX_REPEATED),  # ranking only
    (2, 7, maglev._MAX_REPEATED),  # all three, switching early
])
def test_every_way_of_filling_equals_the_reference(monkeypatch: pytest.MonkeyPatch, probe_until: int,
                                                    rank_from: int, repeated: int) -> None:
    """The Python fill's phases (the C fill has a single loop)."""
    monkeypatch.setattr(maglev, "_maglev_fill", None)
    monkeypatch.setattr(maglev, "_PROBE_UNTIL", probe_until)
    monkeypatch.setattr(maglev, "_RANK_FROM", rank_from)
    monkeypatch.setattr(maglev, "_MAX_REPEATED", repeated)
    rng = random.Random(probe_until + rank_from)
    for size in (2, 3, 13, 251, 1021, 2039):
        for count in {1, min(size - 1, 2), min(size - 1, 9), min(size - 1, 40)}:
            weights = [rng.randrange(1, 4) if count % 2 else 1 for _ in range(count)]
            backends = [(f"10.0.{rng.randrange(256)}.{n}:{rng.randrange(1, 65536)}", w) for n, w in enumerate(weights)]
            assert maglev_table(backends, size) == reference_table(backends, size), (size, backends)


def test_the_c_fill_is_built() -> None:
    """pip builds it at install (setup.py), but quietly goes on without it where compiling fails."""
    assert maglev._maglev_fill is not None, "netplanx.features.services._maglev_fill is missing: pip install -e ."


@pytest.mark.parametrize(("args", "error", "message"), [
    (([0], [2], None, 4), ValueError, "skips[0] = 2 shares a factor with the table size 4"),
    (([0, 1], [1], None, 5), ValueError, "as many skips as offsets, at least one (got 2 and 1)"),
    (([], [], None, 5), ValueError, "at least one (got 0 and 0)"),
    (([5], [1], None, 5), ValueError, "offsets[0] is 5 (allowed: 0 to 4)"),
    (([0], [0], None, 5), ValueError, "skips[0] is 0 (allowed: 1 to 4)"),
    (([0], [1], [0, 0], 5), ValueError, "turns has 2 entries (allowed: the table size, 5)"),
    (([0], [1], [0, 0, 0, -1, 0], 5), ValueError, "turns[3] is -1 (allowed: 0 to 0)"),
    (([0, 1], [1, 1], None, 2), ValueError, "table size 2 must exceed the number of backends (2)"),
    (([0.0], [1], None, 5), TypeError, "integer"),
    (([0], [1], None, 5.0), TypeError, "integer"),
    (([0], [1], 7, 5), TypeError, "not iterable"),
    ((0, [1], None, 5), TypeError, "not iterable"),
    (([2**70], [1], None, 5), OverflowError, "cannot fit"),
])
def test_the_c_fill_checks_its_arguments(args: tuple[object, ...], error: type[Exception], message: str) -> None:
    if maglev._maglev_fill is None:
        pytest.skip("the C fill is not built")
    with pytest.raises(error, match=re.escape(message)):
        maglev._maglev_fill.fill(*args)


def test_same_table_in_other_processes() -> None:
    backends = backends_of(30)
    here = hashlib.sha256(json.dumps(maglev_table(backends, 1021)).encode()).hexdigest()
    code = ("import hashlib, json, sys; from netplanx.features.services.maglev import maglev_table; "
            "b = json.loads(sys.argv[1]); "
            "print(hashlib.sha256(json.dumps(maglev_table([tuple(x) for x in b], 1021)).encode()).hexdigest())")
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", code, json.dumps(backends)], env=env, capture_output=True,
                              text=True, check=True)
        assert done.stdout.strip() == here


@pytest.mark.usefixtures("fill")
def test_table_is_pinned_across_versions_and_machines() -> None:
    """The hash is part of the wire contract: nodes running different builds must agree."""
    backends = [("10.244.1.10:8080", 1), ("10.244.2.11:8080", 1), ("10.244.3.12:8080", 2)]
    assert maglev_table(backends, 13) == [2, 0, 1, 2, 2, 0, 1, 0, 2, 2, 0, 2, 1]


def test_order_of_the_spec_does_not_matter() -> None:
    backends = [(key, 1 + i % 3) for i, (key, _) in enumerate(backends_of(50))]
    table = maglev_table(backends, 4093)
    rng = random.Random(1)
    for _ in range(5):
        rng.shuffle(backends)
        assert maglev_table(backends, 4093) == table
    assert backend_order(backends) == sorted(key for key, _ in backends)


@pytest.mark.parametrize(("size", "count"), [(16381, 100), (DEFAULT_TABLE_SIZE, 163), (65521, 500)])
def test_equal_weights_are_balanced_within_one_percent(size: int, count: int) -> None:
    counts = shares(backends_of(count), size)
    assert len(counts) == count
    mean = size / count
    assert max(abs(n - mean) for n in counts.values()) <= 0.01 * mean


def test_weights_give_proportional_shares() -> None:
    """Each backend's share is within 1% (or 2 slots) of size * weight / total weight."""
    rng = random.Random(7)
    backends = [(key, rng.randrange(1, 11)) for key, _ in backends_of(60)]
    total = sum(w for _, w in backends)
    counts = shares(backends, 16381)
    weights = dict(backends)
    for key, n in counts.items():
        expected = 16381 * weights[key] / total
        assert abs(n - expected) <= max(2, 0.01 * expected), (key, weights[key], n, expected)


def test_weights_are_scale_free_and_equal_weights_are_round_robin() -> None:
    backends = backends_of(20)
    assert maglev_table([(k, 5) for k, _ in backends], 1021) == maglev_table(backends, 1021)
    mixed = [(k, 1 + i % 2) for i, (k, _) in enumerate(backends)]
    assert maglev_table([(k, 3 * w) for k, w in mixed], 1021) == maglev_table(mixed, 1021)
    counts = shares(mixed, 1021)
    assert sum(counts[k] for k, w in mixed if w == 2) == pytest.approx(2 * sum(counts[k] for k, w in mixed if w == 1),
                                                                       abs=2)


# Maglev trades a little disruption for balance: removing one backend also moves some slots of others. Measured
# with random keys (slots moved beyond the removed backend's own, % of the table: mean / worst seen): M=16381 N=5
# 0.25 / 0.81; N=20 0.7 / 1.03; N=100 (M/N = 163) 1.29 / 1.37; M=65521 N=100 0.55 / 0.6; M=1021 N=3 0.47 / 2.84.
# So the bound of 1/N + 1% is typical, not guaranteed; these cases hold it for the pod-like keys below.
DISRUPTION_CASES = [(16381, 5), (16381, 20), (65521, 100)]


@pytest.mark.parametrize(("size", "count"), DISRUPTION_CASES)
def test_removing_one_backend_moves_little_more_than_its_slots(size: int, count: int) -> None:
    backends = backends_of(count)
    before = maglev_table(backends, size)
    for gone in (0, count // 2, count - 1):
        after_backends = backends[:gone] + backends[gone + 1:]
        total = moved(backends, after_backends, size)
        own = sum(1 for i in before if i == gone)  # backends_of is already sorted: index = position
        assert own <= total <= size * (1 / count + 0.01), (gone, own, total)


@pytest.mark.parametrize(("size", "count"), DISRUPTION_CASES)
def test_adding_one_backend_moves_about_its_share(size: int, count: int) -> None:
    backends = backends_of(count)
    for newcomer in ("0.0.0.0:1", "10.244.0.100:9090", "99.0.0.1:80"):  # sorts first, in the middle, last
        after = [*backends, (newcomer, 1)]
        share = maglev_table(after, size).count(backend_order(after).index(newcomer))
        total = moved(backends, after, size)
        assert share <= total <= size * (1 / (count + 1) + 0.01), (newcomer, share, total)
        assert total >= size * (1 / (count + 1) - 0.01)


def test_slots_moved_compares_keys_not_indices() -> None:
    assert slots_moved([0, 1, 0], [1, 2, 1], ["a", "b"], ["0", "a", "b"]) == 0
    assert slots_moved([0, 1, 0], [0, 0, 0], ["a", "b"], ["a"]) == 1
    assert slots_moved([0, 1, 0], [], ["a", "b"], []) == 3
    assert slots_moved([], [0, 0, 0, 0, 0], [], ["a"]) == 5
    assert slots_moved([0] * 7, [0] * 5, ["a"], ["a"]) == 7


@pytest.mark.usefixtures("fill")
def test_no_backends_give_an_empty_table() -> None:
    assert maglev_table([], DEFAULT_TABLE_SIZE) == []
    assert maglev_table([("10.0.0.1:80", 1)], 2) == [0, 0]


@pytest.mark.parametrize(("size", "count"), [(0, 0), (1, 0), (-7, 1), (250, 3), (16383, 10), (7, 7), (5, 9),
                                             (65535, 100), (16381.0, 3), ("16381", 3)])
def test_invalid_sizes_are_rejected_with_the_allowed_values(size: object, count: int) -> None:
    with pytest.raises(ValueError, match=SIZE_MESSAGE) as caught:
        maglev_table(backends_of(count), size)  # type: ignore[arg-type]
    assert f"size {size} " in str(caught.value)
    assert "16381" in str(caught.value)
    assert table_size_problem(size, count) == str(caught.value)  # type: ignore[arg-type]


@pytest.mark.parametrize(("backends", "message"), [
    ([("a", 0)], "weight 0 (allowed: an integer >= 1)"),
    ([("a", 1.5)], "weight 1.5"),
    ([("a", True)], "weight True"),
    ([("a", 1), ("b", 2), ("a", 3)], "'a' is listed twice"),
])
def test_invalid_backends_are_rejected(backends: list[tuple[str, int]], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        maglev_table(backends, 251)


def test_primes() -> None:
    small = [n for n in range(200) if all(n % d for d in range(2, n)) and n > 1]
    assert [n for n in range(200) if is_prime(n)] == small
    assert all(is_prime(n) for n in (*TABLE_SIZES, 65537, 2**61 - 1))
    assert not any(is_prime(n) for n in (65535, 3215031751, 2**61 + 1))
    assert table_size_problem(65537, 100) is None

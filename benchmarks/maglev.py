"""Benchmark: Maglev table builds against the issue's reference figures and a naive implementation.

Usage: python benchmarks/maglev.py [--repeat 5]

Targets (issue #5): within 2x of Cilium's Go build, ~8 ms for M=16381 with 1,000 backends, and of the paper's
1.8 ms for M=65537 with 100 backends (issue #19: 3.6 ms). The fill is C (netplanx/features/services/_maglev_fill.c,
built at install); the Python fill an install without a compiler falls back to is timed too. The naive baseline is
the plain reference implementation the tests compare against (tests/test_maglev.py), run in the same process. Also
printed: the build with weights, balance (the largest
deviation of a backend's share from the mean) and disruption (slots that change backend when one of N backends is
removed, against the ideal 1/N).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netplanx.features.services import maglev
from netplanx.features.services.maglev import backend_order, maglev_table, slots_moved
from tests.test_maglev import reference_table

CASES = ((16381, 1000, 8.0, "Cilium, Go"), (65537, 100, 1.8, "paper"))

Builder = Callable[[Sequence[tuple[str, int]], int], list[int]]


def backends_of(count: int, weights: bool = False) -> list[tuple[str, int]]:
    """Pod-like keys; weights 1, or 1 to 10 (fixed pseudo-random) with ``weights``."""
    return [(f"10.244.{i // 250}.{i % 250 + 1}:8080", 1 + i * 7919 % 10 if weights else 1) for i in range(count)]


def best_ms(build: Builder, backends: list[tuple[str, int]], size: int, repeat: int) -> float:
    """The best CPU time of ``repeat`` builds: a build is single-threaded, so on an idle machine this is its wall
    time, and other processes sharing the cores (tests of other work) do not inflate it."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        build(backends, size)
        times.append(time.process_time() - start)
    return min(times) * 1000


def python_fill_table(backends: Sequence[tuple[str, int]], size: int) -> list[int]:
    """maglev_table with the Python fill, as an install without a C compiler has it."""
    fill, maglev._maglev_fill = maglev._maglev_fill, None
    try:
        return maglev_table(backends, size)
    finally:
        maglev._maglev_fill = fill


def balance_pct(backends: list[tuple[str, int]], size: int) -> float:
    counts = Counter(maglev_table(backends, size))
    mean = size / len(backends)
    return max(abs(n - mean) for n in counts.values()) / mean * 100


def disruption_pct(backends: list[tuple[str, int]], size: int) -> float:
    """The largest share of slots moved when the first, middle or last backend (in key order) is removed."""
    before = maglev_table(backends, size)
    keys = backend_order(backends)
    worst = 0
    for gone in (0, len(backends) // 2, len(backends) - 1):
        rest = [b for b in backends if b[0] != keys[gone]]
        worst = max(worst, slots_moved(before, maglev_table(rest, size), keys, backend_order(rest)))
    return worst / size * 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    fill = "C" if maglev._maglev_fill else "Python (the C extension is not built: pip install -e .)"
    print(f"Maglev table build, best CPU time of {args.repeat}; Python {sys.version.split()[0]}; fill in {fill}")
    for size, count, reference_ms, source in CASES:
        backends = backends_of(count)
        fast = best_ms(maglev_table, backends, size, args.repeat)
        naive = best_ms(reference_table, backends, size, max(1, args.repeat // 2))
        print(f"  M={size:<6} N={count:<5} build {fast:7.2f} ms = {fast / reference_ms:4.1f}x {source} "
              f"({reference_ms} ms; target <= 2x); naive reference {naive:7.2f} ms ({naive / fast:.1f}x slower)")
        weighted = best_ms(maglev_table, backends_of(count, weights=True), size, args.repeat)
        print(f"  {'':<14} with weights 1 to 10: build {weighted:7.2f} ms (not a target; the turn order costs extra)")
        fallback = best_ms(python_fill_table, backends, size, args.repeat)
        print(f"  {'':<14} with the Python fill (installed without a compiler): build {fallback:7.2f} ms")
        print(f"  {'':<14} balance: max deviation from the mean share {balance_pct(backends, size):.2f}%; "
              f"removing one of {count} moves {disruption_pct(backends, size):.2f}% of slots (ideal 1/N = "
              f"{100 / count:.2f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

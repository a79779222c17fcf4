"""What the benchmarks share: their command line, timing a command, and the figures they save for plots."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

NETX = [sys.executable, "-m", "netplanx"]
ROOT = Path(__file__).resolve().parents[1]


def arguments(doc: str, count: str | None = None, default: int = 10_000) -> argparse.Namespace:
    """``--COUNT N[,N...]`` (one run per size, when the benchmark has a size), ``--repeat N`` and ``--json FILE``
    (the figures, for benchmarks/plot.py); exits when not root (every benchmark makes namespaces)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if count:
        parser.add_argument(f"--{count}", type=sizes, default=[default], dest="sizes", metavar="N[,N...]")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write every measurement to this file (for benchmarks/plot.py)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        raise SystemExit(1)
    compile_netx()
    return args


def sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",")]


def compile_netx() -> None:
    """Byte-compile netx first, as an installed package is: the runs then measure netx, not Python's compiler
    (the development tree may run with PYTHONDONTWRITEBYTECODE)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "netplanx")], check=True,
                   stdout=subprocess.DEVNULL)


def timed(args: list[str], stdin: str | None = None, env: dict[str, str] | None = None) -> float:
    """Seconds ``args`` took to run (it must succeed)."""
    start = time.perf_counter()
    subprocess.run(args, input=stdin, text=True, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def best(values: list[float]) -> float:
    return min(values)


def median(values: list[float]) -> float:
    return statistics.median(values)


def save(path: Path | None, name: str, results: dict[int, dict[str, list[float]]], **extra: object) -> None:
    """Write ``results`` (size -> measurement -> seconds of each run) with the date and the machine's load."""
    if path is None:
        return
    document = {"benchmark": name, "date": time.strftime("%Y-%m-%d %H:%M"), "load": os.getloadavg(),
                "cpus": os.cpu_count(), "results": {str(k): v for k, v in results.items()}, **extra}
    path.write_text(json.dumps(document, indent=1) + "\n")


Figures = dict[str, list[float]]  # measurement -> seconds of each run


def run_sizes(args: argparse.Namespace, name: str, measure: Callable[[int, int], Figures],
              report: Callable[[int, int, Figures], None]) -> int:
    """Measure and report every size of ``--COUNT``, then save the figures (``--json``)."""
    results = {}
    for count in args.sizes:
        results[count] = measure(count, args.repeat)
        report(count, args.repeat, results[count])
    save(args.json, name, results)
    return 0

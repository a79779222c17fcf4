"""What the benchmarks share: their command line and timing a command."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time


def arguments(doc: str, count: str, default: int = 10_000) -> argparse.Namespace:
    """``--COUNT N`` and ``--repeat N``; exits when not root (every benchmark makes namespaces)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(f"--{count}", type=int, default=default)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        raise SystemExit(1)
    return args


def timed(args: list[str], stdin: str | None = None, env: dict[str, str] | None = None) -> float:
    """Seconds ``args`` took to run (it must succeed)."""
    start = time.perf_counter()
    subprocess.run(args, input=stdin, text=True, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start

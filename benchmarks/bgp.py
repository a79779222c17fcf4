"""Benchmark: advertise 10,000 prefixes through gobgpd with netx, against gobgpd's own tools in the same run.

Usage (root): python benchmarks/bgp.py [--prefixes 10000[,100000...]] [--repeat 3] [--json FILE]

A fresh namespace runs gobgpd (API on its loopback). Measured, best of --repeat:
- netx apply of a spec advertising N prefixes (after a plan, as operators run it) and the no-op plan that
  follows, both as the real command (a new process); start-up is a no-op plan of an empty spec;
- baselines: the same N paths pushed by a bare AddPathStream from Python (the floor for an apply), the
  table listed by the gobgp CLI (Go) and by ListPath from Python (the naive read netx avoids).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from benchlib import NETX, arguments, best, run_sizes, timed

from netplanx.lab.bgp import GOBGP_API_PORT, gobgp, in_netns, start_gobgpd

API = f"127.0.0.1:{GOBGP_API_PORT}"



def prefixes(count: int) -> list[str]:
    return [f"10.{i >> 8 & 255}.{i & 255}.0/24" if i < 65536 else f"11.{i >> 8 & 255}.{i & 255}.0/24"
            for i in range(count)]


def spec_text(advertised: list[str]) -> str:
    lines = ["apiVersion: netx/v1", "bgp:", f"  api: {API}", "  asn: 65001", "  routerId: 192.0.2.1",
             "  listenPort: -1", "  advertise:", "    prefixes:"]
    lines += [f"      - {{prefix: {p}}}" for p in advertised] or ["      []"]
    return "\n".join(lines) + "\n"


PY_BASELINE = """
import sys, time
from netplanx.system.gobgp.client import GobgpClient
from netplanx.features.bgp import codec
client = GobgpClient(sys.argv[1]); client.wait_ready()
paths = [codec.path_message(p, None, []) for p in sys.stdin.read().split(",")]
client.start(65001, "192.0.2.1", -1)
start = time.perf_counter(); client.add_paths(paths); pushed = time.perf_counter() - start
start = time.perf_counter(); listed = client._listed_best([codec.family("ipv4-unicast")])
list_time = time.perf_counter() - start
start = time.perf_counter(); best = client.best_paths([codec.family("ipv4-unicast")])
watch_time = time.perf_counter() - start
assert len(listed) == len(best) == len(paths), (len(listed), len(best))
print(pushed, list_time, watch_time)
"""


class Namespace:
    def __init__(self, folder: Path) -> None:
        self.name = f"netx-bench-{uuid.uuid4().hex[:8]}"
        self.folder = folder

    def __enter__(self) -> Namespace:
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True)
        self.gobgpd = start_gobgpd(self.name, self.folder)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.gobgpd.stop()
        subprocess.run(["ip", "netns", "del", self.name], check=False)


def measure(count: int, repeat: int) -> dict[str, list[float]]:
    """Seconds of each run of every measurement at ``count`` prefixes."""
    advertised = prefixes(count)
    results: dict[str, list[float]] = {k: [] for k in ("startup", "apply", "noop_plan", "stream", "cli_list",
                                                       "py_list", "py_watch")}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        empty, full = folder / "empty.yaml", folder / "bgp.yaml"
        empty.write_text(spec_text([]))
        full.write_text(spec_text(advertised))
        env = {**os.environ, "NETX_STATE_DIR": str(folder / "state")}
        for _ in range(repeat):
            with Namespace(folder) as ns:
                timed([*NETX, "plan", str(empty), "--netns", ns.name], env=env)  # then the spec is in the cache
                results["startup"].append(timed([*NETX, "plan", str(empty), "--netns", ns.name], env=env))
            with Namespace(folder) as ns:
                subprocess.run([*NETX, "plan", str(full), "--netns", ns.name], env=env, check=True,
                               stdout=subprocess.DEVNULL)
                results["apply"].append(timed([*NETX, "apply", str(full), "--netns", ns.name, "--auto-approve"],
                                              env=env))
                results["noop_plan"].append(timed([*NETX, "plan", str(full), "--netns", ns.name,
                                                   "--detailed-exitcode"], env=env))
                summary = gobgp(ns.name, "global", "rib", "summary").stdout
                assert f"Destination: {count}" in summary, summary
            with Namespace(folder) as ns:
                done = subprocess.run(in_netns(ns.name, sys.executable, "-c", PY_BASELINE, API),
                                      input=",".join(advertised), capture_output=True, text=True, check=True)
                for key, value in zip(("stream", "py_list", "py_watch"), done.stdout.split(), strict=True):
                    results[key].append(float(value))
                results["cli_list"].append(timed(in_netns(ns.name, "gobgp", "global", "rib", "-j")))
    return results


def report(count: int, repeat: int, results: dict[str, list[float]]) -> None:
    low = {k: best(v) for k, v in results.items()}
    startup = low["startup"]
    apply_net, plan_net = low["apply"] - startup, low["noop_plan"] - startup
    print(f"prefixes: {count}, runs: {repeat} (best of)")
    for key, label in (("startup", "netx no-op plan, empty spec (start-up)"),
                       ("apply", "netx apply after a plan (plan+apply+verify)"), ("noop_plan", "netx no-op plan"),
                       ("stream", "baseline: bare AddPathStream from Python"),
                       ("cli_list", "baseline: gobgp global rib -j (Go)"),
                       ("py_list", "baseline: ListPath from Python"),
                       ("py_watch", "netx's read: best-path WatchEvent dump")):
        print(f"  {label:<46} {low[key]:7.3f} s")
    print(f"  netx apply: {low['apply']:.3f} s wall (target <= 0.5 s; {apply_net:.3f} s net of start-up "
          f"= {apply_net / low['stream']:.1f}x a bare AddPathStream)")
    print(f"  netx no-op plan: {low['noop_plan']:.3f} s wall (target <= 0.3 s; {plan_net:.3f} s net = "
          f"{plan_net / low['cli_list']:.1f}x gobgp global rib -j); its read of the table is "
          f"{low['py_list'] / low['py_watch']:.0f}x faster than ListPath", flush=True)


def main() -> int:
    return run_sizes(arguments(__doc__, "prefixes"), "bgp", measure, report)


if __name__ == "__main__":
    raise SystemExit(main())

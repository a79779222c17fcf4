"""Benchmark: plan and apply 10,000 routes with netx against iproute2 in the same run.

Usage (root): python benchmarks/routes.py [--routes 10000[,100000...]] [--repeat 3] [--json FILE]

Each measurement runs in its own fresh network namespace. netx runs as the real command (a new
process, as a user runs it); its start-up cost is measured as a no-op plan of an empty namespace and
subtracted to give the "net" figures the targets speak of.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import tempfile
import uuid
from pathlib import Path

from benchlib import NETX, arguments, best, median, run_sizes, timed


def sh(*args: str, stdin: str | None = None) -> None:
    subprocess.run(args, input=stdin, text=True, check=True, stdout=subprocess.DEVNULL)


class Namespace:
    """A fresh namespace with one veth (192.0.2.1/24) for the routes' gateway."""

    def __init__(self) -> None:
        self.name = f"netx-bench-{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> Namespace:
        sh("ip", "netns", "add", self.name)
        sh("ip", "-n", self.name, "link", "add", "bench0", "type", "veth", "peer", "name", "bench1")
        sh("ip", "-n", self.name, "addr", "add", "192.0.2.1/24", "dev", "bench0")
        sh("ip", "-n", self.name, "link", "set", "bench0", "up")
        sh("ip", "-n", self.name, "link", "set", "bench1", "up")
        return self

    def __exit__(self, *_exc: object) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False)


def prefixes(count: int) -> list[str]:
    base = int(ipaddress.ip_address("10.0.0.0"))
    return [f"{ipaddress.ip_address(base + (i << 8))}/24" for i in range(count)]


def spec_text(routes: list[str]) -> str:
    lines = ["apiVersion: netx/v1", "interfaces:", "  - {name: bench0, type: device, addresses: [192.0.2.1/24]}",
             "  - {name: bench1, type: device}"]
    if routes:
        lines.append("routes:")
        lines += [f"  - {{to: {r}, via: 192.0.2.254}}" for r in routes]
    return "\n".join(lines) + "\n"


def measure(count: int, repeat: int) -> dict[str, list[float]]:
    """Seconds of each run of every measurement at ``count`` routes."""
    routes = prefixes(count)
    batch = "".join(f"route add {r} via 192.0.2.254\n" for r in routes)
    keys = ("ip_batch", "ip_show", "startup", "apply_cold", "apply", "noop_plan")
    results: dict[str, list[float]] = {k: [] for k in keys}
    with tempfile.TemporaryDirectory() as tmp:
        empty, full = Path(tmp, "empty.yaml"), Path(tmp, "routes.yaml")
        empty.write_text(spec_text([]))
        full.write_text(spec_text(routes))
        env = {**os.environ, "NETX_STATE_DIR": str(Path(tmp, "state"))}
        for _ in range(repeat):
            with Namespace() as ns:
                results["ip_batch"].append(timed(["ip", "-n", ns.name, "-batch", "-"], stdin=batch))
                results["ip_show"].append(timed(["ip", "-n", ns.name, "-j", "route", "show"]))
            with Namespace() as ns:
                timed([*NETX, "plan", str(empty), "--netns", ns.name], env=env)  # then the spec is in the cache
                results["startup"].append(timed([*NETX, "plan", str(empty), "--netns", ns.name], env=env))
            with Namespace() as ns, tempfile.TemporaryDirectory() as cold:  # spec never seen: parse, validate
                cold_env = {**os.environ, "NETX_STATE_DIR": cold}
                results["apply_cold"].append(timed([*NETX, "apply", str(full), "--netns", ns.name,
                                                    "--auto-approve"], env=cold_env))
            with Namespace() as ns:  # as operators run it: plan, then apply (the spec cache is warm)
                subprocess.run([*NETX, "plan", str(full), "--netns", ns.name], env=env, check=True,
                               stdout=subprocess.DEVNULL)
                results["apply"].append(timed([*NETX, "apply", str(full), "--netns", ns.name, "--auto-approve"],
                                              env=env))
                results["noop_plan"].append(timed([*NETX, "plan", str(full), "--netns", ns.name,
                                                   "--detailed-exitcode"], env=env))
    return results


def report(count: int, repeat: int, results: dict[str, list[float]]) -> None:
    low = {k: best(v) for k, v in results.items()}
    middle = {k: median(v) for k, v in results.items()}
    startup = low["startup"]
    print(f"routes: {count}, runs: {repeat} (best of; median in brackets)")
    for key, label in (("ip_batch", "ip -batch add"), ("ip_show", "ip -j route show"),
                       ("startup", "netx no-op plan, empty namespace (start-up)"),
                       ("apply_cold", "netx apply, spec never seen (parse+validate)"),
                       ("apply", "netx apply after a plan (plan+apply+verify)"), ("noop_plan", "netx no-op plan")):
        print(f"  {label:<46} {low[key]:7.3f} s  [{middle[key]:.3f}]")
    apply_net, cold_net, plan_net = (low[k] - startup for k in ("apply", "apply_cold", "noop_plan"))
    print(f"  netx apply net of start-up: {apply_net:.3f} s = {apply_net / low['ip_batch']:.1f}x ip -batch; "
          f"spec never seen: {cold_net:.3f} s = {cold_net / low['ip_batch']:.1f}x (target <= 3x)")
    print(f"  netx no-op plan net of start-up: {plan_net:.3f} s = {plan_net / low['ip_show']:.1f}x ip -j route show "
          "(target <= 3x)", flush=True)


def main() -> int:
    return run_sizes(arguments(__doc__, "routes"), "routes", measure, report)


if __name__ == "__main__":
    raise SystemExit(main())

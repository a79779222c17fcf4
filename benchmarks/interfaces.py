"""Benchmark: N bridges, each with a veth pair whose end is a port of its bridge, against iproute2 and nmstate.

Usage (root): python benchmarks/interfaces.py [--bridges 100,300,1000,3000] [--repeat 3] [--json FILE]

For each N, in fresh namespaces and best of --repeat: ``ip -batch`` creating the same links (the kernel's own
cost, the baseline), netx apply of a spec never seen, netx apply after a plan (as operators run it), and the
no-op plan that follows, as the real command (a new process); netx's start-up (a no-op plan of an empty
namespace) is measured in the same run. nmstate's published figures (nmstate issue 1832: N bridges over N
VLANs, one ``nmstatectl apply``) are printed beside them: VLANs are not in this kernel, so the scenario here
has veths where nmstate's had VLANs.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from pathlib import Path

from benchlib import NETX, arguments, best, median, save, timed

NMSTATE = {100: 5.7, 300: 34.6, 1000: 514.0}  # seconds, nmstate issue 1832


def spec_text(count: int) -> str:
    lines = ["apiVersion: netx/v1", "interfaces:" if count else "interfaces: []"]
    for i in range(count):
        lines += [f"  - {{name: br{i}, type: bridge}}",
                  f"  - {{name: ve{i}, type: veth, peer: {{name: vp{i}}}, master: br{i}}}"]
    return "\n".join(lines) + "\n"


def batch_text(count: int) -> str:
    """What the spec makes, as iproute2 commands: bridges, veths, ports, everything up."""
    lines = []
    for i in range(count):
        lines += [f"link add br{i} type bridge", f"link add ve{i} type veth peer name vp{i}",
                  f"link set ve{i} master br{i}", f"link set br{i} up", f"link set ve{i} up", f"link set vp{i} up"]
    return "\n".join(lines) + "\n"


class Namespace:
    def __init__(self) -> None:
        self.name = f"netx-bench-{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> Namespace:
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        return self

    def __exit__(self, *_exc: object) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False)


def measure(count: int, repeat: int, folder: Path) -> dict[str, list[float]]:
    empty, full = folder / "empty.yaml", folder / f"bridges-{count}.yaml"
    empty.write_text(spec_text(0))
    full.write_text(spec_text(count))
    env = {**os.environ, "NETX_STATE_DIR": str(folder / "state")}
    found: dict[str, list[float]] = {k: [] for k in ("ip_batch", "startup", "apply_cold", "apply", "noop_plan")}
    batch = batch_text(count)
    for _ in range(repeat):
        with Namespace() as ns:
            found["ip_batch"].append(timed(["ip", "-n", ns.name, "-batch", "-"], stdin=batch))
        with Namespace() as ns:
            timed([*NETX, "plan", str(empty), "--netns", ns.name], env=env)  # then the spec is in the cache
            found["startup"].append(timed([*NETX, "plan", str(empty), "--netns", ns.name], env=env))
        with Namespace() as ns, tempfile.TemporaryDirectory() as cold:
            cold_env = {**os.environ, "NETX_STATE_DIR": cold}
            found["apply_cold"].append(timed([*NETX, "apply", str(full), "--netns", ns.name, "--auto-approve"],
                                             env=cold_env))
        with Namespace() as ns:
            subprocess.run([*NETX, "plan", str(full), "--netns", ns.name], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            found["apply"].append(timed([*NETX, "apply", str(full), "--netns", ns.name, "--auto-approve"], env=env))
            found["noop_plan"].append(timed([*NETX, "plan", str(full), "--netns", ns.name, "--detailed-exitcode"],
                                            env=env))
    return found


def main() -> int:
    args = arguments(__doc__, "bridges", 1000)
    results = {}
    print(f"N bridges, each with a veth pair (one end a port of its bridge); best of {args.repeat} "
          "[median]; seconds")
    print(f"  {'N':>5} {'links':>6} {'ip -batch':>14} {'netx apply':>14} {'never seen':>14} {'no-op plan':>14} "
          f"{'start-up':>7} {'apply/ip':>8} {'nmstate':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.sizes:
            found = results[count] = measure(count, args.repeat, Path(tmp))
            cells = " ".join(f"{best(found[k]):6.2f} [{median(found[k]):5.2f}]"
                             for k in ("ip_batch", "apply", "apply_cold", "noop_plan"))
            ratio = (best(found["apply"]) - best(found["startup"])) / best(found["ip_batch"])
            nmstate = f"{NMSTATE[count]:8.1f}" if count in NMSTATE else f"{'':>8}"
            print(f"  {count:>5} {count * 2:>6} {cells} {best(found['startup']):7.3f} {ratio:7.1f}x {nmstate}",
                  flush=True)
    print("  (apply/ip: netx apply after a plan, net of start-up, over ip -batch; nmstate: N bridges over N VLANs, "
          "nmstate issue 1832)")
    save(args.json, "interfaces", results, nmstate=NMSTATE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

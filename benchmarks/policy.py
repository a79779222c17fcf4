"""Benchmark: policy enforcement per packet, and plan/apply of many policies.

Usage: python benchmarks/policy.py [--endpoints 500] [--policies 1000[,N...]] [--repeat 200000] [--json FILE]

1. Per-packet cost with BPF_PROG_TEST_RUN of the real program (bpf/policy.c) with 10 and with 10,000 entries
   in the policy map, an LPM trie (target: flat). Paths: a non-IP frame (parse only: the baseline of the
   ratios), an established connection (conntrack hit), a packet denied by a rule for its port (the peer's
   lookup hits a one-port entry), one denied by a port range (it hits a block of 256 ports), and a packet
   of an enforced endpoint that matches nothing (both lookups, the peer's and any peer's, miss: default
   deny, the worst case).
2. Plan and apply of ``--policies`` policies over ``--endpoints`` endpoints on one node, with the real
   engine and provider: compile, plan (reads the maps and the tc filters), apply (writes every map entry and
   attaches both filters on each endpoint's host veth), and a second plan (no changes). The endpoints are
   veth pairs in one scratch namespace (no endpoint namespaces): what is measured is the policy datapath's
   resources (``policydp``, ``ipcache``, ``policy``), not the endpoints' namespaces.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import compile_netx, save, sizes

from netplanx.features.policy import maps as pm
from netplanx.features.policy.entries import Key, Verdict
from netplanx.system.bpf.loader import load, remove_scope
from netplanx.system.bpf.testrun import ipv4_packet, prog_test_run

KINDS = ("policydp", "ipcache", "policy")
PEER, LOCAL = "10.1.0.1", "10.2.0.1"


def per_packet(entries: int, repeat: int, records: Path) -> dict[str, float]:
    """ns/packet of each path with ``entries`` policy entries for the test interface (ifindex 1)."""
    scope = f"bench-policy-{uuid.uuid4().hex[:6]}"
    programs = load(pm.POLICY, scope, records)
    try:
        with pm.open_map(scope, "ipcache") as ipcache:
            ipcache.update(pm.prefix_key(f"{PEER}/32"), pm.ip_value(300, "peer"))
            ipcache.update(pm.prefix_key("0.0.0.0/0"), pm.ip_value(2, "world"))
        with pm.open_map(scope, "policy") as policy:
            filler = [pm.policy_entry(1, Key(0, 1000 + i // 50, 6, 1000 + i % 50, 16), Verdict(False, 16))
                      for i in range(entries - 3)]
            policy.update_batch([*filler, pm.policy_entry(1, Key(0, 300, 6, 81, 16), Verdict(True, 17)),
                                 pm.policy_entry(1, Key(0, 300, 6, 80, 16), Verdict(False, 18)),
                                 pm.policy_entry(1, Key(0, 300, 6, 8960, 8), Verdict(True, 19))])
        fd = programs.fd("to_endpoint")
        established = ipv4_packet(PEER, LOCAL, "tcp", 40000, 80)
        assert prog_test_run(fd, established).retval == -1  # allowed: creates the conntrack entry
        cases = {"parse only (ARP)": b"\xff" * 12 + b"\x08\x06" + b"\0" * 28,
                 "established (conntrack)": established,
                 "denied by a rule": ipv4_packet(PEER, LOCAL, "tcp", 40001, 81),
                 "denied by a port range": ipv4_packet(PEER, LOCAL, "tcp", 40003, 9000),
                 "default deny (no entry)": ipv4_packet(PEER, LOCAL, "udp", 40002, 9)}
        found = {}
        for name, packet in cases.items():
            best = min(prog_test_run(fd, packet, repeat).duration_ns for _ in range(3))
            found[name] = float(best)
        return found
    finally:
        programs.close()
        remove_scope(scope, pm.POLICY.name)


def build(records: Path) -> float:
    """Seconds to compile and load the program version with bcc, recorded in ``records`` for later loads."""
    scope = f"bench-policy-{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    load(pm.POLICY, scope, records).close()
    elapsed = time.perf_counter() - started
    remove_scope(scope, pm.POLICY.name)
    return elapsed


def spec_text(endpoints: int, policies: int) -> str:
    apps = max(endpoints // 10, 1)
    lines = ["apiVersion: netx/v1", "cluster:", "  name: bench", "  podCIDR: 10.244.0.0/16", "  nodes:",
             "    - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.0.0/22}", "endpoints:"]
    for i in range(endpoints):
        lines.append(f"  - {{name: e{i}, node: node-a, address: 10.244.{i // 250}.{i % 250 + 2}, "
                     f"labels: {{app: a{i % apps}}}}}")
    lines.append("policies:")
    for i in range(policies):
        lines += [f"  - name: p{i}", f"    selector: {{app: a{i % apps}}}", "    ingress:",
                  f"      - from: [{{labels: {{app: a{(i * 7 + i // apps) % apps}}}}}]",
                  f"        ports: [{{port: {8000 + i % 1000}}}, {{port: 53, protocol: udp}}]"]
        if i % 10 == 0:
            lines += ["    ingressDeny:", f"      - ports: [{{port: {9000 + i % 100}}}]"]
    return "\n".join(lines) + "\n"


def plan_apply(endpoints: int, policies: int, state: Path) -> dict[str, float]:
    from netplanx.features.cluster.nodes import host_interface
    from netplanx.spec.compile import compile_spec
    from netplanx.spec.validate import parse_spec
    from netplanx.system import netns
    from netplanx.workflow.session import Desired, Session

    gc.disable()  # as the netx command runs (cli/main.py): no cycle scans over the plan's objects
    figures: dict[str, float] = {}
    text = spec_text(endpoints, policies)
    started = time.perf_counter()
    spec, _document = parse_spec(text, "bench.yaml")
    figures["validate"] = time.perf_counter() - started
    started = time.perf_counter()
    resources = [r for r in compile_spec(spec, "node-a") if r.kind in KINDS]
    figures["compile (policy resources)"] = time.perf_counter() - started
    figures["entries"] = sum(r.attrs["entries"] for r in resources if r.kind == "policy")
    name = f"bench-pol-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    batch = "".join(f"link add {host_interface(e)} type veth peer name p{i}\nlink set {host_interface(e)} up\n"
                    for i, e in enumerate(spec.endpoints))
    subprocess.run(["ip", "-n", name, "-batch", "-"], input=batch, text=True, check=True)
    netns.enter(name)
    session = Session(name, state)
    try:
        desired = Desired(resources, "bench")
        started = time.perf_counter()
        plan = session.plan(desired)
        figures["plan (nothing applied yet)"] = time.perf_counter() - started
        started = time.perf_counter()
        session.apply(plan)
        figures["apply"] = time.perf_counter() - started
        started = time.perf_counter()
        again = session.plan(desired)
        figures["plan (no changes)"] = time.perf_counter() - started
        assert again.empty, [c.address for c in again.changes][:5]
    finally:
        session.close()
        subprocess.run(["ip", "netns", "del", name], check=False)
        remove_scope(session.store.scope, pm.POLICY.name)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", type=int, default=500)
    parser.add_argument("--policies", type=sizes, default=[1000], metavar="N[,N...]")
    parser.add_argument("--repeat", type=int, default=200000, help="packets per test run (0: no per-packet runs)")
    parser.add_argument("--json", type=Path, help="write the plan and apply figures to this file (benchmarks/plot.py)")
    args = parser.parse_args()
    compile_netx()
    results: dict[int, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder)  # one host: the version is compiled once (its record is kept in the state)
        print(f"compile and load of bpf/policy.c (once per host and version): {build(state / 'bpf-programs'):.2f} s")
        if args.repeat:
            small, large = (per_packet(n, args.repeat, state / "bpf-programs") for n in (10, 10000))
            baseline = small["parse only (ARP)"]
            print("per packet, BPF_PROG_TEST_RUN (ns, best of 3 runs of", args.repeat, "packets)")
            print(f"  {'path':<28} {'10 entries':>11} {'10,000 entries':>15} {'10k/10':>7} {'vs parse':>9}")
            for path in small:
                print(f"  {path:<28} {small[path]:>11.0f} {large[path]:>15.0f} {large[path] / small[path]:>7.2f} "
                      f"{large[path] / baseline:>9.1f}")
        for count in args.policies:
            figures = plan_apply(args.endpoints, count, state)
            entries = int(figures.pop("entries"))
            print(f"\n{count} policies over {args.endpoints} endpoints on one node ({entries} policy map entries)")
            for label, seconds in figures.items():
                print(f"  {label:<28} {seconds:8.2f} s", flush=True)
            results[entries] = {label: [seconds] for label, seconds in figures.items()}
    save(args.json, "policy", results, endpoints=args.endpoints)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

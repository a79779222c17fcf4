"""Benchmark: a fleet converging on changes, through netx pull (waves) and through Ansible (serial).

Usage (root): python benchmarks/fleet.py [--nodes 20] [--plot docs/gitops-fleet.png]

A lab of N nodes (namespaces) follows a local bare repository of SSH-signed commits with ``netx pull``
(agent config waves [1, "25%", "100%"]); a round runs every node's pull at once and waits for the last, as
timers firing together would (a real fleet adds the timer's interval between waves). The same changes are
then pushed to a second lab by ``examples/ansible/rollout.yml`` (serial [1, "25%", "100%"], 20 forks).
Measured per change: time to converge, time per wave, writes per node (``netx apply --json``'s "writes",
the netlink, bpf and gobgpd calls that changed something). Prints a Markdown table; --plot writes a PNG
(matplotlib).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netplanx.lab.cluster import NODE_NAMES, Lab, lab_spec
from netplanx.lab.fleet import Fleet, Round, Signer, SpecRepository, agent_config
from tests.test_ansible import play

CHECK = "{ping: 10.244.1.11}"  # web-a on the canary, from every node (not with WireGuard: see docs/gitops.md)


def changes(lab: Lab) -> list[tuple[str, str]]:
    """(name, spec) in order: the fleet without its last node, the node added, native routing, WireGuard on,
    every key rotated."""
    nodes, keys = lab.nodes, {}

    def spec(members: list[str], mode: str, generation: int = 0) -> str:
        endpoints = {e: n for e, n in {"web-a": nodes[0], "web-z": nodes[-1]}.items() if n in members}
        if generation:
            keys.setdefault(generation, lab.keys(generation))
        return lab_spec(lab.name, members, mode, endpoints, keys=keys.get(generation),
                        checks=() if generation else (CHECK,))

    return [("first N-1 nodes, tunnel", spec(nodes[:-1], "tunnel")), ("add a node", spec(nodes, "tunnel")),
            ("tunnel to native", spec(nodes, "native")), ("WireGuard on", spec(nodes, "native", 1)),
            ("rotate WireGuard keys", spec(nodes, "native", 2))]


def through_pull(lab: Lab, folder: Path) -> list[dict]:
    signer = Signer.make(folder, "ops")
    repo = SpecRepository(folder)
    fleet = Fleet(lab, agent_config(folder, repo, [signer]))
    results = []
    for name, spec in changes(lab):
        commit = repo.commit(spec, name, signer)
        members = lab.nodes[:-1] if name.startswith("first") else lab.nodes
        rounds = fleet.converge(commit, members)
        applied = [o for r in rounds for o in r.outcomes.values() if o.get("result") == "applied"]
        assert _converged(rounds, commit, members), f"{name}: the fleet did not converge"
        results.append({"change": name, "seconds": sum(r.seconds for r in rounds),
                        "waves": [r.seconds for r in rounds], "writes": [o["writes"] for o in applied]})
    return results


def _converged(rounds: list[Round], commit: str, members: list[str]) -> bool:
    last = rounds[-1].outcomes
    return all(last[n].get("commit") == commit and last[n]["result"] in ("applied", "no-changes") for n in members)


def through_ansible(lab: Lab) -> list[dict]:
    results = []
    for name, spec in changes(lab):
        members = lab.nodes[:-1] if name.startswith("first") else lab.nodes
        hosts = {n: {"ansible_connection": "local", "netx_netns": lab.netns(n)} for n in members}
        inventory = lab.workdir / "inventory.json"
        inventory.write_text(json.dumps({"all": {"hosts": hosts, "vars": {
            "netx_spec": str(lab.write(spec)), "netx_state_dir": str(lab.state_dir),
            "netx_command": str(Path(sys.executable).with_name("netx")),
            "ansible_python_interpreter": sys.executable}}}))
        started = time.perf_counter()
        code, output, _recap = play(lab, inventory)
        assert code == 0, output
        results.append({"change": name, "seconds": time.perf_counter() - started})
    return results


def table(pulled: list[dict], pushed: list[dict], nodes: int) -> str:
    lines = [f"| change ({nodes} nodes) | netx pull: converged | wave 1 / 2 / 3 | writes per node (median, max) "
             "| Ansible rollout.yml |", "|---|---:|---|---:|---:|"]
    for pull, push in zip(pulled, pushed, strict=True):
        waves = " / ".join(f"{s:.1f} s" for s in pull["waves"])
        writes = f"{statistics.median(pull['writes']):.0f}, {max(pull['writes'])}"
        lines.append(f"| {pull['change']} | {pull['seconds']:.1f} s | {waves} | {writes} | {push['seconds']:.1f} s |")
    return "\n".join(lines)


def plot(pulled: list[dict], pushed: list[dict], path: Path, nodes: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (times, writes) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    names = [p["change"] for p in pulled]
    for index, pull in enumerate(pulled):
        bottom = 0.0
        for wave, seconds in enumerate(pull["waves"]):
            times.bar(index - 0.2, seconds, 0.38, bottom=bottom, color=f"C{wave}",
                      label=f"netx pull, round {wave + 1}" if index == 0 else None)
            bottom += seconds
        times.bar(index + 0.2, pushed[index]["seconds"], 0.38, color="0.6",
                  label="Ansible rollout.yml" if index == 0 else None)
    times.set_xticks(range(len(names)), names, rotation=20, ha="right")
    times.set_ylabel("seconds to converge")
    times.set_title(f"{nodes} nodes, waves [1, 25%, 100%]")
    times.legend(fontsize=8)
    writes.boxplot([p["writes"] for p in pulled])
    writes.set_xticklabels([str(i + 1) for i in range(len(names))])
    writes.set_xlabel("change (as left)")
    writes.set_ylabel("writes per node that applied")
    writes.set_title("netx apply --json: writes")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=20, choices=range(3, len(NODE_NAMES) + 1))
    parser.add_argument("--plot", type=Path, help="write the figure here (PNG)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 1
    results = []
    for label in ("pull", "ansible"):
        folder = Path(tempfile.mkdtemp(prefix=f"netx-fleet-{label}-"))
        lab = Lab(f"fb{uuid.uuid4().hex[:5]}", list(NODE_NAMES[:args.nodes]), folder)
        try:
            lab.up()
            results.append(through_pull(lab, folder) if label == "pull" else through_ansible(lab))
        finally:
            lab.down()
    print(table(results[0], results[1], args.nodes))
    if args.plot:
        plot(results[0], results[1], args.plot, args.nodes)
        print(f"\nfigure: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

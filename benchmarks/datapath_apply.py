"""Benchmark: first applies and no-op plans of the eBPF features (services, policies) on cluster nodes.

Usage (root): python benchmarks/datapath_apply.py [--repeat 3] [--json FILE]

A fresh lab (netplanx.lab: nodes as namespaces on one underlay) per run, with 5 endpoints on three nodes;
netx runs as the real command (a new process). Measured, best of --repeat:
- start-up: a no-op plan of an empty spec;
- services (2 services, 5 backends): node-a's first apply compiles bpf/lb.c with bcc (no record of the
  version on this host yet); node-b's first apply finds the version recorded by node-a and compiles
  nothing (system/bpf/programs.py: it loads the recorded instructions against its own maps); a no-op plan;
- policies (3 policies over the 5 endpoints), the same: node-a compiles bpf/policy.c, node-b does not.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from pathlib import Path

from benchlib import NETX, arguments, best, median, save, timed

from netplanx.lab.cluster import Lab, lab_spec

NODES = ["node-a", "node-b", "node-c"]
ENDPOINTS = {"web-1": "node-a", "web-2": "node-b", "client-1": "node-b", "db-1": "node-c", "web-3": "node-c"}
SERVICES = """services:
  - name: web
    vip: 10.96.0.10
    port: 80
    backends: [{endpoint: web-1, port: 8080}, {endpoint: web-2, port: 8080}, {endpoint: web-3, port: 8080}]
  - name: db
    vip: 10.96.0.20
    port: 5432
    backends: [{endpoint: db-1}, {address: 10.244.3.12}]
"""
POLICIES = """policies:
  - name: web
    selector: {app: web}
    ingress:
      - from: [{labels: {app: client}}]
        ports: [{port: 8080}]
  - name: db
    selector: {app: db}
    ingress:
      - from: [{labels: {app: web}}]
        ports: [{port: 5432}]
  - name: client
    selector: {app: client}
    egress:
      - to: [{labels: {app: web}}]
        ports: [{port: 8080}]
"""
KEYS = ("startup", "services_compile", "services_recorded", "services_noop", "policy_compile", "policy_recorded",
        "policy_noop")


def netx(lab: Lab, node: str, *args: str) -> list[str]:
    return [*NETX, *args, "--node", node, "--netns", lab.netns(node)]


def measure(repeat: int) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {k: [] for k in KEYS}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            lab = Lab(f"nb{uuid.uuid4().hex[:4]}", NODES, Path(tmp)).up()
            env = {**os.environ, "NETX_STATE_DIR": str(lab.state_dir)}
            try:
                base = lab_spec(lab.name, NODES, endpoints=ENDPOINTS)
                empty = lab.write("apiVersion: netx/v1\n", "empty.yaml")
                timed(netx(lab, "node-a", "plan", str(empty)), env=env)
                found["startup"].append(timed(netx(lab, "node-a", "plan", str(empty)), env=env))
                for feature, extra in (("services", SERVICES), ("policy", SERVICES + POLICIES)):
                    spec = lab.write(base + extra, f"{feature}.yaml")
                    for node in ("node-a", "node-b"):
                        subprocess.run(netx(lab, node, "plan", str(spec)), env=env, check=True,
                                       stdout=subprocess.DEVNULL)
                    found[f"{feature}_compile"].append(timed(netx(lab, "node-a", "apply", str(spec),
                                                                  "--auto-approve"), env=env))
                    found[f"{feature}_recorded"].append(timed(netx(lab, "node-b", "apply", str(spec),
                                                                   "--auto-approve"), env=env))
                    found[f"{feature}_noop"].append(timed(netx(lab, "node-b", "plan", str(spec),
                                                               "--detailed-exitcode"), env=env))
            finally:
                lab.down()
    return found


def main() -> int:
    args = arguments(__doc__)
    found = measure(args.repeat)
    labels = {"startup": "start-up (no-op plan, empty spec)",
              "services_compile": "services: first apply, compiles lb.c",
              "services_recorded": "services: first apply, version recorded",
              "services_noop": "services: no-op plan",
              "policy_compile": "policies: first apply, compiles policy.c",
              "policy_recorded": "policies: first apply, version recorded",
              "policy_noop": "policies: no-op plan"}
    print(f"runs: {args.repeat} (best of; median in brackets), seconds")
    for key, label in labels.items():
        print(f"  {label:<44} {best(found[key]):7.3f}  [{median(found[key]):.3f}]")
    save(args.json, "datapath_apply", {len(NODES): found})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

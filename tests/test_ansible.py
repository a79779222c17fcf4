"""The Ansible module and rollout playbook, run for real with ansible-core against the three-node lab."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from netplanx.lab.cluster import Lab, lab_spec
from tests.conftest import ROOT

PLAYBOOK = ROOT / "examples" / "ansible" / "rollout.yml"
ENDPOINTS = {"web-a": "node-a", "web-b": "node-b", "db-c": "node-c"}


def inventory(lab: Lab, spec: Path, broken: str | None = None) -> Path:
    hosts = {}
    for node in lab.nodes:
        hosts[node] = {"ansible_connection": "local", "netx_netns": lab.netns(node) if node != broken else
                       "netx-no-such-namespace"}
    path = lab.workdir / "inventory.json"
    path.write_text(json.dumps({"all": {"hosts": hosts, "vars": {
        "netx_spec": str(spec), "netx_state_dir": str(lab.state_dir),
        "netx_command": str(Path(sys.executable).with_name("netx")),
        "ansible_python_interpreter": sys.executable}}}))
    return path


def play(lab: Lab, inventory_path: Path, *extra: str) -> tuple[int, str, dict[str, dict[str, int]]]:
    env = {**os.environ, "ANSIBLE_LIBRARY": str(PLAYBOOK.parent / "library"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(lab.workdir / "ansible-local"), "ANSIBLE_HOST_KEY_CHECKING": "0",
           "ANSIBLE_REMOTE_TEMP": str(lab.workdir / "ansible-remote"), "ANSIBLE_FORKS": "20"}
    run = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory_path),
                          str(PLAYBOOK), *extra], capture_output=True, text=True, env=env, timeout=300)
    recap = {}
    for host, stats in re.findall(r"^(node-\w)\s+:\s+(.*)$", run.stdout, re.M):
        recap[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", stats)}
    return run.returncode, run.stdout + run.stderr, recap


def test_check_mode_plans_then_apply_then_no_change(lab):
    spec = lab.write(lab_spec(lab.name, lab.nodes, "tunnel", ENDPOINTS))
    hosts = inventory(lab, spec)
    code, output, recap = play(lab, hosts, "--check", "--diff")
    assert code == 0, output
    assert all(recap[n]["changed"] == 1 for n in lab.nodes), output
    assert "+ link.netx-tunnel" in output  # diff mode shows netx's plan
    assert lab.plan(lab_spec(lab.name, lab.nodes, "tunnel", ENDPOINTS), "node-a")["changes"]  # nothing applied
    code, output, recap = play(lab, hosts)
    assert code == 0 and all(recap[n]["changed"] == 1 for n in lab.nodes), output
    code, output, recap = play(lab, hosts)
    assert code == 0 and all(recap[n]["changed"] == 0 and recap[n]["ok"] == 1 for n in lab.nodes), output


def test_rollout_stops_at_the_first_failing_node(lab):
    spec = lab.write(lab_spec(lab.name, lab.nodes, "tunnel", ENDPOINTS))
    code, output, recap = play(lab, inventory(lab, spec, broken="node-b"))
    assert code != 0
    assert recap["node-a"]["changed"] == 1 and recap["node-b"]["failed"] == 1, output
    assert recap.get("node-c", {}).get("changed", 0) == 0 and recap.get("node-c", {}).get("ok", 0) == 0, output
    untouched = lab.plan(lab_spec(lab.name, lab.nodes, "tunnel", ENDPOINTS), "node-c")
    assert untouched["changes"], "node-c must not have been touched"

#!/usr/bin/python
"""Ansible module: make a host's networking match a netx spec (check mode plans, diff mode shows it)."""

from __future__ import annotations

import json
import subprocess

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: netx
short_description: Plan and apply a netx spec on a host
description:
  - Runs C(netx plan) (check mode) or C(netx apply) for one spec. "changed" follows netx's exit code,
    diff mode shows the plan as netx prints it, and a failed apply (which netx rolls back) fails the task.
options:
  spec: {description: Path of the spec on the host., required: true, type: path}
  netns: {description: Network namespace to operate in (the host's own when unset)., type: str}
  node: {description: Which node of a cluster spec this host is (default, the host name)., type: str}
  netx: {description: The netx command., type: path, default: netx}
  state_dir: {description: netx's state directory., type: path}
  lock_timeout: {description: Seconds to wait for another netx on the namespace., type: float, default: 60}
"""

EXAMPLES = r"""
- name: Converge networking
  netx:
    spec: /etc/netx/cluster.yaml
    node: "{{ inventory_hostname }}"
"""


def run(module: AnsibleModule, *args: str) -> subprocess.CompletedProcess[str]:
    params = module.params
    command = [params["netx"], *args, params["spec"]]
    for flag, key in (("--netns", "netns"), ("--node", "node"), ("--state-dir", "state_dir")):
        if params[key]:
            command += [flag, str(params[key])]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "spec": {"type": "path", "required": True},
            "netns": {"type": "str"},
            "node": {"type": "str"},
            "netx": {"type": "path", "default": "netx"},
            "state_dir": {"type": "path"},
            "lock_timeout": {"type": "float", "default": 60.0},
        },
        supports_check_mode=True,
    )
    plan = run(module, "plan", "--detailed-exitcode")
    if plan.returncode not in (0, 2):
        module.fail_json(msg=f"netx plan failed: {plan.stderr.strip()}", stdout=plan.stdout, stderr=plan.stderr)
    changed = plan.returncode == 2
    diff = {"prepared": plan.stdout} if module._diff and changed else None
    if module.check_mode or not changed:
        module.exit_json(changed=changed, diff=diff, plan=plan.stdout)
    applied = run(module, "apply", "--auto-approve", "--json", "--lock-timeout", str(module.params["lock_timeout"]))
    if applied.returncode != 0:
        module.fail_json(msg=f"netx apply failed: {applied.stderr.strip()}", stdout=applied.stdout,
                         stderr=applied.stderr)
    result = json.loads(applied.stdout)
    module.exit_json(changed=result["result"] == "applied", diff=diff, plan=plan.stdout,
                     summary=result["plan"]["summary"], writes=result["writes"])


if __name__ == "__main__":
    main()

"""Transactional apply: rollback after failures, stale saved plans, the lock, and bad specs."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, assert_adopts, ip, snapshot

START = """\
apiVersion: netx/v1
interfaces:
  - {name: br0, type: bridge, addresses: [10.0.0.1/24]}
  - {name: up0, type: veth, peer: {name: up0-p}, mtu: 1400, addresses: [192.0.2.10/24]}
  - {name: vx0, type: vxlan, vni: 7, local: 192.0.2.10, device: up0, addresses: [10.7.0.1/24]}
routes:
  - {to: 198.51.100.0/24, via: 192.0.2.1}
  - {to: 203.0.113.0/24, via: 192.0.2.1, table: 100}
rules:
  - {priority: 1000, from: 10.0.0.0/24, table: 100}
sysctl: {net.ipv4.ip_forward: 1}
"""

# creates, in-place updates, a replace (with the address that lives on the replaced link) and deletes
TARGET = """\
apiVersion: netx/v1
interfaces:
  - {name: br0, type: bridge, addresses: [10.0.0.1/24, 10.0.1.1/24]}
  - {name: up0, type: veth, peer: {name: up0-p}, mtu: 1300, addresses: [192.0.2.10/24]}
  - {name: vx0, type: vxlan, vni: 8, local: 192.0.2.10, device: up0, addresses: [10.7.0.1/24]}
  - {name: mv0, type: macvlan, parent: up0, addresses: [192.0.2.11/24]}
routes:
  - {to: 198.51.100.0/24, via: 192.0.2.2}
  - {to: 10.200.0.0/16, via: 10.0.1.254}
rules:
  - {priority: 1000, from: 10.0.0.0/24, table: 200}
sysctl: {net.ipv4.ip_forward: 0, net.ipv4.conf.all.rp_filter: 2}
"""


def test_failure_at_every_step_rolls_everything_back(netx, netns):
    netx.apply(START)
    before = snapshot(netns)
    plan = netx.plan(TARGET)
    steps = len(plan["steps"])
    assert steps >= 12 and {c["action"] for c in plan["changes"]} == {"create", "update", "replace", "delete"}
    for step in range(1, steps + 1):
        result = netx("apply", "--auto-approve", spec=TARGET, env={"NETX_FAILPOINT_STEP": str(step)})
        assert result.code == 1
        assert f"step {step} of {steps}" in result.err and "injected fault" in result.err
        assert "back where it was (verified)" in result.err
        assert snapshot(netns) == before, f"state differs after a failure at step {step}"
    netx.apply(TARGET)
    assert netx.plan(TARGET)["changes"] == []


def test_real_kernel_failure_mid_apply_is_undone(netx, netns):
    before = snapshot(netns)
    bad = START.replace("sysctl: {net.ipv4.ip_forward: 1}", "sysctl: {net.ipv4.ip_forward: \"yes\"}")
    result = netx("apply", "--auto-approve", spec=bad)
    assert result.code == 1
    assert "sysctl.net.ipv4.ip_forward) failed" in result.err and "Invalid argument" in result.err
    assert "Rolled back" in result.err
    assert snapshot(netns) == before


def test_saved_plan_applies_exactly_and_refuses_when_stale(netx, netns, tmp_path):
    netx.apply(START)
    saved = tmp_path / "plan.json"
    assert netx("plan", "-o", str(saved), spec=TARGET).code == 0
    assert oct(saved.stat().st_mode & 0o777) == "0o600"
    # someone changes an object the plan touches: the plan is refused and nothing changes
    ip("-n", netns, "link", "set", "up0", "mtu", "1500")
    touched = snapshot(netns)
    refused = netx("apply", "--auto-approve", str(saved))
    assert refused.code == 1 and "stale" in refused.err and "link.up0 changed" in refused.err
    assert snapshot(netns) == touched
    # an object the plan would create appears in the meantime
    ip("-n", netns, "link", "set", "up0", "mtu", "1400")
    assert netx("plan", "-o", str(saved), spec=TARGET).code == 0
    ip("-n", netns, "route", "add", "10.200.0.0/16", "via", "10.0.0.254")
    refused = netx("apply", "--auto-approve", str(saved))
    assert refused.code == 1 and "route.main.10.200.0.0/16 now exists" in refused.err
    ip("-n", netns, "route", "del", "10.200.0.0/16")
    # unchanged: the saved plan is applied as it is
    applied = netx("apply", "--auto-approve", str(saved))
    assert applied.code == 0, applied.err
    assert netx.plan(TARGET)["changes"] == []


def test_saved_plan_for_another_namespace_is_refused(netx, netns, other_netns, tmp_path):
    saved = tmp_path / "plan.json"
    assert netx("plan", "-o", str(saved), spec=START).code == 0
    result = subprocess.run([sys.executable, "-m", "netplanx", "apply", "--auto-approve", str(saved), "--netns",
                             other_netns], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "NETX_STATE_DIR": str(netx.state_dir)})
    assert result.returncode == 1 and f"for namespace {netns}" in result.stderr


def test_concurrent_applies_are_serialised(netx, netns):
    path = netx.write(START, "start.yaml")
    command = [sys.executable, "-m", "netplanx", "apply", "--auto-approve", "--json", str(path), "--netns", netns]
    env = {**os.environ, "NETX_STATE_DIR": str(netx.state_dir)}
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
            for _ in range(2)]
    outputs = [run.communicate(timeout=60) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    results = sorted(__import__("json").loads(out)["result"] for out, _ in outputs)
    assert results == ["applied", "no-changes"]
    assert netx.plan(START)["changes"] == []


def test_lock_timeout_fails_clearly_and_changes_nothing(netx, netns):
    netx.state_dir.mkdir(parents=True, exist_ok=True)
    lock = netx.state_dir / f"{netns}.lock"
    before = snapshot(netns)
    with open(lock, "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        holder.write(f"{os.getpid()}\n")
        holder.flush()
        result = netx("apply", "--auto-approve", "--lock-timeout", "0.5", spec=START)
    assert result.code == 1 and "held" in result.err and "--lock-timeout" in result.err
    assert f"pid {os.getpid()}" in result.err and "nothing was changed" in result.err
    assert snapshot(netns) == before


@pytest.mark.parametrize("spec", [
    START.replace("vni: 7", "vni: -1"),
    START.replace("master", "masterr") + "  - {name: x, type: veth, peer: {name: y}, masterr: br0}\n",
    START.replace("via: 192.0.2.1}", "via: 10.123.0.1}"),
    START + "unknown: 1\n",
])
def test_bad_spec_changes_nothing(netx, netns, spec):
    before = snapshot(netns)
    result = netx("apply", "--auto-approve", spec=spec)
    assert result.code == 1 and "nothing was changed" in result.err
    assert ".yaml:" in result.err
    assert snapshot(netns) == before


def test_apply_asks_for_confirmation(netx, netns):
    before = snapshot(netns)
    result = netx("apply", spec=START)  # stdin is not a terminal and there is no --auto-approve
    assert result.code == 1 and "--auto-approve" in result.err
    assert snapshot(netns) == before


RENUMBER_BEFORE = """\
apiVersion: netx/v1
interfaces:
  - {name: h0, type: veth, peer: {name: h0-p}, addresses: [10.81.0.1/24]}
routes:
  - {to: default, via: 10.81.0.2, table: 100}
"""
RENUMBER_AFTER = RENUMBER_BEFORE.replace("10.81.0.1/24", "10.81.0.5/24")


def table_100(netns: str) -> list[str]:
    return ip("-n", netns, "route", "show", "table", "100").splitlines()


def test_renumbering_plans_the_routes_the_kernel_drops_with_the_address(netx, netns):
    """The kernel removes a route whose gateway loses its connected prefix: the plan re-creates it."""
    netx.apply(RENUMBER_BEFORE)
    plan = netx.plan(RENUMBER_AFTER)
    changes = {c["address"]: c for c in plan["changes"]}
    route = changes["route.100.0.0.0.0/0"]
    assert route["action"] == "replace" and route["reason"] == "address.h0.10.81.0.1/24 is deleted"
    assert route["disruption"] == "route gap"
    netx.apply(RENUMBER_AFTER)
    assert table_100(netns) == ["default via 10.81.0.2 dev h0 proto netx "]
    assert netx.plan(RENUMBER_AFTER)["changes"] == []


def test_a_failed_renumbering_brings_the_route_back(netx, netns):
    netx.apply(RENUMBER_BEFORE)
    before = snapshot(netns)
    steps = len(netx.plan(RENUMBER_AFTER)["steps"])
    for step in range(1, steps + 1):
        result = netx("apply", "--auto-approve", spec=RENUMBER_AFTER, env={"NETX_FAILPOINT_STEP": str(step)})
        assert result.code == 1 and "back where it was (verified)" in result.err
        assert snapshot(netns) == before, f"state differs after a failure at step {step}"


def test_verification_catches_a_resource_the_kernel_removed_on_its_own(netx, netns):
    """An MTU under 1280 makes the kernel drop a link's IPv6 addresses: the plan changes only the MTU,
    verification finds the unchanged address gone, and the rollback brings both back."""
    spec = """\
        apiVersion: netx/v1
        interfaces:
          - {name: h0, type: veth, peer: {name: h0-p}, mtu: 1500, addresses: ["fd81::1/64", 10.81.0.1/24]}
        """
    netx.apply(spec)
    before = snapshot(netns)
    smaller = spec.replace("mtu: 1500", "mtu: 1200")
    assert [c["address"] for c in netx.plan(smaller)["changes"]] == ["link.h0"]
    result = netx("apply", "--auto-approve", spec=smaller)
    assert result.code == 1
    assert "verification after apply failed: address.h0.fd81::1/64 is missing" in result.err
    assert "back where it was (verified)" in result.err
    assert snapshot(netns) == before


PEER_AS_DEVICE = """\
apiVersion: netx/v1
interfaces:
  - {name: h8v0, type: veth, peer: {name: h8v1}, addresses: [10.88.0.1/24]}
  - {name: h8v1, type: device, mtu: 1400, addresses: [10.88.0.2/24]}
"""


def test_a_same_namespace_veth_peer_is_configured_as_a_device(netx, netns):
    """The documented form: the veth creates both ends, the device entry configures the peer end."""
    before = snapshot(netns)
    netx.apply(PEER_AS_DEVICE)
    shown = ip("-n", netns, "-br", "addr", "show", "h8v1")
    assert "10.88.0.2/24" in shown and "UP" in shown and '"mtu":1400' in ip("-n", netns, "-j", "link", "show", "h8v1")
    assert netx.plan(PEER_AS_DEVICE)["changes"] == []
    assert_adopts(netx)
    steps = len(netx.plan("apiVersion: netx/v1\n")["steps"])
    for step in range(1, steps + 1):  # removing the pair, failing at every step: back where it was
        applied = snapshot(netns)
        result = netx("apply", "--auto-approve", spec="apiVersion: netx/v1\n", env={"NETX_FAILPOINT_STEP": str(step)})
        assert result.code == 1 and "back where it was (verified)" in result.err and "INCOMPLETE" not in result.err
        assert snapshot(netns) == applied
    netx.apply("apiVersion: netx/v1\n")
    assert snapshot(netns) == before


def test_a_failed_apply_of_a_veth_pair_with_its_peer_as_device_rolls_back_cleanly(netx, netns):
    before = snapshot(netns)
    steps = len(netx.plan(PEER_AS_DEVICE)["steps"])
    for step in range(1, steps + 1):
        result = netx("apply", "--auto-approve", spec=PEER_AS_DEVICE, env={"NETX_FAILPOINT_STEP": str(step)})
        assert result.code == 1 and "back where it was (verified)" in result.err and "INCOMPLETE" not in result.err
        assert snapshot(netns) == before
        assert not (netx.state_dir / f"{netns}.journal.json").exists()

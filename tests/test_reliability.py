"""Crashes, concurrency and the state directory: what lets an operator trust netx on a production host.

The crash campaign is seeded: ``NETX_CRASH_RUNS=50 pytest tests/test_reliability.py -k crash`` runs the
full campaign recorded in docs/reliability.md (CI runs fewer).
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import stat
import subprocess
import sys

import pytest

from tests.conftest import ROOT, ip, ip_json
from tests.test_apply_safety import START, TARGET
from tests.test_ownership_and_adoption import foreign_objects, foreign_view

CRASH_RUNS = int(os.environ.get("NETX_CRASH_RUNS", "12"))
CRASH_SEED = int(os.environ.get("NETX_CRASH_SEED", "20261125"))


def netx_owned(netns: str) -> dict[str, list]:
    """Everything in the namespace that carries netx's marker."""
    return {
        "links": sorted(link["ifname"] for link in ip_json(netns, "-d", "link", "show")
                        if link.get("ifalias") == "netx"),
        "routes": sorted(r.get("dst", "") for family in ("-4", "-6")
                         for r in ip_json(netns, family, "route", "show", "table", "all")
                         if r.get("protocol") in ("netx", "78")),
        "rules": sorted(r["priority"] for r in ip_json(netns, "rule", "show") if r.get("protocol") in ("netx", "78")),
    }


@pytest.mark.parametrize("run", range(CRASH_RUNS))
def test_crash_at_any_point_converges(netx, netns, run):
    """SIGKILL an apply at a seeded point (a chosen step, or a moment in the middle of one); the next
    apply reports the interrupted one and converges, the plan after it is empty, nothing foreign changed,
    and everything the crashed apply created is netx's (so removing the spec removes it all)."""
    rng = random.Random(CRASH_SEED * 1000 + run)
    foreign_objects(netns)
    netx.apply(START)
    expected_foreign = foreign_view(netns)
    steps = len(netx.plan(TARGET)["steps"])
    path = netx.write(TARGET)
    env = {**os.environ, "NETX_STATE_DIR": str(netx.state_dir)}
    command = [sys.executable, "-m", "netplanx", "apply", "--auto-approve", str(path), "--netns", netns]
    if run % 2 == 0:  # at a step boundary, chosen by the seed
        step = rng.randint(1, steps)
        crashed = subprocess.run(command, env={**env, "NETX_FAILPOINT_STEP": str(step), "NETX_FAILPOINT_KILL": "1"},
                                 capture_output=True, text=True, cwd=ROOT)
        assert crashed.returncode == -signal.SIGKILL
    else:  # at a moment, possibly inside a step
        delay = rng.uniform(0.05, 0.6)
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
    journal = netx.state_dir / f"{netns}.journal.json"
    interrupted = journal.exists()
    recovered = netx("apply", "--auto-approve", spec=TARGET)
    assert recovered.code == 0, recovered.err + recovered.out
    assert ("an earlier apply" in recovered.out and "was interrupted" in recovered.out) == interrupted
    assert not journal.exists()
    assert netx.plan(TARGET)["changes"] == []
    assert foreign_view(netns) == expected_foreign
    netx.apply("apiVersion: netx/v1\n")
    assert netx_owned(netns) == {"links": [], "routes": [], "rules": []}
    assert foreign_view(netns) == expected_foreign


def test_ten_concurrent_applies_are_serialised(netx, netns):
    path = netx.write(START)
    env = {**os.environ, "NETX_STATE_DIR": str(netx.state_dir)}
    command = [sys.executable, "-m", "netplanx", "apply", "--auto-approve", "--json", str(path), "--netns", netns]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
            for _ in range(10)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0] * 10, outputs
    results = sorted(json.loads(out)["result"] for out, _ in outputs)
    assert results == ["applied"] + ["no-changes"] * 9
    assert netx.plan(START)["changes"] == []


def test_ten_applies_behind_a_held_lock_time_out_clearly(netx, netns):
    netx.state_dir.mkdir(parents=True, exist_ok=True)
    path = netx.write(START)
    env = {**os.environ, "NETX_STATE_DIR": str(netx.state_dir)}
    command = [sys.executable, "-m", "netplanx", "apply", "--auto-approve", "--lock-timeout", "0.3", str(path),
               "--netns", netns]
    with open(netx.state_dir / f"{netns}.lock", "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                 cwd=ROOT) for _ in range(10)]
        outputs = [run.communicate(timeout=60) for run in runs]
    assert [run.returncode for run in runs] == [1] * 10
    assert all("--lock-timeout" in err and "nothing was changed" in err for _out, err in outputs)
    assert [link["ifname"] for link in ip_json(netns, "link", "show")] == ["lo"]


def test_state_directory_is_private(netx, netns, tmp_path):
    netx.apply(START)
    netx("plan", "-o", str(tmp_path / "saved.json"), spec=TARGET)
    assert stat.S_IMODE(netx.state_dir.stat().st_mode) == 0o700
    found = list(netx.state_dir.rglob("*"))
    assert found, "netx wrote no state"
    for path in found:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} is {oct(mode)}"
    assert stat.S_IMODE((tmp_path / "saved.json").stat().st_mode) == 0o600


def test_spec_cannot_make_netx_write_outside_its_paths(netx, netns):
    """Names and keys that reach the file system or a command line are validated before anything runs."""
    for bad in ("sysctl: {net.ipv4.conf.../../../../etc/passwd: 1}",
                "sysctl: {net.ipv4.conf.x/y.rp_filter: 1}",
                "interfaces: [{name: ../x, type: bridge}]",
                "interfaces: [{name: a, type: veth, peer: {name: b, netns: ../../etc}}]",
                "interfaces: [{name: a, type: veth, peer: {name: b, netns: '$(reboot)'}}]"):
        result = netx("apply", "--auto-approve", spec=f"apiVersion: netx/v1\n{bad}\n")
        assert result.code == 1 and "nothing was changed" in result.err, bad
    assert [link["ifname"] for link in ip_json(netns, "link", "show")] == ["lo"]
    assert ip("netns", "list").count("etc") == 0

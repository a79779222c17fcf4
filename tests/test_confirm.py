"""Confirm or revert (``apply --confirm-timeout``) and post-conditions."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time

from netplanx.workflow.confirm import APPLY_BUDGET
from tests.conftest import ROOT, snapshot

BEFORE = """\
apiVersion: netx/v1
interfaces:
  - {name: br0, type: bridge, mtu: 1400, addresses: [10.0.0.1/24]}
routes:
  - {to: 198.51.100.0/24, via: 10.0.0.254}
"""
AFTER = """\
apiVersion: netx/v1
interfaces:
  - {name: br0, type: bridge, mtu: 1300, addresses: [10.0.0.1/24, 10.0.1.1/24]}
  - {name: br1, type: bridge}
routes:
  - {to: 203.0.113.0/24, via: 10.0.1.254}
"""


def start_apply(netx, spec: str, timeout: float, tty: bool = False) -> subprocess.Popen[str]:
    path = netx.write(spec)
    command = [sys.executable, "-m", "netplanx", "apply", str(path), "--netns", netx.netns, "--auto-approve",
               "--confirm-timeout", str(timeout)]
    if tty:  # under script(1): a terminal, in a session of its own (so it can be killed as a whole)
        command = ["script", "-qefc", " ".join(command), "/dev/null"]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env={**os.environ, "NETX_STATE_DIR": str(netx.state_dir)},
                            start_new_session=True)


def wait_for_prompt(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        if "Keep it: press Enter" in line:
            return
    raise AssertionError(f"no confirmation prompt: {process.stderr.read() if process.stderr else ''}")


def pending(netx) -> dict:
    return json.loads((netx.state_dir / f"{netx.netns}.pending.json").read_text())


def wait_for_watchdog(netx) -> None:
    """Until the watchdog process has exited (its pidfd becomes readable)."""
    try:
        fd = os.pidfd_open(pending(netx)["watchdog"])
    except ProcessLookupError:
        return
    try:
        assert select.select([fd], [], [], 30)[0], "the watchdog did not finish"
    finally:
        os.close(fd)


def test_netx_confirm_from_another_shell_keeps_the_change(netx, netns):
    netx.apply(BEFORE)
    process = start_apply(netx, AFTER, 60)
    wait_for_prompt(process)
    confirmed = netx("confirm")
    assert confirmed.code == 0 and "Confirmed" in confirmed.out
    out, _err = process.communicate(timeout=30)
    assert process.returncode == 0 and "Confirmed: the change is kept." in out
    wait_for_watchdog(netx)
    assert pending(netx)["status"] == "confirmed"
    assert netx.plan(AFTER)["changes"] == []
    assert netx("confirm").code == 1  # nothing left to confirm


def test_no_confirmation_restores_the_previous_state(netx, netns):
    netx.apply(BEFORE)
    before = snapshot(netns)
    result = netx("apply", "--auto-approve", "--confirm-timeout", "1", spec=AFTER)
    assert result.code == 1 and "not confirmed within 1s: reverted" in result.err
    assert snapshot(netns) == before
    assert netx("history", "--json").json[-1]["result"] == "rolled-back"


def test_the_revert_does_not_need_the_shell_that_started_it(netx, netns):
    netx.apply(BEFORE)
    before = snapshot(netns)
    process = start_apply(netx, AFTER, 2, tty=True)
    wait_for_prompt(process)
    assert netx.plan(AFTER)["changes"] == []  # applied, waiting
    os.killpg(process.pid, signal.SIGKILL)  # the terminal and everything in it die
    process.wait()
    wait_for_watchdog(netx)
    assert pending(netx)["status"] == "reverted"
    assert snapshot(netns) == before


def test_enter_on_the_terminal_confirms(netx, netns):
    process = start_apply(netx, AFTER, 60, tty=True)
    wait_for_prompt(process)
    assert process.stdin is not None
    process.stdin.write("\n")
    process.stdin.flush()
    out, _err = process.communicate(timeout=30)
    assert process.returncode == 0 and "Confirmed: the change is kept." in out
    wait_for_watchdog(netx)
    assert netx.plan(AFTER)["changes"] == []


def test_failed_post_condition_undoes_the_change(netx, netns):
    netx.apply(BEFORE)
    before = snapshot(netns)
    failing = AFTER + "checks:\n  - {ping: 10.0.1.99, count: 1, timeout: 1}\n"
    result = netx("apply", "--auto-approve", spec=failing)
    assert result.code == 1 and "post-condition failed: ping 10.0.1.99 got no answer" in result.err
    assert "back where it was (verified)" in result.err
    assert snapshot(netns) == before


def test_passing_post_conditions_confirm_automatically(netx, netns):
    passing = AFTER.replace("interfaces:\n", "interfaces:\n  - {name: lo, type: device}\n") + \
        "checks:\n  - {ping: 10.0.1.1, count: 1}\n"
    result = netx("apply", "--auto-approve", "--confirm-timeout", "60", spec=passing)
    assert result.code == 0 and "the post-conditions hold: confirmed" in result.out
    wait_for_watchdog(netx)
    assert pending(netx)["status"] == "confirmed"
    assert netx.plan(passing)["changes"] == []


def test_reverts_bring_back_the_routes_the_kernel_dropped_with_an_address(netx, netns):
    """Renumbering drops the route through the old gateway; the watchdog's revert and a failed
    post-condition's rollback both bring it back."""
    from tests.test_apply_safety import RENUMBER_AFTER, RENUMBER_BEFORE, table_100

    netx.apply(RENUMBER_BEFORE)
    before = snapshot(netns)
    result = netx("apply", "--auto-approve", "--confirm-timeout", "1", spec=RENUMBER_AFTER)
    assert result.code == 1 and "reverted" in result.err
    assert snapshot(netns) == before and table_100(netns)
    failing = RENUMBER_AFTER + "checks:\n  - {ping: 10.81.0.99, count: 1, timeout: 1}\n"
    result = netx("apply", "--auto-approve", spec=failing)
    assert result.code == 1 and "back where it was (verified)" in result.err
    assert snapshot(netns) == before and table_100(netns)


def test_a_killed_apply_is_reverted_at_once(netx, netns):
    """SIGKILL mid-apply (here: at step 3, after two steps were written): the watchdog follows the apply
    process and reverts as soon as it is gone, not when the apply budget runs out; no journal is left."""
    netx.apply(BEFORE)
    before = snapshot(netns)
    started = time.monotonic()
    killed = netx("apply", "--auto-approve", "--confirm-timeout", "6", spec=AFTER,
                  env={"NETX_FAILPOINT_STEP": "3", "NETX_FAILPOINT_KILL": "1"})
    assert killed.code == -signal.SIGKILL
    wait_for_watchdog(netx)
    assert pending(netx)["status"] == "reverted"
    assert time.monotonic() - started < APPLY_BUDGET / 4  # the revert did not wait for the budget
    assert snapshot(netns) == before
    assert not (netx.state_dir / f"{netx.netns}.journal.json").exists()
    assert "interrupted" not in netx("plan", spec=BEFORE).out

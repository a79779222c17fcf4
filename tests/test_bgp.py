"""BGP through gobgpd, against BIRD 2: peers and paths as resources, learned routes in the kernel.

Each test builds its own topology (about a second, see tests/bgp_topology.py): BIRD on a router, gobgpd on
the node, BIRD dialling.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from netplanx.lab.bgp import gobgp, start_sync, wait_until
from tests.bgp_topology import ANNOUNCED, NODE_ADDRESS, ROUTER_ADDRESS, Topology, node_spec, router_config
from tests.conftest import IS_ROOT, Netx, assert_adopts, ip, ip_json

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="needs root: creates network namespaces")


def changes(plan: dict) -> dict[str, str]:
    return {c["address"]: c["action"] for c in plan["changes"]}


def test_apply_configures_gobgpd_and_bird_learns_the_prefixes(topo: Topology):
    plan = topo.netx.plan(node_spec())
    assert changes(plan) == {"bgp.global": "create", "bgppeer.192.0.2.1": "create",
                             "bgppath.198.51.100.0/24": "create", "bgppath.198.51.100.128/25": "create"}
    topo.converged()
    kernel = {r["dst"]: r for r in ip_json(topo.router, "route", "show", "proto", "bird")}
    assert kernel["198.51.100.0/24"]["gateway"] == NODE_ADDRESS  # BIRD put it in its namespace's kernel
    community = topo.bird.birdc("show", "route", "198.51.100.0/24", "all")
    assert "(65001,7)" in community
    neighbours = json.loads(gobgp(topo.node, "neighbor", "-j").stdout)
    assert [n["state"]["neighbor_address"] for n in neighbours] == [ROUTER_ADDRESS]
    again = topo.netx("apply", "--auto-approve", spec=node_spec())
    assert again.code == 0 and "No changes" in again.out


def test_show_reports_the_session_and_its_counters(topo: Topology):
    topo.converged()
    shown = topo.netx("show", "-o", "json")
    assert shown.code == 0, shown.err
    peer = next(r for r in shown.json if r["address"] == "bgppeer.192.0.2.1")
    assert peer["owned"] and peer["meta"]["status"]["session"] == "established"
    assert peer["meta"]["status"]["received"] >= 1 and peer["meta"]["status"]["accepted"] >= 1
    table = topo.netx("show")
    assert "bgppeer.192.0.2.1" in table.out and "established" in table.out


def test_sync_installs_learned_routes_and_withdraws_them(topo: Topology):
    topo.converged()
    sync = start_sync(topo.node, topo.folder, topo.netx.state_dir)
    try:
        route = wait_until(lambda: ip_json(topo.node, "route", "show", ANNOUNCED), 5, "learned route")
        assert route[0]["gateway"] == ROUTER_ADDRESS and route[0]["protocol"] in ("netx-bgp", "79")
        plan = topo.netx.plan(node_spec())  # the synced route is not the spec's business
        assert plan["changes"] == [] and not any(ANNOUNCED in u for u in plan["unmanaged"])
        started = time.monotonic()
        topo.bird.birdc("disable", "announced")
        wait_until(lambda: not ip_json(topo.node, "route", "show", ANNOUNCED), 5, "withdrawal")
        withdrawn_after = time.monotonic() - started
        topo.bird.birdc("enable", "announced")
        wait_until(lambda: ip_json(topo.node, "route", "show", ANNOUNCED), 5, "re-announcement")
        assert withdrawn_after < 1  # the issue's bound; measured here: under 10 ms
    finally:
        sync.stop()
    # a restarted sync reconciles: a stale route of its protocol goes, the learned one stays
    ip("-n", topo.node, "route", "add", "192.0.2.128/25", "via", ROUTER_ADDRESS, "proto", "79")
    again = start_sync(topo.node, topo.folder, topo.netx.state_dir)
    try:
        assert not ip_json(topo.node, "route", "show", "192.0.2.128/25")
        assert ip_json(topo.node, "route", "show", ANNOUNCED)
    finally:
        again.stop()


def test_hand_added_peer_is_unmanaged_and_kept(topo: Topology):
    topo.converged()
    added = gobgp(topo.node, "neighbor", "add", "192.0.2.99", "as", "65099")
    assert added.returncode == 0, added.stderr
    try:
        plan = topo.netx.plan(node_spec())
        assert plan["changes"] == [] and "bgppeer.192.0.2.99" in plan["unmanaged"]
        assert "No changes" in topo.netx("apply", "--auto-approve", spec=node_spec()).out
        assert "192.0.2.99" in gobgp(topo.node, "neighbor").stdout
    finally:
        gobgp(topo.node, "neighbor", "del", "192.0.2.99")


def test_password_change_resets_the_session_with_the_new_password(topo: Topology):
    topo.converged()
    password = topo.folder / "bgp.pw"
    secret = "s3cret-one"
    fd = os.open(password, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, secret.encode() + b"\n")
    os.close(fd)
    spec = node_spec(peers=f"[{{address: 192.0.2.1, asn: 65000, passive: true, description: router, "
                           f"passwordFile: {password}}}]")
    result = topo.netx("plan", spec=spec)
    assert result.code == 0, result.err
    assert "bgppeer.192.0.2.1" in result.out and "session reset" in result.out and secret not in result.out
    topo.bird.reconfigure(router_config(password=secret))
    applied = topo.netx.apply(spec)
    assert secret not in applied.out + applied.err
    wait_until(topo.established, 20, "session with the password")
    secret = "s3cret-two"
    password.write_text(secret + "\n")
    plan = topo.netx.plan(spec)
    assert changes(plan) == {"bgppeer.192.0.2.1": "update"}
    assert plan["changes"][0]["changed"] == ["password"] and secret not in json.dumps(plan)
    topo.bird.reconfigure(router_config(password=secret))
    topo.netx.apply(spec)
    wait_until(topo.established, 20, "session with the new password")
    for path in topo.netx.state_dir.rglob("*"):
        assert secret not in path.read_text(errors="replace") if path.is_file() else True
    topo.bird.reconfigure(router_config())
    topo.netx.apply(node_spec())
    wait_until(topo.established, 20, "session without a password")


def test_gobgpd_restart_is_drift_and_apply_restores_it(topo: Topology):
    topo.converged()
    topo.restart_gobgpd()
    drift = topo.netx("drift", spec=node_spec())
    assert drift.code == 2, drift.err + drift.out
    plan = topo.netx.plan(node_spec())
    assert set(changes(plan).values()) == {"create"} and "bgp.global" in changes(plan)
    topo.netx.apply(node_spec())
    wait_until(topo.established, 20, "session after gobgpd's restart")
    wait_until(lambda: "198.51.100.0/24" in topo.bird.routes(), 10, "BIRD relearning")
    assert topo.netx.plan(node_spec())["changes"] == []


def test_removing_the_peer_tears_the_session_down(topo: Topology):
    topo.converged()
    topo.netx.apply(node_spec(peers="[]", prefixes="[{prefix: 198.51.100.0/24}]"))
    wait_until(lambda: not topo.established(), 15, "session teardown")
    assert json.loads(gobgp(topo.node, "neighbor", "-j").stdout or "[]") == []
    assert "198.51.100.128/25" not in gobgp(topo.node, "global", "rib").stdout
    topo.netx.apply("apiVersion: netx/v1\n")  # no bgp section: netx stops BGP, which it started
    assert "AS:        0" in gobgp(topo.node, "global").stdout


def test_unreachable_gobgpd_fails_the_plan_saying_what_to_start(topo: Topology):
    result = topo.netx("plan", spec=node_spec(port=50999))
    assert result.code == 1
    assert "gobgpd is not reachable at 127.0.0.1:50999: start it" in result.err


def gobgpd_state(topo: Topology) -> tuple[list, list]:
    """What gobgpd holds, read with its own tool: peers (configuration) and advertised paths."""
    peers = json.loads(gobgp(topo.node, "neighbor", "-j").stdout or "[]")
    rib = json.loads(gobgp(topo.node, "global", "rib", "-j").stdout or "{}")
    paths = sorted((prefix, json.dumps(sorted(json.dumps(a, sort_keys=True) for a in route[0]["attrs"])))
                   for prefix, route in rib.items())
    return sorted(json.dumps(p["conf"], sort_keys=True) for p in peers), paths


def test_a_failure_at_any_step_restores_gobgpd(topo: Topology):
    topo.converged()
    target = node_spec(peers="[{address: 192.0.2.1, asn: 65000, passive: true, description: renamed}, "
                             "{address: 192.0.2.77, asn: 65077, passive: true}]",
                       prefixes='[{prefix: 198.51.100.0/24, communities: ["65001:8"]}, {prefix: 203.0.113.128/25}]')
    steps = len(topo.netx.plan(target)["steps"])
    assert steps == 5  # peer renamed, peer added, path changed, path added, path withdrawn
    before = gobgpd_state(topo)
    for step in range(1, steps + 1):
        failed = topo.netx("apply", "--auto-approve", spec=target, env={"NETX_FAILPOINT_STEP": str(step)})
        assert failed.code == 1 and "Rolled back" in failed.err, failed.err
        # a rolled-back peer change restarts its session: the paths learned from BIRD come back with it
        wait_until(lambda: gobgpd_state(topo) == before, 15, f"gobgpd as before a failure at step {step}")
    topo.netx.apply(target)
    assert topo.netx.plan(target)["changes"] == []


def test_established_check_keeps_a_working_change_and_undoes_a_broken_one(topo: Topology):
    topo.converged()
    working = node_spec().rstrip(" ") + "        checks: [{bgpEstablished: {peer: 192.0.2.1, within: 20}}]\n"
    broken = node_spec(peers="[{address: 192.0.2.1, asn: 65000, passive: true, description: router}, "
                             "{address: 192.0.2.77, asn: 65077, passive: true}]",
                       prefixes="[{prefix: 198.51.100.0/24}]").rstrip(" ") + \
        "        checks: [{bgpEstablished: {peer: 192.0.2.77, within: 2}}]\n"
    result = topo.netx("apply", "--auto-approve", spec=working)
    assert result.code == 0 and "No changes" in result.out, result.err
    before = gobgpd_state(topo)
    failed = topo.netx("apply", "--auto-approve", spec=broken)
    assert failed.code == 1, failed.out
    assert "BGP peer 192.0.2.77: session active, not established within 2s" in failed.err, failed.err
    assert gobgpd_state(topo) == before  # the new peer is gone, the withdrawn path is back


def test_adoption_writes_gobgpd_as_a_bgp_section_that_plans_no_changes(topo: Topology, tmp_path: Path):
    topo.converged()
    fresh = Netx(topo.node, tmp_path / "fresh-state", tmp_path)  # a host netx has never managed
    shown = fresh("show", "-o", "yaml", "--bgp-api", "127.0.0.1:50051")
    assert shown.code == 0, shown.err
    assert "asn: 65001" in shown.out and "198.51.100.128/25" in shown.out and "65001:7" in shown.out
    plan = fresh.plan(shown.out)
    assert plan["changes"] == [], plan["changes"]


def test_graceful_restart_is_negotiated_and_a_change_of_it_resets_the_sessions(topo: Topology):
    topo.converged()
    neighbour = json.loads(gobgp(topo.node, "neighbor", ROUTER_ADDRESS, "-j").stdout)
    assert neighbour["graceful_restart"]["enabled"] and neighbour["graceful_restart"]["restart_time"] == 120
    family = neighbour["afi_safis"][0]["mp_graceful_restart"]["state"]
    assert family["advertised"] and family["received"]  # BIRD has graceful restart on too
    assert "Restart time: 120" in topo.bird.birdc("show", "protocols", "all", "node")
    shorter = node_spec(extra="gracefulRestart: {restartTime: 60}")
    plan = topo.netx.plan(shorter)
    change = {c["address"]: c for c in plan["changes"]}
    assert change["bgp.global"]["action"] == "replace" and change["bgp.global"]["changed"] == ["restart_time"]
    assert change["bgp.global"]["disruption"] == "all BGP sessions reset"
    peer = change[f"bgppeer.{ROUTER_ADDRESS}"]
    assert peer["after"]["attrs"]["restart_time"] == 60 and peer["disruption"] == "session reset"
    text = topo.netx("plan", spec=shorter).out
    assert "~ restart_time: 120 -> 60" in text and "forces replacement" in text
    topo.converged(shorter)
    assert json.loads(gobgp(topo.node, "neighbor", ROUTER_ADDRESS, "-j").stdout)["graceful_restart"][
        "restart_time"] == 60
    assert topo.netx.plan(shorter)["changes"] == []
    per_peer = node_spec(peers="[{address: 192.0.2.1, asn: 65000, passive: true, description: router, "
                               "gracefulRestart: {enabled: false}}]", extra="gracefulRestart: {restartTime: 60}")
    assert changes(topo.netx.plan(per_peer)) == {f"bgppeer.{ROUTER_ADDRESS}": "update"}
    topo.converged(per_peer)
    off = json.loads(gobgp(topo.node, "neighbor", ROUTER_ADDRESS, "-j").stdout).get("graceful_restart", {})
    assert not off.get("enabled")  # gobgp's JSON leaves false out
    assert topo.netx.plan(per_peer)["changes"] == []


def test_a_gobgpd_configured_by_hand_is_adopted_and_plans_no_changes(topo: Topology, tmp_path: Path):
    """Adoption of state netx did not make: gobgpd set up with the gobgp command line only."""
    for command in (("global", "as", "65001", "router-id", NODE_ADDRESS, "listen-port", "1790"),
                    ("neighbor", "add", ROUTER_ADDRESS, "as", "65000"),
                    ("neighbor", "add", "2001:db8::1", "as", "65002"),
                    ("global", "rib", "add", "198.51.100.0/24", "community", "65001:7"),
                    ("global", "rib", "-a", "ipv6", "add", "2001:db8:100::/48")):
        done = gobgp(topo.node, *command)
        assert done.returncode == 0, done.stderr
    adopted = assert_adopts(topo.netx, show=["--bgp-api", "127.0.0.1:50051"])
    assert "listenPort: 1790" in adopted and "2001:db8:100::/48" in adopted and "unmanaged" not in adopted

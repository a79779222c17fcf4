"""``netx bgp sync`` against real gobgpd and BIRD: it never replaces or removes a route it does not own, and
learned routes stay in the kernel while gobgpd stops and restarts (graceful restart).

The topology is tests/bgp_topology.py's; route events are watched with ``ip monitor route`` (every removal
is seen, however short-lived), never sampled.
"""

from __future__ import annotations

import signal
import time

import pytest

from netplanx.lab.bgp import gobgp, wait_until
from tests.bgp_topology import ANNOUNCED, ROUTER_ADDRESS, Topology, node_spec, route_events, router_config
from tests.conftest import IS_ROOT, ip

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="needs root: creates network namespaces")
FOREIGN = "10.204.0.0/24"  # the node's own subnet, which BIRD announces too
MORE = [f"198.18.{i}.0/24" for i in range(8)]


def held_back(topo: Topology) -> list[str]:
    """What ``netx show`` reports as held back (on bgp.global, from the sync's record)."""
    shown = topo.netx("show", "-o", "json")
    assert shown.code == 0, shown.err
    status = next(r for r in shown.json if r["address"] == "bgp.global")["meta"].get("status", {})
    return status.get("held_back", [])


def test_sync_holds_back_a_prefix_a_foreign_route_has_and_installs_it_when_that_goes(topo: Topology):
    ip("-n", topo.node, "addr", "add", "10.204.0.11/24", "dev", "eth0")  # 10.204.0.0/24 dev eth0 proto kernel
    topo.bird.reconfigure(router_config(announce=[ANNOUNCED, FOREIGN]))
    topo.converged()
    sync = topo.start_sync()
    try:
        wait_until(lambda: ANNOUNCED in topo.synced_routes(), 5, "the learned route")
        wait_until(lambda: f"held back {FOREIGN}" in topo.sync_log(), 5, "the sync saying it holds the prefix back")
        assert topo.route(FOREIGN)["protocol"] == "kernel"  # not replaced
        assert [entry.split()[0] for entry in held_back(topo)] == [FOREIGN]
        assert "held_back" in topo.netx("show").out
        topo.bird.birdc("disable", "announced")  # BIRD withdraws both: the kernel's route stays
        wait_until(lambda: ANNOUNCED not in topo.synced_routes(), 5, "the withdrawal")
        assert topo.route(FOREIGN)["protocol"] == "kernel"
        assert topo.sync_log().count(f"held back {FOREIGN}") == 1  # said once, not at every change
        topo.bird.birdc("enable", "announced")
        wait_until(lambda: topo.sync_log().count(f"held back {FOREIGN}") == 2, 5, "held back again")
        ip("-n", topo.node, "addr", "del", "10.204.0.11/24", "dev", "eth0")  # the foreign route goes
        route = wait_until(lambda: topo.synced_routes().get(FOREIGN), 5, "the prefix installed once it is free")
        assert route == ROUTER_ADDRESS and f"installed {FOREIGN} via {ROUTER_ADDRESS}" in topo.sync_log()
        assert held_back(topo) == []
        assert gobgp(topo.node, "global", "del", "all").returncode == 0  # BGP stopped, gobgpd stays up
        wait_until(lambda: not topo.synced_routes(), 10, "the routes withdrawn with BGP stopped")
        assert "BGP is stopped in gobgpd: withdrawing 2 route(s)" in topo.sync_log()
    finally:
        sync.stop()


def test_gobgpd_stopped_with_sigterm_never_takes_a_learned_route_away(topo: Topology):
    """gobgpd withdraws every learned path as it shuts down, and comes back empty: the sync must act on
    neither, and pick up the table once gobgpd is configured again and BIRD has sent it (End-of-RIB)."""
    learned = {ANNOUNCED, *MORE}
    topo.bird.reconfigure(router_config(announce=sorted(learned)))
    topo.converged()
    sync = topo.start_sync()
    try:
        wait_until(lambda: learned <= topo.synced_routes().keys(), 5, "the learned routes")
        stale_for = []
        with route_events(topo.node) as events:
            for _iteration in range(6):
                synced = topo.sync_log().count("synced:")
                stopped = time.monotonic()
                topo.restart_gobgpd(signal.SIGTERM)
                topo.netx.apply(node_spec())  # what netx-apply does after a restart: gobgpd's configuration back
                wait_until(lambda n=synced: topo.sync_log().count("synced:") > n, 20, "the sync after the restart")
                stale_for.append(time.monotonic() - stopped)
                assert learned <= topo.synced_routes().keys()
        removed = [line for line in events if line.startswith("Deleted") and line.split()[1] in learned]
        assert removed == [], removed
        assert "withdrew" not in topo.sync_log()
        print(f"stale after SIGTERM until synced again: {', '.join(f'{s:.2f}' for s in stale_for)} s")
    finally:
        sync.stop()


def test_a_prefix_gone_after_a_gobgpd_restart_is_removed_at_end_of_rib_or_after_the_grace(topo: Topology):
    """While gobgpd is away BIRD stops announcing a prefix. With every peer back and its End-of-RIB in, the
    sync removes it at once; with a peer that never comes back, once the restart time has passed."""
    kept, gone, later = ANNOUNCED, MORE[0], MORE[1]
    long_restart = node_spec(peers="[{address: 192.0.2.1, asn: 65000, passive: true, description: router, "
                                   "gracefulRestart: {restartTime: 30}}]", extra="gracefulRestart: {restartTime: 4}")
    topo.bird.reconfigure(router_config(announce=[kept, gone, later]))
    topo.converged(long_restart)
    sync = topo.start_sync()
    try:
        wait_until(lambda: {kept, gone, later} <= topo.synced_routes().keys(), 5, "the learned routes")
        with route_events(topo.node) as events:
            topo.gobgpd.stop(signal.SIGKILL)  # as systemd stops it with examples/systemd/gobgpd.service
            topo.bird.reconfigure(router_config(announce=[kept, later]))
            topo.restart_gobgpd()
            started = time.monotonic()
            topo.netx.apply(long_restart)
            wait_until(lambda: gone not in topo.synced_routes(), 25, "the prefix gone after the restart")
            at_end_of_rib = time.monotonic() - started
        assert at_end_of_rib < 25 and "after gobgpd came back" not in topo.sync_log()  # End-of-RIB, not the 30 s
        assert [line.split()[1] for line in events if line.startswith("Deleted")] == [gone]
        # a second peer that never comes up: no End-of-RIB from every peer, so the restart time decides
        silent = ('[{address: 192.0.2.1, asn: 65000, passive: true, description: router}, '
                  '{address: 192.0.2.77, asn: 65077, passive: true}]')
        spec = node_spec(peers=silent, extra="gracefulRestart: {restartTime: 4}")
        topo.converged(spec)  # the router's session restarts (its restart time changes): before the watch
        wait_until(lambda: {kept, later} <= topo.synced_routes().keys(), 10, "the routes after the change")
        with route_events(topo.node) as events:
            topo.gobgpd.stop(signal.SIGKILL)
            topo.bird.reconfigure(router_config(announce=[kept]))
            topo.restart_gobgpd()
            started = time.monotonic()
            topo.netx.apply(spec)
            wait_until(lambda: "waiting for End-of-RIB from 192.0.2.77:" in topo.sync_log(), 10, "BIRD's End-of-RIB")
            assert later in topo.synced_routes()  # stale, kept: the table may not be complete
            wait_until(lambda: later not in topo.synced_routes(), 15, "the stale route removed after the grace")
            after_grace = time.monotonic() - started
        assert "(4 s after gobgpd came back, without End-of-RIB from 192.0.2.77)" in topo.sync_log()
        assert 4 < after_grace < 15, after_grace  # counted from before the apply: the grace starts during it
        assert [line.split()[1] for line in events if line.startswith("Deleted")] == [later]
        print(f"removed at End-of-RIB {at_end_of_rib:.2f} s, after the 4 s grace {after_grace:.2f} s")
    finally:
        sync.stop()

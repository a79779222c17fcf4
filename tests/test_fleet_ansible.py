"""The same fleet changes pushed by Ansible: ``examples/ansible/rollout.yml`` (``serial: [1, "25%", "100%"]``)
run with ansible-core against a 20-node lab. The scenarios run in order on one fleet
(one xdist worker: see conftest.py)."""

from __future__ import annotations

import itertools
import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netplanx.lab.cluster import NODE_NAMES, Lab, lab_spec
from netplanx.workflow.history import History
from tests.conftest import IS_ROOT, ip_json, snapshot
from tests.test_ansible import play
from tests.traffic import REKEY_WAIT, ping

pytestmark = pytest.mark.fleet

SIZE = 20
HEALTHY = "{ping: 10.244.1.11}"
BROKEN = "{ping: 192.0.2.250, count: 1, timeout: 1}"
WEB_A = "10.244.1.11"
ENDPOINTS = {"web-a": "node-a", "web-t": "node-t"}  # web-t reaches web-a across the whole fleet


@dataclass
class Case:
    lab: Lab

    def spec(self, nodes: list[str], mode: str = "tunnel", keys: dict | None = None,
             checks: tuple[str, ...] = (HEALTHY,)) -> Path:
        endpoints = {e: n for e, n in ENDPOINTS.items() if n in nodes}
        return self.lab.write(lab_spec(self.lab.name, nodes, mode, endpoints, keys=keys, checks=checks))

    def rollout(self, nodes: list[str], spec: Path) -> tuple[int, str, dict[str, dict[str, int]]]:
        """The playbook against ``nodes`` (the inventory: the spec's nodes, in its order)."""
        hosts = {node: {"ansible_connection": "local", "netx_netns": self.lab.netns(node)} for node in nodes}
        inventory = self.lab.workdir / "inventory.json"
        inventory.write_text(json.dumps({"all": {"hosts": hosts, "vars": {
            "netx_spec": str(spec), "netx_state_dir": str(self.lab.state_dir),
            "netx_command": str(Path(sys.executable).with_name("netx")),
            "ansible_python_interpreter": sys.executable}}}))
        return play(self.lab, inventory)

    def applied_at(self, node: str) -> float:
        """When netx last applied a change on ``node`` (its history)."""
        entries = History(self.lab.state_dir, self.lab.netns(node)).entries()
        return max(e.time for e in entries if e.result == "applied")

    def states(self) -> dict[str, dict]:
        return {node: snapshot(self.lab.netns(node)) for node in self.lab.nodes}


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    if not IS_ROOT:
        pytest.skip("needs root: creates network namespaces")
    lab = Lab(f"fa{uuid.uuid4().hex[:6]}", list(NODE_NAMES[:SIZE]), tmp_path_factory.mktemp("fleet-ansible"))
    try:
        yield Case(lab.up())
    finally:
        lab.down()


def waves_in_order(case: Case, nodes: list[str], sizes: list[int]) -> bool:
    """Every node of a wave applied after every node of the wave before it."""
    times, start, cut = [case.applied_at(n) for n in nodes], 0, []
    for size in sizes:
        cut.append(times[start:start + size])
        start += size
    return all(max(before) < min(after) for before, after in itertools.pairwise(cut))


def test_a_change_rolls_out_canary_first_then_in_waves(case):
    members = case.lab.nodes[:19]
    code, output, recap = case.rollout(members, case.spec(members))
    assert code == 0 and all(recap[n]["changed"] == 1 for n in members), output
    assert waves_in_order(case, members, [1, 4, 14])  # 25% of 19 is 4
    assert ping(case.lab.netns("node-s"), WEB_A)


def test_adding_a_node(case):
    nodes = case.lab.nodes
    code, output, recap = case.rollout(nodes, case.spec(nodes))
    assert code == 0 and all(recap[n]["changed"] == 1 for n in nodes), output
    assert waves_in_order(case, nodes, [1, 5, 14])
    assert ping(case.lab.endpoint_netns("web-t"), WEB_A)


def test_a_change_that_breaks_a_health_check_stops_after_the_canary_which_reverts(case):
    nodes, before = case.lab.nodes, case.states()
    code, output, recap = case.rollout(nodes, case.spec(nodes, "native", checks=(HEALTHY, BROKEN)))
    assert code != 0 and recap["node-a"]["failed"] == 1, output
    assert "ping 192.0.2.250 got no answer" in output
    assert all(recap.get(n, {}).get("ok", 0) == 0 and recap.get(n, {}).get("changed", 0) == 0 for n in nodes[1:])
    assert case.states() == before  # the canary rolled itself back; no other node was touched


def test_switching_the_fleet_from_tunnel_to_native(case):
    nodes = case.lab.nodes
    code, output, recap = case.rollout(nodes, case.spec(nodes, "native"))
    assert code == 0 and all(recap[n]["changed"] == 1 for n in nodes), output
    assert waves_in_order(case, nodes, [1, 5, 14])
    route = ip_json(case.lab.netns("node-t"), "route", "show", "10.244.1.0/24")[0]
    assert route["gateway"] == "192.0.2.11" and ping(case.lab.endpoint_netns("web-t"), WEB_A)


def test_rotating_the_wireguard_keys(case):
    """No ping check (see test_fleet_pull): the gate is the verified apply; web-t reaches web-a at the end."""
    nodes = case.lab.nodes
    code, output, _recap = case.rollout(nodes, case.spec(nodes, "native", keys=case.lab.keys(1), checks=()))
    assert code == 0, output
    code, output, recap = case.rollout(nodes, case.spec(nodes, "native", keys=case.lab.keys(2), checks=()))
    assert code == 0 and all(recap[n]["changed"] == 1 for n in nodes), output
    assert waves_in_order(case, nodes, [1, 5, 14])
    assert ping(case.lab.endpoint_netns("web-t"), WEB_A, within=REKEY_WAIT)  # the last handshake may retry

"""A fleet of 20 nodes following one git branch with ``netx pull``: changes roll out canary first, then in
waves; a change that breaks a health check stops after the canary, which reverts; a commit that is not
signed by an allowed key, was tampered with, or rewrites history changes nothing anywhere.

The scenarios run in order on one fleet (one xdist worker: see conftest.py), as a fleet lives: each starts
from where the one before left it. A round is every node's pull at once, as their timers would run it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netplanx.lab.cluster import NODE_NAMES, Lab, lab_spec
from netplanx.lab.fleet import Fleet, Signer, SpecRepository, agent_config
from tests.conftest import IS_ROOT, ip_json, snapshot
from tests.traffic import REKEY_WAIT, ping

pytestmark = pytest.mark.fleet

SIZE = 20
HEALTHY = "{ping: 10.244.1.11}"  # web-a, on the canary: every node reaches it after its apply
BROKEN = "{ping: 192.0.2.250, count: 1, timeout: 1}"  # nobody has this address on the underlay
WEB_A = "10.244.1.11"
ENDPOINTS = {"web-a": "node-a", "web-t": "node-t"}  # web-t reaches web-a across the whole fleet


@dataclass
class Case:
    lab: Lab
    fleet: Fleet
    repo: SpecRepository
    signer: Signer
    intruder: Signer

    def spec(self, nodes: list[str], mode: str = "tunnel", keys: dict | None = None,
             checks: tuple[str, ...] = (HEALTHY,)) -> str:
        endpoints = {e: n for e, n in ENDPOINTS.items() if n in nodes}
        return lab_spec(self.lab.name, nodes, mode, endpoints, keys=keys, checks=checks)

    def states(self) -> dict[str, dict]:
        return {node: snapshot(self.lab.netns(node)) for node in self.lab.nodes}

    def applied(self) -> dict[str, str | None]:
        records = {node: self.lab.state_dir / f"{self.lab.netns(node)}.pull.json" for node in self.lab.nodes}
        return {node: json.loads(path.read_text()).get("commit") if path.exists() else None
                for node, path in records.items()}


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    if not IS_ROOT:
        pytest.skip("needs root: creates network namespaces")
    folder: Path = tmp_path_factory.mktemp("fleet")
    lab = Lab(f"fp{uuid.uuid4().hex[:6]}", list(NODE_NAMES[:SIZE]), folder)
    try:
        lab.up()
        signer, intruder = Signer.make(folder, "ops"), Signer.make(folder, "intruder")
        repo = SpecRepository(folder)
        yield Case(lab, Fleet(lab, agent_config(folder, repo, [signer])), repo, signer, intruder)
    finally:
        lab.down()


def test_a_change_rolls_out_canary_first_then_in_waves(case):
    members = case.lab.nodes[:19]  # node-t is not in the spec yet: it waits to be added
    commit = case.repo.commit(case.spec(members), "19 nodes, tunnel", case.signer)
    rounds = case.fleet.converge(commit, members)
    assert [r.nodes("applied") for r in rounds] == [["node-a"], members[1:5], members[5:]], rounds  # 1, 25%, rest
    assert rounds[0].nodes("waiting") == members[1:] and rounds[1].nodes("waiting") == members[5:]
    assert all(r.outcomes["node-t"]["result"] == "not-a-member" for r in rounds)
    assert {r.outcomes["node-s"].get("wave") for r in rounds} == {3}
    assert ping(case.lab.netns("node-s"), WEB_A)
    assert case.applied() == {**dict.fromkeys(members, commit), "node-t": None}
    status = json.loads(case.lab.netx("node-s", "status", "--config", str(case.fleet.config), "--json").stdout)
    assert status["commit"] == commit and status["drift"] is False and status["signer"].startswith("ops@netx.test")
    known = status["fleet"]  # as node-s fetched them in its last pull: the waves before its own, and itself
    assert set(members[:5]) | {"node-s"} <= set(known)
    assert all((r["commit"], r["result"]) == (commit, "healthy") for r in known.values())


def test_adding_a_node_reaches_it_in_the_last_wave(case):
    nodes = case.lab.nodes
    commit = case.repo.commit(case.spec(nodes), "add node-t", case.signer)
    rounds = case.fleet.converge(commit, nodes)
    assert [r.nodes("applied") for r in rounds] == [["node-a"], nodes[1:6], nodes[6:]]  # 1, 5, 14 of 20
    canary = rounds[0].outcomes["node-a"]
    assert canary["summary"] == {"add": 4, "change": 0, "destroy": 0}  # node-t's routes and tunnel entries
    assert rounds[2].outcomes["node-t"]["summary"]["add"] > 40  # everything, on the new node
    assert ping(case.lab.endpoint_netns("web-t"), WEB_A)
    assert set(case.applied().values()) == {commit}


@pytest.mark.parametrize("attack", ["unsigned", "unknown-signer", "tampered", "rewritten"])
def test_a_refused_commit_changes_nothing_anywhere(case, attack):
    good = case.repo.tip()
    hostile = case.spec(case.lab.nodes[:1])  # would remove 19 nodes' worth of routes everywhere
    if attack == "unsigned":
        case.repo.commit(hostile, "unsigned", None)
    elif attack == "unknown-signer":
        case.repo.commit(hostile, "signed by a key nobody allowed", case.intruder)
    elif attack == "tampered":
        case.repo.forge(hostile)
    else:
        case.repo.commit(hostile, "signed, rewinding history", case.signer, force_from=f"{good}~1")
    before, applied = case.states(), case.applied()
    kind = {"rewritten": "history"}.get(attack, "signature")
    try:
        round_ = case.fleet.pull()
        assert round_.nodes("refused") == case.lab.nodes, round_
        assert {o["kind"] for o in round_.outcomes.values()} == {kind}
        assert case.states() == before and case.applied() == applied
    finally:
        case.repo.rewind(good)  # the next scenario starts from the good tip


def test_a_change_that_breaks_a_health_check_stops_after_the_canary_which_reverts(case):
    before, applied = case.states(), case.applied()
    broken = case.repo.commit(case.spec(case.lab.nodes, "native", checks=(HEALTHY, BROKEN)), "native, with a check "
                              "that cannot pass", case.signer)
    first = case.fleet.pull()
    canary = first.outcomes["node-a"]
    assert canary["result"] == "failed" and canary["kind"] == "apply" and "192.0.2.250" in canary["message"], canary
    assert first.nodes("waiting") == case.lab.nodes[1:]
    second = case.fleet.pull()
    assert second.outcomes["node-a"]["result"] == "skipped"
    assert second.nodes("stopped") == case.lab.nodes[1:]
    assert "the rollout of " + broken[:12] + " is stopped: node-a" in second.outcomes["node-t"]["message"]
    assert case.states() == before and case.applied() == applied  # the canary reverted; nobody else moved
    textfile = case.lab.workdir / "node-t.prom"
    case.lab.netx("node-t", "pull", "--config", str(case.fleet.config), "--textfile", str(textfile))
    assert "netx_pull_waiting 1" in textfile.read_text()
    assert ping(case.lab.endpoint_netns("web-t"), WEB_A)


def test_switching_the_fleet_from_tunnel_to_native(case):
    nodes = case.lab.nodes
    commit = case.repo.commit(case.spec(nodes, "native"), "native routing", case.signer)
    rounds = case.fleet.converge(commit, nodes)
    assert [r.nodes("applied") for r in rounds] == [["node-a"], nodes[1:6], nodes[6:]]
    assert "netx-tunnel" not in {link["ifname"] for link in ip_json(case.lab.netns("node-t"), "link", "show")}
    route = ip_json(case.lab.netns("node-t"), "route", "show", "10.244.1.0/24")[0]
    assert route["gateway"] == "192.0.2.11" and route["dev"] == "eth0"
    assert ping(case.lab.endpoint_netns("web-t"), WEB_A)


def test_rotating_the_wireguard_keys(case):
    """No ping check here: a node's own ping leaves with its underlay address, which the peer's allowed IPs
    (the pod networks) drop; the gate is the verified apply, and web-t reaches web-a at the end."""
    nodes = case.lab.nodes
    first, second = case.lab.keys(1), case.lab.keys(2)  # key files are put on the nodes before the commit
    on = case.repo.commit(case.spec(nodes, "native", keys=first, checks=()), "WireGuard", case.signer)
    assert case.fleet.converge(on, nodes)[-1].nodes("applied", "no-changes") == nodes
    rotated = case.repo.commit(case.spec(nodes, "native", keys=second, checks=()), "rotate every key", case.signer)
    rounds = case.fleet.converge(rotated, nodes)
    assert [r.nodes("applied") for r in rounds] == [["node-a"], nodes[1:6], nodes[6:]]
    device = rounds[0].outcomes["node-a"]
    assert device["summary"] == {"add": 0, "change": 20, "destroy": 0}  # its key and its 19 peers' keys
    assert ping(case.lab.endpoint_netns("web-t"), WEB_A, within=REKEY_WAIT)  # the last handshake may retry
    secrets = [path.read_text().strip() for _public, path in (*first.values(), *second.values())]
    outputs = json.dumps([r.outcomes for r in rounds]) + "".join(
        p.read_text(errors="replace") for p in case.lab.state_dir.rglob("*.json"))
    assert not any(secret in outputs for secret in secrets)

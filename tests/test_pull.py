"""``netx pull`` and ``netx status`` on one namespace, with real git, real SSH signatures and real refusals."""

from __future__ import annotations

import json
import stat

import pytest
from prometheus_client.parser import text_string_to_metric_families

from netplanx.lab.fleet import Signer, SpecRepository, agent_config, git
from netplanx.workflow.agent import load_agent
from netplanx.workflow.waves import FAILED, HEALTHY, Report, batch_sizes, decide, waves
from tests.conftest import ROOT, ip, ip_json, snapshot

SPEC = """\
apiVersion: netx/v1
interfaces:
  - {name: br0, type: bridge, addresses: [10.0.0.1/24]}
routes:
  - {to: 198.51.100.0/24, via: 10.0.0.254}
"""
CHANGED = SPEC.replace("198.51.100.0/24", "203.0.113.0/24")


@pytest.fixture
def source(tmp_path):
    """A spec repository, its signer, a key nobody allowed, and an agent config (no waves: one host)."""
    signer, intruder = Signer.make(tmp_path, "ops"), Signer.make(tmp_path, "intruder")
    repo = SpecRepository(tmp_path, "host.yaml")
    return repo, signer, intruder, agent_config(tmp_path, repo, [signer], waves=None)


def pull(netx, config, *extra):
    result = netx("pull", "--config", str(config), "--json", *extra)
    return result.code, result.json


def metrics(path):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(path.read_text()) for s in family.samples}


def test_agent_config_problems_are_positioned(netx, tmp_path):
    bad = tmp_path / "agent.yaml"
    bad.write_text("source:\n  url: 'ext::sh -c id'\n  path: ../etc/shadow\n  allowedSigners: signers\n"
                   "rollout: {waves: [1, 0%]}\nnode: Node_A\nextra: 1\n")
    result = netx("pull", "--config", str(bad))
    assert result.code == 1
    lines = result.err.splitlines()
    assert f"{bad}:2:8: 'ext::sh -c id' is not a git URL" in lines[0]
    assert any(line.startswith(f"{bad}:3:9: '../etc/shadow' is not a path inside the repository") for line in lines)
    assert any(line.startswith(f"{bad}:4:19: 'signers' is not an absolute path") for line in lines)
    assert any(line.startswith(f"{bad}:5:22: wave size '0%' is not valid") for line in lines)
    assert any(line.startswith(f"{bad}:6:7: name 'Node_A' is not valid") for line in lines)
    assert any(line.startswith(f"{bad}:7:1: unknown key 'extra'") for line in lines)
    assert lines[-1] == "6 config error(s); nothing was changed."


def test_waves_are_cut_as_ansible_serial_and_open_on_earlier_waves_healthy():
    assert batch_sizes(20, [1, "25%", "100%"]) == [1, 5, 14]
    assert batch_sizes(3, [1, "25%", "100%"]) == [1, 1, 1]  # 25% of 3 rounds down to 0: at least 1
    assert batch_sizes(7, [2]) == [2, 2, 2, 1]  # the last size repeats
    nodes = [f"n{i}" for i in range(8)]
    assert waves(nodes, [1, "25%", "100%"]) == [["n0"], ["n1", "n2"], ["n3", "n4", "n5", "n6", "n7"]]
    serial = [1, "25%", "100%"]
    ok = {n: Report("c2", HEALTHY) for n in ("n0", "n1")}
    assert decide(nodes, serial, "n0", "c2", {}).open  # the canary waits for nobody
    gate = decide(nodes, serial, "n5", "c2", ok)
    assert gate.wave == 2 and not gate.open and gate.waiting == ["n2"]
    assert decide(nodes, serial, "n5", "c2", {**ok, "n2": Report("c2", HEALTHY)}).open
    old = decide(nodes, serial, "n5", "c2", {**ok, "n2": Report("c1", HEALTHY)})
    assert old.waiting == ["n2"]  # healthy on another commit is not healthy on this one
    stopped = decide(nodes, serial, "n3", "c2", {**ok, "n2": Report("c2", HEALTHY), "n4": Report("c2", FAILED)})
    assert not stopped.open and list(stopped.failed) == ["n4"]  # any failure stops everyone, same wave too
    assert Report.decode(b"not json") is None and Report.decode(b'{"commit": "c", "result": "ok", "at": 1}') is None


def test_a_signed_commit_is_applied_recorded_and_shown_with_its_drift(netx, netns, source, tmp_path):
    repo, signer, _intruder, config = source
    commit = repo.commit(SPEC, "bridge and a route", signer)
    textfile = tmp_path / "pull.prom"
    code, outcome = pull(netx, config, "--textfile", str(textfile))
    assert code == 0 and outcome["result"] == "applied" and outcome["commit"] == commit, outcome
    assert outcome["signer"].startswith("ops@netx.test (ED25519 key SHA256:") and outcome["writes"] > 0
    assert ip_json(netns, "route", "show", "198.51.100.0/24")
    record = netx.state_dir / f"{netns}.pull.json"
    assert stat.S_IMODE(record.stat().st_mode) == 0o600 and json.loads(record.read_text())["commit"] == commit
    clone = netx.state_dir / "pull" / f"{netns}.git"
    assert git(clone, "config", "core.bare") == "true" and not list(clone.rglob("host.yaml"))  # never checked out
    values = metrics(textfile)
    assert values[("netx_applied_commit_info", (("branch", "main"), ("commit", commit)))] == 1
    assert values[("netx_pull_failures_total", (("kind", "signature"),))] == 0
    assert netx("history", "--json").json[-1]["spec_path"] == f"host.yaml@{commit[:12]}"
    assert pull(netx, config)[1]["result"] == "no-changes"
    status = netx("status", "--config", str(config), "--json")
    assert status.code == 0 and status.json["commit"] == commit and status.json["drift"] is False
    ip("-n", netns, "route", "del", "198.51.100.0/24")
    drifted = netx("status", "--config", str(config))
    assert drifted.code == 2 and f"commit:   {commit}" in drifted.out and "0 changed, 1 missing" in drifted.out
    newer = repo.commit(CHANGED, "another route", signer)
    code, outcome = pull(netx, config)
    assert code == 0 and outcome["commit"] == newer and outcome["previous"] == commit
    assert outcome["summary"] == {"add": 1, "change": 0, "destroy": 0}  # the old route is gone already
    assert ip_json(netns, "route", "show", "203.0.113.0/24")


REFUSALS = ["unsigned", "unknown-signer", "forged", "corrupted", "rewritten", "writable-signers"]


@pytest.mark.parametrize("attack", REFUSALS)
def test_a_refused_commit_changes_nothing(netx, netns, source, tmp_path, attack):
    repo, signer, intruder, config = source
    first = repo.commit(SPEC, "first", signer)
    assert pull(netx, config)[0] == 0
    hostile = "apiVersion: netx/v1\n"  # would remove everything netx made
    kind = "signature"
    if attack == "unsigned":
        repo.commit(hostile, "unsigned", None)
    elif attack == "unknown-signer":
        repo.commit(hostile, "signed by a key nobody allowed", intruder)
    elif attack == "forged":
        repo.forge(hostile)
    elif attack == "corrupted":
        repo.corrupt(repo.commit(CHANGED, "a good commit, then its spec altered on the server", signer))
        kind = "fetch"
    elif attack == "rewritten":
        repo.commit(CHANGED, "second", signer)
        assert pull(netx, config)[0] == 0
        before_rewrite = repo.commit(SPEC, "third", signer, force_from=first)  # signed, but not a descendant
        assert git(repo.origin, "merge-base", "--is-ancestor", first, before_rewrite) == ""
        kind = "history"
    else:
        repo.commit(hostile, "signed, but the allowed signers file is writable by others", signer)
        (tmp_path / "allowed_signers").chmod(0o666)
    applied = json.loads((netx.state_dir / f"{netns}.pull.json").read_text())["commit"]
    before = snapshot(netns)
    textfile = tmp_path / "pull.prom"
    code, outcome = pull(netx, config, "--textfile", str(textfile))
    assert code == 1 and outcome["result"] == "refused" and outcome["kind"] == kind, outcome
    assert outcome["message"].endswith("nothing was changed")
    assert snapshot(netns) == before
    assert json.loads((netx.state_dir / f"{netns}.pull.json").read_text())["commit"] == applied
    assert metrics(textfile)[("netx_pull_failures_total", (("kind", kind),))] == 1
    assert metrics(textfile)[("netx_pull_last_failure_timestamp_seconds", ())] > 0
    status = netx("status", "--config", str(config), "--json").json
    assert status["commit"] == applied and status["last_failure"]["kind"] == kind


def test_refusals_say_why(netx, source):
    repo, _signer, intruder, config = source
    repo.commit(SPEC, "unsigned", None)
    assert "is not signed" in pull(netx, config)[1]["message"]
    repo.commit(SPEC, "intruder", intruder)
    assert "carries a key that is not in" in pull(netx, config)[1]["message"]
    repo.forge(CHANGED)
    assert "a signature that does not verify" in pull(netx, config)[1]["message"]


def test_a_failed_commit_is_reverted_and_not_tried_again_until_a_new_one(netx, netns, source):
    repo, signer, _intruder, config = source
    first = repo.commit(SPEC, "first", signer)
    assert pull(netx, config)[0] == 0
    before = snapshot(netns)
    broken = repo.commit(CHANGED + "checks:\n  - {ping: 10.0.0.254, count: 1, timeout: 1}\n", "unreachable", signer)
    code, outcome = pull(netx, config)
    assert code == 1 and outcome["result"] == "failed" and outcome["kind"] == "apply", outcome
    assert "post-condition" in outcome["message"] and snapshot(netns) == before  # rolled back
    code, outcome = pull(netx, config)
    assert code == 1 and outcome["result"] == "skipped" and outcome["commit"] == broken
    assert netx("status", "--config", str(config), "--json").json["commit"] == first
    fixed = repo.commit(CHANGED, "without the check", signer)
    code, outcome = pull(netx, config)
    assert code == 0 and outcome["result"] == "applied" and outcome["commit"] == fixed


def test_offline_applies_the_commit_applied_last_again(netx, netns, source):
    repo, signer, _intruder, config = source
    commit = repo.commit(SPEC, "first", signer)
    assert pull(netx, config)[0] == 0
    ip("-n", netns, "link", "del", "br0")  # as after a reboot
    repo.origin.rename(repo.origin.with_name("gone.git"))  # and the repository out of reach
    assert pull(netx, config)[1]["kind"] == "fetch"
    code, outcome = pull(netx, config, "--offline")
    assert code == 0 and outcome["result"] == "applied" and outcome["commit"] == commit, outcome
    assert ip_json(netns, "route", "show", "198.51.100.0/24")


def test_the_example_agent_config_is_valid():
    agent = load_agent(ROOT / "examples" / "agent.yaml")
    assert agent.source.path == "clusters/prod.yaml" and agent.rollout.waves == [1, "25%", "100%"]
    assert agent.status_url == agent.source.url and agent.node is None

"""Operating netx: drift metrics, history and rollback, doctor, and the systemd units."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, ip, ip_json

SPEC = """\
apiVersion: netx/v1
interfaces:
  - {name: br0, type: bridge, mtu: 1400, addresses: [10.0.0.1/24]}
routes:
  - {to: 198.51.100.0/24, via: 10.0.0.254}
  - {to: 203.0.113.0/24, via: 10.0.0.254}
"""


def metrics(path: Path) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_drift_is_classified_and_published_for_node_exporter(netx, netns, tmp_path):
    netx.apply(SPEC)
    textfile = tmp_path / "netx.prom"
    clean = netx("drift", "--textfile", str(textfile), spec=SPEC)
    assert clean.code == 0 and clean.out.startswith("drift: 0 changed, 0 missing, 0 extra")
    values = metrics(textfile)
    assert values[("netx_drift", ())] == 0 and values[("netx_last_apply_success", ())] == 1
    assert values[("netx_last_apply_success_timestamp_seconds", ())] > 0
    assert values[("netx_plan_duration_seconds", ())] > 0
    # someone changes the MTU, deletes a route netx made and adds one of their own
    ip("-n", netns, "link", "set", "br0", "mtu", "1300")
    ip("-n", netns, "route", "del", "203.0.113.0/24")
    ip("-n", netns, "route", "add", "192.0.2.0/24", "dev", "br0", "proto", "static")
    drifted = netx("drift", "--textfile", str(textfile), spec=SPEC)
    assert drifted.code == 2 and "1 changed, 1 missing" in drifted.out
    values = metrics(textfile)
    assert values[("netx_drift", ())] == 1
    assert values[("netx_drift_resources", (("class", "changed"), ("kind", "link")))] == 1
    assert values[("netx_drift_resources", (("class", "missing"), ("kind", "route")))] == 1
    assert values[("netx_drift_resources", (("class", "unmanaged"), ("kind", "route")))] == 1
    extra = netx("drift", "--json", spec=SPEC.replace("  - {to: 198.51.100.0/24, via: 10.0.0.254}\n", ""))
    assert extra.code == 2 and {"kind": "route", "class": "extra", "count": 1} in extra.json["resources"]


def test_history_and_rollback_round_trip(netx, netns):
    first = SPEC
    second = SPEC.replace("mtu: 1400", "mtu: 1280").replace("203.0.113.0/24", "192.0.2.128/25")
    netx.apply(first)
    netx.apply(first)  # no changes: recorded, the same spec
    netx.apply(second)
    failed = netx("apply", "--auto-approve", spec=second.replace("mtu: 1280", "mtu: 1200"),
                  env={"NETX_FAILPOINT_STEP": "1"})
    assert failed.code == 1
    entries = netx("history", "--json").json
    assert [e["result"] for e in entries] == ["applied", "no-changes", "applied", "rolled-back"]
    assert entries[0]["spec_digest"] == entries[1]["spec_digest"] != entries[2]["spec_digest"]
    assert all(e["user"] for e in entries) and entries[2]["summary"] == {"add": 1, "change": 1, "destroy": 1}
    table = netx("history").out.splitlines()
    assert len(table) == 5 and "rolled-back" in table[-1]
    rolled = netx("rollback", "--auto-approve")
    assert rolled.code == 0, rolled.err
    assert "Rolling back #3" in rolled.out  # the last apply that changed something
    assert ip_json(netns, "link", "show", "br0")[0]["mtu"] == 1400
    assert netx.plan(first)["changes"] == []
    assert netx("history", "--json").json[-1]["spec_path"] == "(rollback of #3)"


def test_a_plan_recorded_as_records_or_by_an_earlier_netx_rolls_back_alike(netx, netns):
    """The history keeps each apply's plan as records (tuples: ~10x faster to write than its JSON at 10,000
    changes); one recorded by an earlier netx holds the netx-plan/1 document. Both give the plan that was applied,
    and a rollback of either restores the host."""
    import gzip
    import marshal

    from netplanx.engine.plan import Plan

    netx.apply(SPEC)
    netx.apply(SPEC.replace("mtu: 1400", "mtu: 1280").replace("203.0.113.0/24", "192.0.2.128/25"))
    [path] = (netx.state_dir / "history").glob(f"*/{2:08d}.plan.marshal.gz")
    records = marshal.loads(gzip.decompress(path.read_bytes()))
    plan = Plan.from_records(records)
    assert {(c.address, c.action) for c in plan.changes} == {
        ("link.br0", "update"), ("route.main.203.0.113.0/24", "delete"), ("route.main.192.0.2.128/25", "create")}
    assert plan.to_records() == records
    assert Plan.from_json(plan.to_json()).to_json() == plan.to_json()
    path.write_bytes(gzip.compress(marshal.dumps(plan.to_json())))  # as an earlier netx recorded it
    assert netx("rollback", "--auto-approve").code == 0
    assert ip_json(netns, "link", "show", "br0")[0]["mtu"] == 1400
    assert netx.plan(SPEC)["changes"] == []


def test_rollback_restores_what_the_spec_did_not_set_and_stacks(netx, netns):
    """The first spec leaves br0's MTU alone; the second sets it. Rolling back restores the MTU it had
    (applying the first spec again would leave 1300). A second rollback goes one apply further back."""
    bridge = "apiVersion: netx/v1\ninterfaces:\n  - {name: br0, type: bridge}\n"
    netx.apply(bridge)
    mtu = ip_json(netns, "link", "show", "br0")[0]["mtu"]
    netx.apply(bridge.replace("type: bridge}", "type: bridge, mtu: 1300}"))
    assert netx("rollback", "--auto-approve").code == 0
    assert ip_json(netns, "link", "show", "br0")[0]["mtu"] == mtu
    assert netx("rollback", "--auto-approve").code == 0  # undoes the first apply: br0 goes
    assert not ip("-n", netns, "link", "show", "br0", check=False)
    result = netx("rollback", "--auto-approve")
    assert result.code == 1 and "nothing to roll back" in result.err


def test_rollback_without_history_is_a_clear_error(netx):
    result = netx("rollback", "--auto-approve")
    assert result.code == 1 and "nothing to roll back" in result.err


def test_doctor_names_what_is_missing_and_how_to_fix_it():
    run = subprocess.run([sys.executable, "-m", "netplanx", "doctor"], capture_output=True, text=True, cwd=ROOT)
    lines = run.stdout.splitlines()
    assert any(line.strip().startswith("kernel: veth links") and " ok " in line for line in lines)
    haproxy = next(line for line in lines if "HAProxy (L7 policy rules)" in line)  # the policy feature's
    assert (" ok " in haproxy) == (shutil.which("haproxy") is not None)
    assert any("nftables (L7 policy redirect)" in line for line in lines)
    geneve = next(i for i, line in enumerate(lines) if "kernel: geneve links" in line)
    if "kernel lacks geneve" in lines[geneve]:  # this machine: reported, with what to do
        assert lines[geneve + 1].strip().startswith("fix: ")
    assert run.returncode == (0 if run.stdout.rstrip().endswith("netx can run here.") else 1)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_units_verify(tmp_path):
    """The units as shipped, with ExecStart pointed at this checkout's netx (verify checks the binary)."""
    netx = Path(sys.executable).with_name("netx")
    units = []
    for unit in sorted((ROOT / "examples" / "systemd").iterdir()):
        text = unit.read_text().replace("/opt/netx/.venv/bin/netx", str(netx))
        (tmp_path / unit.name).write_text(text)
        units.append(str(tmp_path / unit.name))
    assert {Path(u).name for u in units} == {"netx-apply.service", "netx-drift.service", "netx-drift.timer",
                                             "gobgpd.service", "netx-bgp-sync.service", "netx-pull.service",
                                             "netx-pull.timer"}
    run = subprocess.run(["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True)
    assert run.returncode == 0 and run.stderr.strip() == "", run.stderr
    apply_unit = (tmp_path / "netx-apply.service").read_text()
    assert "Before=network.target network-online.target" in apply_unit and "--auto-approve" in apply_unit
    pull_unit = (tmp_path / "netx-pull.service").read_text()
    assert "pull --config /etc/netx/agent.yaml --textfile" in pull_unit and "KillMode=process" in pull_unit


def test_the_history_numbers_on_from_its_file_names_and_keeps_the_latest(tmp_path, monkeypatch):
    """Numbering reads file names, not every entry (up to KEEP of them at each apply); an unreadable entry's number is
    not given again, and entries beyond KEEP go with their plans."""
    from netplanx.workflow import history

    monkeypatch.setattr(history, "KEEP", 3)
    kept = history.History(tmp_path, "host")

    def record() -> int:
        return kept.record(netns=None, node="", spec_path="spec.yaml", spec_digest="d" * 64, spec_text="x",
                           summary={"add": 0, "change": 0, "destroy": 0}, result="no-changes").number

    assert [record() for _ in range(5)] == [1, 2, 3, 4, 5]
    assert [e.number for e in kept.entries()] == [2, 3, 4, 5]
    (kept.folder / "00000005.json").write_text("{not json")
    assert record() == 6
    assert [e.number for e in kept.entries()] == [3, 4, 6]  # 2 pruned; 5 unreadable

"""Network policy with real packets in a three-node lab over the VXLAN overlay.

One lab (module scope) serves every test here: a connectivity matrix of TCP, UDP and ICMP probes run
concurrently, flows, counters, drift, a change under a live connection, idempotence and the cleanup.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from netplanx.features.policy.maps import map_path, scope_dir
from netplanx.lab.cluster import Lab, lab_spec
from netplanx.system import netns as namespaces
from tests.conftest import IS_ROOT, assert_adopts, ip
from tests.policy_traffic import echo_servers, probe_all

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="needs root: creates network namespaces")

NODES = ["node-a", "node-b", "node-c"]
ENDPOINTS = {"web-a": "node-a", "client-a": "node-a", "client-b": "node-b", "other-b": "node-b", "db-c": "node-c"}
ADDRESS = {"web-a": "10.244.1.11", "client-a": "10.244.1.12", "client-b": "10.244.2.11", "other-b": "10.244.2.12",
           "db-c": "10.244.3.11"}
ADDRESS6 = {"web-a": "fd00:244:0:1::b", "client-a": "fd00:244:0:1::c", "client-b": "fd00:244:0:2::b",
            "other-b": "fd00:244:0:2::c", "db-c": "fd00:244:0:3::b"}  # lab_spec's dual stack
WORLD = "192.0.2.100"  # a host on the underlay, outside the cluster
POLICIES = """policies:
  - name: web
    selector: {app: web}
    ingress:
      - from: [{labels: {app: client}}]
      - from: [{entity: host}]
      - from: [{cidr: 192.0.2.96/28}]
        ports: [{port: 9090}]
    ingressDeny:
      - ports: [{port: 8081}]
    egress:
      - to: [{labels: {app: db}}]
        ports: [{port: 5432}, {port: 5353, protocol: udp}]
      - to: [{cidr: 192.0.2.96/28}]
        ports: [{port: 7070}]
  - name: db
    selector: {app: db}
    ingress:
      - from: [{labels: {app: web}}]
        ports: [{port: 5432}, {port: 5353, protocol: udp}]
      - from: [{entity: cluster}]
        ports: [{protocol: icmp}]
"""


def spec(policies: str = POLICIES) -> str:
    return lab_spec(LAB_NAME, NODES, endpoints=ENDPOINTS) + policies


LAB_NAME = f"lp{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    made = Lab(LAB_NAME, NODES, tmp_path_factory.mktemp("policy-lab"))
    try:
        made.up()
        ip("-n", made.underlay, "addr", "add", f"{WORLD}/24", "dev", "ul0")
        ip("-n", made.underlay, "route", "add", "10.244.0.0/16", "via", "192.0.2.11")
        made.apply(spec())
        servers = [(made.endpoint_netns(e), address[e], [8080, 8081, 9090, 5432], [8080, 5353])
                   for e in ENDPOINTS for address in (ADDRESS, ADDRESS6)]
        servers.append((made.underlay, WORLD, [7070, 7071], []))
        with echo_servers(servers):
            yield made
    finally:
        made.down()
        for node in NODES:
            subprocess.run(["rm", "-rf", f"/sys/fs/bpf/netx/{made.netns(node)}"], check=False)


def ns(lab: Lab, source: str) -> str:
    """A probe's namespace: an endpoint, a node (host traffic) or the underlay ('world')."""
    if source == "world":
        return lab.underlay
    return lab.netns(source) if source in NODES else lab.endpoint_netns(source)


# (source, destination, port, protocol, expected, what it shows)
MATRIX = [
    ("client-a", "web-a", 8080, "tcp", "allow", "label selector, same node"),
    ("client-b", "web-a", 8080, "tcp", "allow", "label selector, other node over the overlay"),
    ("client-b", "web-a", 8080, "udp", "allow", "a rule without ports allows every protocol"),
    ("client-b", "web-a", 0, "icmp", "allow", "icmp"),
    ("client-b", "web-a", 8081, "tcp", "deny", "deny overrides allow"),
    ("client-a", "web-a", 8081, "tcp", "deny", "deny overrides allow, same node"),
    ("other-b", "web-a", 8080, "tcp", "deny", "default deny: not a client"),
    ("other-b", "web-a", 0, "icmp", "deny", "default deny, icmp"),
    ("node-a", "web-a", 8080, "tcp", "allow", "entity host"),
    ("node-b", "web-a", 8080, "tcp", "deny", "a remote node is not the host"),
    ("world", "web-a", 9090, "tcp", "allow", "CIDR on its port"),
    ("world", "web-a", 8080, "tcp", "deny", "CIDR on another port"),
    ("web-a", "db-c", 5432, "tcp", "allow", "egress by labels and the peer's ingress, across nodes"),
    ("web-a", "db-c", 5353, "udp", "allow", "egress udp"),
    ("web-a", "db-c", 8080, "tcp", "deny", "egress default deny on other ports"),
    ("web-a", "client-b", 8080, "tcp", "deny", "egress default deny towards an open endpoint"),
    ("web-a", WORLD, 7070, "tcp", "allow", "egress to a CIDR"),
    ("web-a", WORLD, 7071, "tcp", "deny", "egress to a CIDR, other port"),
    ("client-a", "db-c", 5432, "tcp", "deny", "db accepts 5432 from web only"),
    ("client-a", "db-c", 0, "icmp", "allow", "entity cluster"),
    ("world", "db-c", 0, "icmp", "deny", "world is not in the cluster"),
    ("other-b", "client-a", 8080, "tcp", "allow", "unselected endpoints are open"),
    ("client-a", "other-b", 8080, "udp", "allow", "unselected endpoints are open, udp"),
    ("db-c", "client-b", 8080, "tcp", "allow", "db's egress is not selected: open"),
    ("client-b", "web-a6", 8080, "tcp", "allow", "IPv6: label selector across nodes"),
    ("client-b", "web-a6", 8081, "tcp", "deny", "IPv6: deny overrides allow"),
    ("other-b", "web-a6", 8080, "tcp", "deny", "IPv6: default deny"),
    ("client-a", "web-a6", 0, "icmp", "allow", "IPv6: icmp covers ICMPv6"),
    ("web-a", "db-c6", 5432, "tcp", "allow", "IPv6: egress by labels"),
    ("web-a", "client-b6", 8080, "udp", "deny", "IPv6: egress default deny"),
    ("other-b", "client-a6", 8080, "udp", "allow", "IPv6: open endpoints"),
]


def address_of(name: str) -> str:
    """An endpoint's IPv4 address, its IPv6 one for ``NAME6``, or the address given."""
    if name.endswith("6") and name[:-1] in ADDRESS6:
        return ADDRESS6[name[:-1]]
    return ADDRESS.get(name, name)


def run_matrix(lab: Lab, rows: list[tuple]) -> list[str]:
    cases = [(ns(lab, s), address_of(d), port, protocol) for s, d, port, protocol, *_rest in rows]
    results = probe_all(cases)
    return [f"{s} -> {d} {protocol}/{port}: expected {want}, got {got} ({why})"
            for (s, d, port, protocol, want, why), got in zip(rows, results, strict=True) if got != want]


def plan_changes(lab: Lab, text: str, node: str) -> dict[str, str]:
    return {c["address"]: c["action"] for c in lab.plan(text, node)["changes"]}


def test_connectivity_matrix_and_idempotence(lab):
    assert run_matrix(lab, MATRIX) == []
    for node in NODES:
        assert plan_changes(lab, spec(), node) == {}, node
        adopted = assert_adopts(lab, node)  # policies cannot be: their datapath is left unmanaged
        assert "# policies are not adopted" in adopted and "policy.*" in adopted and "ipcache.*" in adopted


def watch_one(lab: Lab, *filters: str) -> subprocess.Popen:
    """``netx flows`` on node-a printing the first flow that passes ``filters``, once it is listening."""
    command = [sys.executable, "-m", "netplanx", "flows", "--netns", lab.netns("node-a"), "--json", "--count", "1",
               "--duration", "20", *filters]
    env = {**os.environ, "NETX_STATE_DIR": str(lab.state_dir)}
    watcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert watcher.stderr is not None
    assert "watching" in watcher.stderr.readline()
    return watcher


def test_a_port_range_allows_its_first_last_and_middle_ports_only(lab):
    """other-b may reach web-a on 8000-9023 (five map entries), but not just outside, and not on 8081, which a
    deny rule for everyone takes out of the range."""
    ranged = POLICIES.replace("""      - from: [{entity: host}]
""", """      - from: [{entity: host}]
      - from: [{labels: {app: other}}]
        ports: [{port: 8000, endPort: 9023}]
""")
    plan = lab.plan(spec(ranged), "node-a")
    change = next(c for c in plan["changes"] if c["address"] == "policy.web-a")
    assert change["after"]["attrs"]["ingress"]["app=other"] == ["tcp/8000-9023 allow by web/ingress[2]",
                                                                 "tcp/8081 deny by web/ingressDeny[0]"]
    assert change["after"]["attrs"]["entries"] - change["before"]["attrs"]["entries"] == 5 + 1  # blocks, overlap
    lab.apply(spec(ranged))
    try:
        ports = [7999, 8000, 8500, 9023, 9024]
        with echo_servers([(lab.endpoint_netns("web-a"), address["web-a"], ports, [])
                           for address in (ADDRESS, ADDRESS6)]):
            assert run_matrix(lab, [
                ("other-b", "web-a", 7999, "tcp", "deny", "just below the range"),
                ("other-b", "web-a", 8000, "tcp", "allow", "first port of the range"),
                ("other-b", "web-a", 8080, "tcp", "allow", "in the range"),
                ("other-b", "web-a", 8081, "tcp", "deny", "in the range, denied for everyone"),
                ("other-b", "web-a", 8500, "tcp", "allow", "middle of the range"),
                ("other-b", "web-a", 9023, "tcp", "allow", "last port of the range"),
                ("other-b", "web-a", 9024, "tcp", "deny", "just above the range"),
                ("other-b", "web-a6", 9023, "tcp", "allow", "IPv6: last port of the range"),
                ("other-b", "web-a6", 9024, "tcp", "deny", "IPv6: just above the range"),
                ("other-b", "web-a", 8080, "udp", "deny", "the range is tcp")]) == []
    finally:
        lab.apply(spec())


def test_flows_show_drops_with_the_deciding_rule_and_counters_count(lab):
    flows = []
    for filters, row in (
            (["--verdict", "dropped", "--endpoint", "other-b"], ("other-b", "web-a", 8080, "tcp", "deny", "default")),
            (["--verdict", "dropped", "--policy", "web"], ("client-b", "web-a", 8081, "tcp", "deny", "deny rule"))):
        watcher = watch_one(lab, *filters)
        try:
            assert run_matrix(lab, [row]) == []
            out, err = watcher.communicate(timeout=30)
        finally:
            watcher.kill()
        assert out, err
        flows.append(json.loads(out))
    assert [(f["source"], f["destination"], f["destination_port"], f["verdict"], f["rule"]) for f in flows] == [
        ("other-b", "web-a", 8080, "dropped", "default-deny"),
        ("client-b", "web-a", 8081, "dropped", "web/ingressDeny[0]")]
    assert flows[0]["endpoint"] == "web-a" and flows[0]["direction"] == "ingress"
    watcher = watch_one(lab, "--verdict", "dropped", "--endpoint", "other-b")
    try:  # ICMP has no ports: the JSON says so, and gives the echo identifier on its own
        assert run_matrix(lab, [("other-b", "web-a", 0, "icmp", "deny", "default deny, icmp")]) == []
        out, _err = watcher.communicate(timeout=30)
    finally:
        watcher.kill()
    echo = json.loads(out)
    assert (echo["protocol"], echo["source_port"], echo["destination_port"]) == ("icmp", None, None)
    assert isinstance(echo["icmp_id"], int)
    watcher = watch_one(lab, "--aggregate", "60", "--endpoint", "client-b")  # the count ends the interval
    try:
        assert run_matrix(lab, [("client-b", "web-a", 8080, "udp", "allow", "aggregated")]) == []
        out, _err = watcher.communicate(timeout=30)
    finally:
        watcher.kill()
    folded = json.loads(out)
    assert (folded["source"], folded["destination"], folded["port"], folded["verdict"], folded["flows"]) == (
        "client-b", "web-a", "udp/8080", "allowed", 1)
    shown = lab.netx("node-a", "show", "policies", "-o", "json")
    rules = {r["rule"]: r for r in json.loads(shown.stdout)["rules"]}
    assert rules["web/ingressDeny[0]"]["packets"] >= 1 and rules["web/ingress[0]"]["packets"] >= 1
    assert rules["web/ingress[0]"]["bytes"] > rules["web/ingress[0]"]["packets"] * 40


def ip_json_link(lab: Lab, node: str, device: str) -> dict:
    return json.loads(ip("-n", lab.netns(node), "-j", "link", "show", device))[0]


def pinned(lab: Lab, node: str, name: str) -> str:
    return str(map_path(lab.netns(node), name))


def bpftool_dump(path: str) -> list[dict]:
    return json.loads(subprocess.run(["bpftool", "map", "dump", "pinned", path, "-j"], capture_output=True,
                                     text=True, check=True).stdout)


def test_a_hand_edited_map_entry_is_drift_and_apply_repairs_it(lab):
    path = pinned(lab, "node-a", "policy")
    before = bpftool_dump(path)
    allowing = next(e for e in before if e["value"][0] == "0x00" and e["value"][4:] != ["0x01", "0x00", "0x00",
                                                                                      "0x00"])
    denied = ["0x01", *allowing["value"][1:]]
    subprocess.run(["bpftool", "map", "update", "pinned", path, "key", "hex", *[b[2:] for b in allowing["key"]],
                    "value", "hex", *[b[2:] for b in denied]], check=True)
    changes = plan_changes(lab, spec(), "node-a")
    assert list(changes.values()) == ["update"] and next(iter(changes)).startswith("policy."), changes
    lab.apply(spec(), ["node-a"])
    assert sorted(map(json.dumps, bpftool_dump(path))) == sorted(map(json.dumps, before))
    assert plan_changes(lab, spec(), "node-a") == {}
    subprocess.run(["tc", "-n", lab.netns("node-a"), "filter", "del", "dev", "ep-web-a", "egress", "pref", "100"],
                   check=True)  # web-a's ingress policy is off: drift too
    plan = lab.plan(spec(), "node-a")
    assert [(c["address"], c["before"]["attrs"]["attached"]) for c in plan["changes"]] == [("policy.web-a", False)]
    lab.apply(spec(), ["node-a"])
    shown = subprocess.run(["tc", "-n", lab.netns("node-a"), "filter", "show", "dev", "ep-web-a", "egress"],
                           capture_output=True, text=True).stdout
    assert "pref 100" in shown and "netx-pol-ingress" in shown


def test_egress_policy_sees_the_backend_the_load_balancer_chose(lab):
    """tc chaining: on the client's veth the LB (prio 100) DNATs before the policy (prio 200) judges, so an
    egress policy allowing the backend allows the service; the VIP itself is not an allowed peer."""
    with_service = POLICIES + """  - name: other-out
    selector: {app: other}
    egress:
      - to: [{labels: {app: client}}]
        ports: [{port: 8080}]
services:
  - {name: svc, vip: 10.96.0.10, port: 80, backends: [{endpoint: client-a, port: 8080}]}
"""
    lab.apply(spec(with_service))
    try:
        assert run_matrix(lab, [
            ("other-b", "10.96.0.10", 80, "tcp", "allow", "the VIP, DNATed to client-a:8080 before the policy"),
            ("other-b", "client-a", 8080, "tcp", "allow", "the backend directly"),
            ("other-b", "client-a", 8081, "tcp", "deny", "another port of the backend"),
            ("other-b", "db-c", 5432, "tcp", "deny", "egress default deny")]) == []
        filters = subprocess.run(["tc", "-n", lab.netns("node-b"), "filter", "show", "dev", "ep-other-b", "ingress"],
                                 capture_output=True, text=True).stdout
        assert filters.index("pref 100") < filters.index("pref 200") and "netx-pol-egress" in filters
    finally:
        lab.apply(spec())


def filter_ids(lab: Lab, node: str, device: str) -> dict[str, int]:
    found = {}
    for hook in ("ingress", "egress"):
        shown = subprocess.run(["tc", "-n", lab.netns(node), "-j", "filter", "show", "dev", device, hook],
                               capture_output=True, text=True, check=True).stdout
        for entry in json.loads(shown or "[]"):
            options = entry.get("options") or {}
            if options.get("bpf_name", "").startswith("netx-pol"):
                found[options["bpf_name"]] = options["prog"]["id"]
    return found


def test_a_new_program_version_replaces_the_filters_in_place(lab, tmp_path):
    source = tmp_path / "bpf"
    shutil.copytree(Path(__file__).resolve().parents[1] / "bpf", source)
    (source / "policy.c").write_text((source / "policy.c").read_text() + "\n/* the next version */\n")
    env = {**os.environ, "NETX_STATE_DIR": str(lab.state_dir), "NETX_BPF_DIR": str(source)}
    path = lab.write(spec(), "upgrade.yaml")

    def netx(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "netplanx", *args, str(path), "--node", "node-a", "--netns",
                               lab.netns("node-a")], capture_output=True, text=True, env=env, timeout=120)

    before = filter_ids(lab, "node-a", "ep-web-a")
    connection = namespaces.call_inside(lab.endpoint_netns("client-b"),
                                        lambda: socket.create_connection((ADDRESS["web-a"], 8080), timeout=2))
    try:
        connection.sendall(b"one")
        assert connection.recv(10) == b"one"
        planned = json.loads(netx("plan", "--json").stdout)
        assert [(c["address"], c["action"]) for c in planned["changes"]] == [("policydp.policy", "update")]
        done = netx("apply", "--auto-approve")
        assert done.returncode == 0, done.stderr
        after = filter_ids(lab, "node-a", "ep-web-a")
        assert set(after) == set(before) == {"netx-pol-egress", "netx-pol-ingress"}
        assert all(after[name] != before[name] for name in before)  # new programs, same filters
        assert len(program_versions(lab)) == 1  # the apply is final: the previous version is gone
        connection.sendall(b"two")  # conntrack kept: the maps stayed
        assert connection.recv(10) == b"two"
        assert run_matrix(lab, [("other-b", "web-a", 8080, "tcp", "deny", "still enforced"),
                                ("client-a", "web-a", 8080, "tcp", "allow", "still allowed")]) == []
    finally:
        connection.close()
    lab.apply(spec(), ["node-a"])  # back to this version
    assert plan_changes(lab, spec(), "node-a") == {}


def program_versions(lab: Lab, node: str = "node-a") -> set[str]:
    return {p.name for p in scope_dir(lab.netns(node)).glob("prog-*")}


@pytest.mark.parametrize("undo", ["failed-step", "not-confirmed"])
def test_an_undone_upgrade_attaches_the_previous_programs_again(lab, tmp_path, undo):
    """A new program version swapped in on every endpoint, then the apply fails at its next step (or is not
    confirmed): the previous programs are attached again in place and a connection keeps going."""
    source = tmp_path / "bpf"
    shutil.copytree(Path(__file__).resolve().parents[1] / "bpf", source)
    (source / "policy.c").write_text((source / "policy.c").read_text() + "\n/* the next version */\n")
    env = {**os.environ, "NETX_STATE_DIR": str(lab.state_dir), "NETX_BPF_DIR": str(source)}
    changed = POLICIES.replace("      - ports: [{port: 8081}]", "      - ports: [{port: 8081}, {port: 9090}]")
    path = lab.write(spec(changed), "undone.yaml")

    def netx(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "netplanx", *args, str(path), "--node", "node-a", "--netns",
                               lab.netns("node-a")], capture_output=True, text=True, env={**env, **extra}, timeout=120)

    before, versions = filter_ids(lab, "node-a", "ep-web-a"), program_versions(lab)
    entries = sorted(map(json.dumps, bpftool_dump(pinned(lab, "node-a", "policy"))))
    planned = json.loads(netx("plan", "--json").stdout)["steps"]
    assert [s["address"] for s in planned] == ["policydp.policy", "policy.web-a"]
    connection = namespaces.call_inside(lab.endpoint_netns("client-b"),
                                        lambda: socket.create_connection((ADDRESS["web-a"], 8080), timeout=2))
    try:
        connection.sendall(b"one")
        assert connection.recv(10) == b"one"
        if undo == "failed-step":  # step 1 swapped every endpoint's filters to the new programs
            done = netx("apply", "--auto-approve", NETX_FAILPOINT_STEP="2")
            assert done.returncode == 1 and "back where it was (verified)" in done.stderr, done.stderr
        else:
            done = netx("apply", "--auto-approve", "--confirm-timeout", "1")
            assert done.returncode == 1 and "not confirmed within 1s: reverted" in done.stderr, done.stderr
        assert filter_ids(lab, "node-a", "ep-web-a") == before
        assert sorted(map(json.dumps, bpftool_dump(pinned(lab, "node-a", "policy")))) == entries
        connection.sendall(b"two")
        assert connection.recv(10) == b"two"
    finally:
        connection.close()
    assert program_versions(lab) == versions
    assert plan_changes(lab, spec(), "node-a") == {}


def test_a_failed_apply_rolls_the_policy_map_back(lab):
    before = bpftool_dump(pinned(lab, "node-a", "policy"))
    changed = spec(POLICIES.replace("      - ports: [{port: 8081}]", "      - ports: [{port: 8081}, {port: 9090}]")
                   + "  - {name: lock-clients, selector: {app: client}, ingress: []}\n")
    path = lab.write(changed, "failing.yaml")
    env = {**os.environ, "NETX_STATE_DIR": str(lab.state_dir), "NETX_FAILPOINT_STEP": "2"}
    done = subprocess.run([sys.executable, "-m", "netplanx", "apply", str(path), "--auto-approve", "--node", "node-a",
                           "--netns", lab.netns("node-a")], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1 and "rolled back" in (done.stdout + done.stderr).lower(), done.stdout + done.stderr
    assert sorted(map(json.dumps, bpftool_dump(pinned(lab, "node-a", "policy")))) == \
        sorted(map(json.dumps, before))
    assert plan_changes(lab, spec(), "node-a") == {}


def test_policy_change_keeps_an_allowed_connection_and_cleanup_leaves_nothing(lab):
    connection = namespaces.call_inside(lab.endpoint_netns("client-b"),
                                        lambda: socket.create_connection((ADDRESS["web-a"], 8080), timeout=2))
    try:
        connection.sendall(b"one")
        assert connection.recv(10) == b"one"
        changed = POLICIES.replace("      - ports: [{port: 8081}]", "      - ports: [{port: 8081}, {port: 9090}]")
        plan = lab.plan(spec(changed), "node-a")
        update = next(c for c in plan["changes"] if c["address"] == "policy.web-a")
        assert update["action"] == "update"
        assert "tcp/9090 deny by web/ingressDeny[0]" in update["after"]["attrs"]["ingress"]["any"]
        lab.apply(spec(changed))
        connection.sendall(b"two")
        assert connection.recv(10) == b"two"
        assert run_matrix(lab, [("world", "web-a", 9090, "tcp", "deny", "now denied"),
                                ("client-b", "web-a", 8080, "tcp", "allow", "still allowed")]) == []
    finally:
        connection.close()
    index = ip_json_link(lab, "node-b", "ep-other-b")["ifindex"]
    without_other = lab_spec(LAB_NAME, NODES, endpoints={e: n for e, n in ENDPOINTS.items() if e != "other-b"})
    assert plan_changes(lab, without_other + POLICIES, "node-b")["policy.other-b"] == "delete"
    lab.apply(without_other + POLICIES)
    entries = bpftool_dump(pinned(lab, "node-b", "policy"))
    assert entries and not [e for e in entries if int("".join(b[2:] for b in reversed(e["key"][4:8])), 16) == index]
    lab.apply(spec(""))
    for node in NODES:
        assert not scope_dir(lab.netns(node)).exists()
        assert plan_changes(lab, spec(""), node) == {}
    for endpoint, node in ENDPOINTS.items():
        for hook in ("ingress", "egress"):
            shown = ip("-n", lab.netns(node), "link", "show", f"ep-{endpoint}")
            assert shown
            filters = subprocess.run(["tc", "-n", lab.netns(node), "filter", "show", "dev", f"ep-{endpoint}", hook],
                                     capture_output=True, text=True).stdout
            assert "netx-pol" not in filters
    # without policies every probe of the matrix passes: each expected drop above was the policy's doing
    # (other-b came back in a new namespace: it needs its server again)
    with echo_servers([(lab.endpoint_netns("other-b"), address["other-b"], [8080, 8081, 9090, 5432], [8080, 5353])
                       for address in (ADDRESS, ADDRESS6)]):
        assert run_matrix(lab, [(*row[:4], "allow", f"no policy ({row[5]})") for row in MATRIX]) == []
    lab.apply(spec())

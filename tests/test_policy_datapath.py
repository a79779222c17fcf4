"""The C program's verdicts equal the compiled model's, packet by packet (BPF_PROG_TEST_RUN, no interfaces)."""

from __future__ import annotations

import signal
import uuid

import pytest

from netplanx.features.policy import maps as pm
from netplanx.features.policy.compile import compile_policies
from netplanx.features.policy.entries import Key, Verdict
from netplanx.lab.cluster import lab_spec
from netplanx.spec.validate import parse_spec
from netplanx.system.bpf.loader import load, open_pinned, remove_scope
from netplanx.system.bpf.testrun import ipv4_packet, ipv6_packet, prog_test_run
from tests.conftest import IS_ROOT
from tests.test_policy_compile import ENDPOINTS, NODES, first_hit

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="needs root: loads BPF programs")
POLICIES = """policies:
  - name: web
    selector: {app: web}
    ingress:
      - from: [{labels: {app: client}}]
      - from: [{cidr: 198.51.100.0/24}, {cidr: "2001:db8:100::/48"}]
        ports: [{port: 443}, {protocol: icmp}]
    ingressDeny:
      - ports: [{port: 22}]
      - from: [{cidr: 198.51.100.128/25}]
        ports: [{port: 443}]
    egress:
      - to: [{labels: {app: db}}]
        ports: [{port: 5432}]
"""
TC_ACT_UNSPEC, TC_ACT_SHOT = -1, 2


@pytest.fixture
def datapath():
    scope = f"test-policy-{uuid.uuid4().hex[:6]}"
    programs = load(pm.POLICY, scope)
    try:
        yield scope, programs
    finally:
        programs.close()
        remove_scope(scope, pm.POLICY.name)


def test_every_packet_gets_the_verdict_of_the_model(datapath):
    scope, programs = datapath
    spec, _document = parse_spec(lab_spec("t", NODES, endpoints=ENDPOINTS) + POLICIES, "spec.yaml")
    compiled = compile_policies(spec, spec.cluster.nodes[0])
    entries = compiled.endpoints["web-a"]
    with pm.open_map(scope, "ipcache") as ipcache:
        for cidr, (identity, name) in compiled.ipcache.items():
            ipcache.update(pm.prefix_key(cidr), pm.ip_value(identity, name))
    with pm.open_map(scope, "policy") as policy:
        policy.update_batch([pm.policy_entry(1, key, verdict) for key, verdict in entries.items()])
    web, web6 = "10.244.1.11", "fd00:244:0:1::b"
    peers = {"client-b": "10.244.2.11", "db-b": "10.244.2.12", "cidr": "198.51.100.7", "cidr-deny": "198.51.100.200",
             "world": "203.0.113.9", "node-b": "192.0.2.12", "client-b6": "fd00:244:0:2::b",
             "db-b6": "fd00:244:0:2::c", "cidr6": "2001:db8:100::7", "world6": "2001:db8:200::1",
             "node-b6": "2001:db8::12"}
    checked = 0
    verdicts: set[tuple[bool, str]] = set()
    for number, (peer, address) in enumerate(peers.items()):
        for protocol, port in (("tcp", 443), ("tcp", 22), ("tcp", 5432), ("udp", 53), ("icmp", 0)):
            sport = 20000 + number * 100 + checked
            identity = _lpm(compiled.ipcache, address)
            number_of = {"tcp": 6, "udp": 17, "icmp": 1}[protocol]
            make, local = (ipv6_packet, web6) if ":" in address else (ipv4_packet, web)
            for egress, packet in ((0, make(address, local, protocol, sport, port)),
                                   (1, make(local, address, protocol, sport, port))):
                program = programs.fd("from_endpoint" if egress else "to_endpoint")
                expected = first_hit(entries, egress, identity, number_of, port)
                verdicts.add((":" in address, expected))
                verdict = prog_test_run(program, packet).retval
                assert verdict == (TC_ACT_UNSPEC if expected == "allow" else TC_ACT_SHOT), \
                    (peer, protocol, port, "egress" if egress else "ingress", expected)
                checked += 1
    assert checked == 110 and len(verdicts) == 4  # both verdicts in both families
    neighbour_solicitation = ipv6_packet("fe80::2", web6, "icmp", icmp_type=135)
    assert prog_test_run(programs.fd("to_endpoint"), neighbour_solicitation).retval == TC_ACT_UNSPEC
    counters = pm.rule_counters(scope)
    assert counters[0][0] > 0  # default deny counted


def _lpm(ipcache: dict, address: str) -> int:
    import ipaddress

    matches = [(ipaddress.ip_network(c).prefixlen, i) for c, (i, _n) in ipcache.items()
               if ipaddress.ip_address(address) in ipaddress.ip_network(c)]
    return max(matches)[1]


RANGES = """policies:
  - name: web
    selector: {app: web}
    ingress:
      - from: [{labels: {app: client}}]
        ports: [{port: 8000, endPort: 9023}, {port: 53, endPort: 54, protocol: udp}]
    ingressDeny:
      - ports: [{port: 8500, endPort: 8511}]
"""


def test_a_port_range_is_enforced_at_its_edges_and_inside(datapath):
    """A range's first, last and middle ports pass, the ports just outside do not, and a deny range inside
    it wins: the C program, packet by packet, against the plain meaning of the spec and the model."""
    scope, programs = datapath
    spec, _document = parse_spec(lab_spec("t", NODES, endpoints=ENDPOINTS) + RANGES, "spec.yaml")
    compiled = compile_policies(spec, spec.cluster.nodes[0])
    entries = compiled.endpoints["web-a"]
    with pm.open_map(scope, "ipcache") as ipcache:
        for cidr, (identity, name) in compiled.ipcache.items():
            ipcache.update(pm.prefix_key(cidr), pm.ip_value(identity, name))
    with pm.open_map(scope, "policy") as policy:
        policy.update_batch([pm.policy_entry(1, key, verdict) for key, verdict in entries.items()])
        # 8000-9023: 5 blocks; 53-54: 2; 8500-8511: 2 for any peer and 2 overlaps for the client; open egress
        assert len(policy.items()) == len(entries) == 5 + 2 + 2 + 2 + 1
    client, web = "10.244.2.11", "10.244.1.11"
    cases = [("tcp", port) for port in (7999, 8000, 8001, 8063, 8064, 8191, 8192, 8499, 8500, 8505, 8511, 8512,
                                        8761, 8960, 9022, 9023, 9024, 80, 65535)]
    cases += [("udp", 52), ("udp", 53), ("udp", 54), ("udp", 55), ("tcp", 53)]
    for number, (protocol, port) in enumerate(cases):
        plain = "allow" if (protocol == "tcp" and 8000 <= port <= 9023 and not 8500 <= port <= 8511) or (
            protocol == "udp" and port in (53, 54)) else "deny"
        model = first_hit(entries, 0, _lpm(compiled.ipcache, client), {"tcp": 6, "udp": 17}[protocol], port)
        verdict = prog_test_run(programs.fd("to_endpoint"), ipv4_packet(client, web, protocol, 30000 + number,
                                                                        port)).retval
        assert (model, verdict) == (plain, TC_ACT_UNSPEC if plain == "allow" else TC_ACT_SHOT), (protocol, port)


def test_the_policy_trie_is_read_back_whole_in_batches(datapath):
    """An LPM trie's batch position is its last key (16 bytes here), not a bucket number: reading 3,000
    entries 64 at a time returns each once (and ends)."""
    scope, _programs = datapath
    written = [pm.policy_entry(1, Key(i % 2, 1000 + i // 100, 6, 1024 + (i % 100) * 64, 10), Verdict(i % 3 == 0, 16))
               for i in range(3000)]
    def endless(_signal: int, _frame: object) -> None:
        raise TimeoutError("the batch position did not advance")

    previous = signal.signal(signal.SIGALRM, endless)
    signal.alarm(30)
    try:
        with pm.open_map(scope, "policy") as policy:
            policy.update_batch(written)
            read = policy.items(batch=64)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert sorted(bytes(k) + bytes(v) for k, v in read) == sorted(bytes(k) + bytes(v) for k, v in written)
    assert {pm.unpack_policy(k, v)[1] for k, v in read} == {pm.unpack_policy(k, v)[1] for k, v in written}


L7 = """policies:
  - name: web
    selector: {app: web}
    ingress:
      - from: [{labels: {app: client}}]
        ports: [{port: 80, rules: {http: [{method: GET}]}}, {port: 8080}]
    egress:
      - to: [{labels: {app: db}}]
        ports: [{port: 5432, rules: {http: [{}]}}]
"""
TO_PROXY, FROM_PROXY = 0x200, 0x300


def test_l7_entries_mark_connections_for_the_proxy_and_let_only_its_upstream_in(datapath):
    """The first hop marks (from_endpoint for egress rules; from_remote for the node's endpoints' ingress rules),
    and every later packet of the connection too; to_endpoint drops what was not redirected, lets the proxy's
    upstream in (judged by the client's identity) and never lets a direct connection ride on the upstream's
    conntrack entry. (A test skb always starts with an Ethernet header: from_remote_ip, for WireGuard's device,
    is tested in the lab, tests/test_l7_lab.py.)"""
    scope, programs = datapath
    spec, _document = parse_spec(lab_spec("t", NODES, endpoints=ENDPOINTS) + L7, "spec.yaml")
    compiled = compile_policies(spec, spec.cluster.nodes[0])
    with pm.open_map(scope, "ipcache") as ipcache:
        for cidr, (identity, name) in compiled.ipcache.items():
            ipcache.update(pm.prefix_key(cidr), pm.ip_value(identity, name))
    with pm.open_map(scope, "policy") as policy:
        policy.update_batch([pm.policy_entry(1, key, verdict) for key, verdict in compiled.endpoints["web-a"].items()])
    web, client, db, other = "10.244.1.11", "10.244.2.11", "10.244.2.12", "192.0.2.200"
    with pm.open_map(scope, "endpoints") as endpoints:
        endpoints.update(pm.endpoint_key(web), 1)  # web-a's veth: the test skb's ifindex

    def run(program: str, packet: bytes, mark: int = 0) -> tuple[int, int]:
        done = prog_test_run(programs.fd(program), packet, mark=mark)
        return done.retval, done.mark & 0xF00

    syn = ipv4_packet(client, web, "tcp", 40001, 80)
    assert run("to_endpoint", syn) == (TC_ACT_SHOT, 0)  # an L7 port, not redirected
    assert run("from_remote", syn) == (TC_ACT_UNSPEC, TO_PROXY)
    assert run("from_remote", syn) == (TC_ACT_UNSPEC, TO_PROXY)  # a later packet: conntrack remembers
    assert run("to_endpoint", syn) == (TC_ACT_SHOT, 0)  # that connection, straight to the endpoint
    assert run("from_remote", ipv4_packet(client, web, "tcp", 40003, 8080)) == (TC_ACT_UNSPEC, 0)  # L4 port
    assert run("from_remote", ipv4_packet(other, web, "tcp", 40004, 80)) == (TC_ACT_UNSPEC, 0)  # to_endpoint drops
    upstream = ipv4_packet(client, web, "tcp", 40005, 80)
    assert run("to_endpoint", upstream, FROM_PROXY) == (TC_ACT_UNSPEC, FROM_PROXY)  # the proxy's, as the client
    assert run("to_endpoint", upstream) == (TC_ACT_SHOT, 0)  # the same tuple from the client itself: no bypass
    assert run("from_endpoint", ipv4_packet(web, client, "tcp", 80, 40005)) == (TC_ACT_UNSPEC, 0)  # its reply
    assert run("to_endpoint", ipv4_packet(other, web, "tcp", 40006, 80), FROM_PROXY)[0] == TC_ACT_SHOT
    assert run("from_endpoint", ipv4_packet(web, db, "tcp", 40007, 5432)) == (TC_ACT_UNSPEC, TO_PROXY)  # egress
    assert run("from_endpoint", ipv4_packet(web, db, "tcp", 40008, 5433))[0] == TC_ACT_SHOT


def test_a_version_pinned_before_a_program_was_added_opens_for_a_rollback(datapath):
    """A rollback re-attaches the previous version's programs: one pinned before from_remote existed opens
    with the programs it has (from_endpoint, to_endpoint)."""
    scope, programs = datapath
    folder = pm.POLICY.prog_dir(scope, programs.version)
    for added in ("from_remote", "from_remote_ip"):
        (folder / added).unlink()
    older = open_pinned(pm.POLICY, scope, programs.version)
    try:
        assert set(older.fds) == {"from_endpoint", "to_endpoint"}
        assert older.ids["to_endpoint"] == programs.ids["to_endpoint"]
    finally:
        older.close()

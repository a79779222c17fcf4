"""Policy compilation without a kernel: identities, peers, default deny, deny precedence, spec errors."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netplanx.features.policy.compile import compile_policies, policy_resources
from netplanx.features.policy.entries import OPEN_RULE, Key, Verdict
from netplanx.features.policy.flows import Aggregator, Flow, FlowFilter
from netplanx.features.policy.identity import (
    HOST,
    LABEL_BASE,
    REMOTE_NODE,
    WORLD,
    cidr_identity,
    collisions,
    label_identity,
)
from netplanx.lab.cluster import lab_spec
from netplanx.spec.semantic import node_views
from netplanx.spec.validate import parse_spec
from tests.specs import problems_of

NODES = ["node-a", "node-b"]
ENDPOINTS = {"web-a": "node-a", "client-a": "node-a", "client-b": "node-b", "db-b": "node-b"}


def compiled(policies: str, node: str = "node-a"):
    spec, _document = parse_spec(lab_spec("t", NODES, endpoints=ENDPOINTS) + policies, "spec.yaml")
    return compile_policies(spec, next(n for n in spec.cluster.nodes if n.name == node)), spec


def test_identities_are_derived_from_labels_alone():
    assert label_identity({"app": "web", "tier": "front"}) == label_identity({"tier": "front", "app": "web"})
    assert label_identity({"app": "web"}) != label_identity({"app": "db"})
    assert LABEL_BASE <= label_identity({}) < 1 << 24 <= cidr_identity("10.0.0.0/8") < 1 << 25
    assert collisions(["app=web", "app=db"], ["10.0.0.0/8"]) == []


def test_unselected_endpoints_are_open_and_a_section_makes_a_direction_default_deny():
    result, _spec = compiled("policies:\n  - {name: lock, selector: {app: web}, ingress: []}\n")
    assert result.endpoints["client-a"] == {Key(0, 0, 0, 0): Verdict(False, OPEN_RULE),
                                            Key(1, 0, 0, 0): Verdict(False, OPEN_RULE)}
    assert result.endpoints["web-a"] == {Key(1, 0, 0, 0): Verdict(False, OPEN_RULE)}  # ingress: nothing allowed
    assert "client-b" not in result.endpoints  # on node-b


def test_peers_resolve_to_identities():
    result, _spec = compiled("""policies:
  - name: web
    selector: {app: web}
    ingress:
      - from: [{labels: {app: client}}, {entity: host}]
        ports: [{port: 80}, {port: 53, protocol: udp}, {protocol: icmp}]
      - from: [{cidr: 198.51.100.0/24}]
        ports: [{port: 8000, endPort: 8002}]
      - from: [{entity: world}]
        ports: [{port: 443}]
    egress:
      - to: [{entity: cluster}]
""")
    entries = result.endpoints["web-a"]
    client = label_identity({"app": "client"})
    cidr = cidr_identity("198.51.100.0/24")
    ingress = {k for k in entries if k.identity == client and not k.egress}
    assert ingress == {Key(0, client, 6, 80, 16), Key(0, client, 17, 53, 16), Key(0, client, 1, 0)}
    assert {(k.port, k.last) for k in entries if k.identity == cidr and k.egress == 0} == {
        (8000, 8001), (8002, 8002), (443, 443)}  # 8000-8002: two aligned blocks
    assert Key(0, WORLD, 6, 443, 16) in entries and Key(0, HOST, 6, 80, 16) in entries
    egress = {k.identity for k in entries if k.egress == 1}
    assert egress == {HOST, REMOTE_NODE, *(label_identity({"app": a}) for a in ("web", "client", "db"))}
    assert result.ipcache["192.0.2.11/32"] == (HOST, "node-a") and result.ipcache["192.0.2.12/32"][0] == REMOTE_NODE
    assert result.ipcache["10.244.2.11/32"] == (client, "client-b")
    assert result.ipcache["0.0.0.0/0"] == (WORLD, "world")


def first_hit(entries: dict[Key, Verdict], egress: int, identity: int, protocol: int, port: int) -> str:
    """The datapath's lookup (bpf/policy.c decide()), in Python: among the peer's entries that match, the
    longest prefix (a port block, the smaller the longer; then the protocol alone; then any protocol);
    when the peer has none, the same among the entries for any peer; no match denies."""
    for peer in (identity, 0):
        matching = [(key.bits if key.protocol else -1, verdict) for key, verdict in entries.items()
                    if key.egress == egress and key.identity == peer and key.protocol in (0, protocol)
                    and (not key.bits or (port and key.covers(port)))]
        if matching:
            return "deny" if max(matching, key=lambda m: m[0])[1].deny else "allow"
    return "deny"


PEERS = ["{labels: {app: client}}", "{labels: {app: db}}", "{entity: all}"]
PORTS = ["[{port: 80}]", "[{port: 81}]", "[{protocol: udp}]", "[]", "[{protocol: any}]", "[{port: 80, endPort: 81}]"]
RANGES = st.tuples(st.integers(60, 100), st.integers(0, 40)).map(
    lambda r: f"[{{port: {r[0]}, endPort: {r[0] + r[1]}}}]")
rules = st.lists(st.tuples(st.booleans(), st.sampled_from([*PEERS, "(any)"]),
                           st.one_of(st.sampled_from(PORTS), RANGES)), min_size=1, max_size=5)
PROBES = [(6, port) for port in range(58, 143)] + [(17, 80), (17, 81), (1, 0)]  # every range edge and beyond


@settings(max_examples=100, deadline=None)
@given(rules)
def test_deny_wins_over_allow_whatever_the_overlap(spec_rules):
    """Compiled entries under the datapath's lookup agree with the semantics: any matching deny drops, else
    any matching allow passes, else default deny; with single ports and with ranges (aligned blocks)."""
    sections = {"ingress": [], "ingressDeny": []}
    for deny, peer, ports in spec_rules:
        source = "" if peer == "(any)" else f"from: [{peer}], "
        sections["ingressDeny" if deny else "ingress"].append(f"{{{source}ports: {ports}}}")
    text = "policies:\n  - name: p\n    selector: {app: web}\n" + "".join(
        f"    {key}: [{', '.join(items)}]\n" for key, items in sections.items() if items)
    result, _spec = compiled(text)
    entries = result.endpoints["web-a"]
    labels = {"client": label_identity({"app": "client"}), "db": label_identity({"app": "db"})}
    for peer_name, identity in labels.items():
        for protocol, port in PROBES:
            expected = "deny"
            matching = [deny for deny, peer, ports in spec_rules
                        if _peer_matches(peer, peer_name) and _port_matches(ports, protocol, port)]
            if matching:
                expected = "deny" if any(matching) else "allow"
            assert first_hit(entries, 0, identity, protocol, port) == expected, (peer_name, protocol, port, text)


def _peer_matches(peer: str, name: str) -> bool:
    return peer in ("(any)", "{entity: all}") or f"app: {name}" in peer


def _port_matches(ports: str, protocol: int, port: int) -> bool:
    if ranged := re.fullmatch(r"\[\{port: (\d+), endPort: (\d+)\}\]", ports):
        return protocol == 6 and int(ranged[1]) <= port <= int(ranged[2])
    return {"[{port: 80}]": (protocol, port) == (6, 80), "[{port: 81}]": (protocol, port) == (6, 81),
            "[{protocol: udp}]": protocol == 17, "[]": True, "[{protocol: any}]": True}[ports]


@pytest.mark.parametrize(("first", "last", "blocks"), [
    (1024, 2047, 1), (80, 95, 1), (8000, 8099, 3), (8000, 9023, 5), (1, 1024, 11), (1, 65535, 16)])
def test_a_port_range_is_a_few_aligned_blocks_per_peer(first, last, blocks):
    result, _spec = compiled(f"""policies:
  - name: web
    selector: {{app: web}}
    ingress:
      - from: [{{labels: {{app: client}}}}, {{labels: {{app: db}}}}]
        ports: [{{port: {first}, endPort: {last}}}]
""")
    entries = result.endpoints["web-a"]
    for peer in ({"app": "client"}, {"app": "db"}):
        spans = sorted((k.port, k.last) for k in entries if k.identity == label_identity(peer))
        assert len(spans) == blocks and spans[0][0] == first and spans[-1][1] == last
        assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(spans))  # no gap, no overlap
        assert all(k.port % (1 << (16 - k.bits)) == 0 for k in entries if k.bits)  # aligned
    assert len(entries) == 2 * blocks + 1  # plus the open egress


def test_a_range_reads_as_a_range_in_the_plan():
    spec, _document = parse_spec(lab_spec("t", NODES, endpoints=ENDPOINTS) + """policies:
  - name: web
    selector: {app: web}
    ingress: [{from: [{labels: {app: client}}], ports: [{port: 8000, endPort: 8099}, {port: 53, protocol: udp}]}]
    ingressDeny: [{ports: [{port: 8080, endPort: 8081}]}]
""", "spec.yaml")
    web = next(r for r in policy_resources(node_views(spec)[0]) if r.address == "policy.web-a")
    assert web.attrs["ingress"] == {
        "app=client": ["tcp/8000-8099 allow by web/ingress[0]", "tcp/8080-8081 deny by web/ingressDeny[0]",
                       "udp/53 allow by web/ingress[0]"],
        "any": ["tcp/8080-8081 deny by web/ingressDeny[0]"]}
    assert web.attrs["entries"] == 3 + 1 + 1 + 1 + 1  # 3 blocks, udp/53, the deny block twice, open egress


def test_policy_resources_read_at_the_policy_level():
    spec, _document = parse_spec(lab_spec("t", NODES, endpoints=ENDPOINTS) + """policies:
  - name: web
    selector: {app: web}
    ingress: [{from: [{labels: {app: client}}], ports: [{port: 80}]}]
    ingressDeny: [{ports: [{port: 81}]}]
""", "spec.yaml")
    resources = {r.address: r for r in policy_resources(node_views(spec)[0])}
    web = resources["policy.web-a"]
    assert web.attrs["ingress"] == {"app=client": ["tcp/80 allow by web/ingress[0]"],
                                    "any": ["tcp/81 deny by web/ingressDeny[0]"]}
    assert web.attrs["egress"] == {"any": ["any allow by open"]}
    assert web.attrs["entries"] == 3 and web.meta["host_interface"] == "ep-web-a"
    assert resources["ipcache.10.244.1.11/32"].attrs == {"identity": label_identity({"app": "web"}), "name": "web-a"}
    assert "policydp.policy" in resources


def test_a_spec_without_policies_loads_nothing():
    spec, _document = parse_spec(lab_spec("t", NODES, endpoints=ENDPOINTS), "spec.yaml")
    assert policy_resources(node_views(spec)[0]) == []


BASE = lab_spec("t", NODES, endpoints=ENDPOINTS)
L7 = "  - {name: p, selector: {app: web}, ingress: [{ports: [{port: 80, rules: %s}]}]}"


@pytest.mark.parametrize(("policies", "message"), [
    ("  - {name: p, selector: {app: web}, ingress: [{ports: [{port: 80, protocol: sctp}]}]}",
     "'sctp' is not allowed for protocol (allowed: 'tcp', 'udp', 'icmp' or 'any')"),
    ("  - {name: p, selector: {app: web}, ingress: [{ports: [{port: 90, endPort: 80}]}]}",
     "endPort 80 is below port 90 (allowed: endPort >= port)"),
    ("  - {name: p, selector: {app: web}, ingress: [{ports: [{endPort: 5000}]}]}",
     "endPort needs port (allowed: port: 8000, endPort: 8010)"),
    ("  - {name: p, selector: {app: web}, ingress: [{ports: [{protocol: icmp, port: 8}]}]}",
     "protocol icmp takes no port (allowed: port with tcp or udp)"),
    ("  - {name: p, selector: {app: web}, ingress: [{from: [{entity: moon}]}]}",
     "'moon' is not allowed for entity (allowed: 'host', 'world', 'cluster', 'remote-node' or 'all')"),
    ("  - {name: p, selector: {app: web}, ingress: [{from: [{cidr: 10.0.0.0/8, entity: host}]}]}",
     "a peer needs exactly one of labels, cidr, entity, got 2"),
    ("  - {name: p, selector: {app: web}}", "policy p has no section (allowed: ingress, ingressDeny, egress, "
                                            "egressDeny)"),
    ("  - {name: p, selector: {app: web}, ingress: [{from: [{labels: {app: clinet}}]}]}",
     "labels {app=clinet} select no endpoint (allowed: labels of an endpoint: app=client; app=db; app=web)"),
    ("  - {name: p, selector: {app: web}, ingress: []}\n  - {name: p, selector: {app: db}, egress: []}",
     "policy name 'p' is used twice, first at policies[0] (allowed: unique names)"),
    ("  - {name: p, selector: {app: wbe}, ingress: []}",
     "selector {app=wbe} selects no endpoint (allowed: labels of an endpoint: app=client; app=db; app=web)"),
    (L7 % '{http: [{path: "/api/(v1"}]}', "path '/api/(v1' is not a regular expression HAProxy accepts: missing "
                                          "closing parenthesis at offset 8 (allowed: a PCRE2 expression"),
    (L7 % '{http: [{method: "a)|(b"}]}', "method 'a)|(b' is not a regular expression HAProxy accepts: unmatched "
                                         "closing parenthesis"),
    (L7 % "{http: [{path: '\\Qa'}]}", "missing closing parenthesis at offset 9 once anchored as ^(?:\\Qa)$"),
    (L7 % '{http: [{path: "/a\\tb"}]}', "path '/a\\tb' has a control character (allowed: printable text)"),
    (L7 % '{http: [{headers: ["X Team: blue"]}]}', "header 'X Team: blue' is not 'Name: value' or 'Name'"),
    (L7 % "{http: []}", "http has no rule, so it would allow no request (allowed: at least one rule; {} allows"),
    (L7 % "{}", "missing required key 'http' (allowed: this object needs http)"),
    (L7 % "{http: [{methods: GET}]}", "unknown key 'methods' (allowed: method, path, headers)"),
    (L7.replace("port: 80,", "port: 53, protocol: udp,") % "{http: [{}]}",
     "L7 rules need protocol tcp, not udp (allowed: protocol: tcp, the default)"),
    (L7.replace("port: 80,", "port: 80, endPort: 81,") % "{http: [{}]}",
     "L7 rules need one port (allowed: port: 80, without endPort)"),
    (L7.replace("port: 80, ", "") % "{http: [{}]}", "L7 rules need one port (allowed: port: 80, without endPort)"),
    (L7.replace("ingress:", "ingressDeny:") % "{http: [{method: GET}]}",
     "L7 rules in ingressDeny: a deny rule denies the whole port (allowed: L7 rules in ingress or egress"),
])
def test_policy_spec_errors_are_positioned(policies, message):
    text = BASE + "policies:\n" + policies + "\n"
    found = problems_of(text, "spec.yaml")
    assert len(found) == 1 and message in found[0], found
    line = int(found[0].split(":")[1])
    assert text.splitlines()[line - 1].startswith("  - {name: p"), found


def flow(source: str, verdict: str, port: int = 80, policy: str = "web") -> Flow:
    return Flow(time=0.0, source=source, source_address="10.0.0.1", source_port=40000, destination="web-a",
                destination_address="10.0.0.2", destination_port=port, protocol="tcp", verdict=verdict,
                endpoint="web-a", direction="ingress", rule=f"{policy}/ingress[0]", policy=policy, length=60)


def test_flow_filters_and_aggregation():
    keep = FlowFilter(endpoint="client-b", verdict="dropped", policy="web")
    assert keep(flow("client-b", "dropped")) and not keep(flow("client-a", "dropped"))
    assert not keep(flow("client-b", "allowed")) and not keep(flow("client-b", "dropped", policy="db"))
    assert "client-b 10.0.0.1:40000 -> web-a 10.0.0.2:80  tcp  DROPPED  by web/ingress[0] (web-a ingress)" in \
        flow("client-b", "dropped").line()
    six = Flow(**{**flow("client-b", "allowed").__dict__, "source_address": "fd00::1",
                  "destination_address": "fd00::2"})
    assert "client-b [fd00::1]:40000 -> web-a [fd00::2]:80  tcp  ALLOWED" in six.line()
    folder = Aggregator(60)
    for item in (flow("client-b", "dropped"), flow("client-b", "dropped"), flow("client-a", "allowed")):
        folder.add(item)
    assert folder.counts == {("client-b", "web-a", "tcp/80", "dropped"): [2, 120],
                             ("client-a", "web-a", "tcp/80", "allowed"): [1, 60]}


def test_the_plan_says_what_an_endpoint_gains_and_how_many_entries_change(tmp_path):
    from netplanx.engine.planner import make_plan
    from netplanx.features.policy.types import policy_types
    from netplanx.render.human import plan_text
    from netplanx.system.context import KernelContext
    from netplanx.system.state import StateStore

    policies = """policies:
  - name: web
    selector: {app: web}
    ingress: [{from: [{labels: {app: client}}], ports: [{port: 80}]}]
    ingressDeny: [{ports: [{port: 8081}]}]
"""

    def desired(text: str) -> list:
        spec, _document = parse_spec(lab_spec("t", NODES, endpoints=ENDPOINTS) + text, "spec.yaml")
        return [r for r in policy_resources(node_views(spec)[0]) if r.address == "policy.web-a"]

    types = {t.kind: t for t in policy_types(KernelContext(StateStore(tmp_path, "test")))}
    plan = make_plan(types, desired(policies.replace("{port: 8081}", "{port: 8081}, {port: 9090}")),
                     desired(policies))
    text = plan_text(plan, lambda words, _colour: words)
    assert "~ policy.web-a  (verdicts change, 1 map entry)" in text
    assert '~ ingress.any[1]: (none) -> "tcp/9090 deny by web/ingressDeny[0]"' in text
    assert "~ entries: 3 -> 4" in text

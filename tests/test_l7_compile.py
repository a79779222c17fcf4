"""L7 rules without a kernel: the entries that redirect, the scopes, the HAProxy configuration (checked by the
real haproxy -c), the plan at the rule level, and the spec errors a whole file can have."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from netplanx.features.policy import haproxy
from netplanx.features.policy.compile import compile_policies, policy_resources
from netplanx.features.policy.entries import Key, Verdict
from netplanx.features.policy.identity import ANY, label_identity
from netplanx.lab.cluster import lab_spec
from netplanx.spec.semantic import node_views
from netplanx.spec.validate import parse_spec
from tests.specs import problems_of
from tests.test_policy_compile import ENDPOINTS, NODES

CLIENT, WEB = label_identity({"app": "client"}), label_identity({"app": "web"})
POLICIES = """policies:
  - name: web
    selector: {app: web}
    ingress:
      - from: [{labels: {app: client}}]
        ports:
          - port: 80
            rules:
              http:
                - {method: GET, path: "/api/v1/.*", headers: ["X-Team: blue"]}
                - {method: HEAD, path: /health, headers: [X-Probe]}
      - from: [{labels: {app: db}}]
        ports: [{port: 80, rules: {http: [{}]}}, {port: 8080, rules: {http: [{method: POST}]}}]
      - from: [{labels: {app: db}}]
        ports: [{port: 8080}]
  - name: client
    selector: {app: client}
    egress:
      - to: [{labels: {app: web}}]
        ports: [{port: 80, rules: {http: [{method: GET|HEAD}]}}]
      - {}
"""


def spec_of(policies: str = POLICIES):
    spec, _document = parse_spec(lab_spec("t", NODES, endpoints=ENDPOINTS) + policies, "spec.yaml")
    return spec


def test_l7_ports_redirect_unless_an_l4_rule_allows_the_same_peer():
    compiled = compile_policies(spec_of(), spec_of().cluster.nodes[0])
    web = compiled.endpoints["web-a"]
    assert web[Key(0, CLIENT, 6, 80, 16)] == Verdict(False, 16, proxy=True)
    db = label_identity({"app": "db"})
    assert web[Key(0, db, 6, 80, 16)].proxy
    assert web[Key(0, db, 6, 8080, 16)] == Verdict(False, 18)  # db's plain rule for 8080 wins over its L7 rule
    client = compiled.endpoints["client-a"]
    assert client[Key(1, WEB, 6, 80, 16)] == Verdict(False, 20)  # 'to anything' covers it: no redirect
    assert client[Key(1, ANY, 0, 0, 0)] == Verdict(False, 20)
    assert [(s.endpoint, s.direction, s.port) for s in compiled.scopes] == [("web-a", "ingress", 80)]
    (scope,) = compiled.scopes
    assert scope.requests() == [
        "GET /api/v1/.* [X-Team: blue] allowed for app=client by web/ingress[0]",
        "HEAD /health [X-Probe] allowed for app=client by web/ingress[0]",
        "* * allowed for app=db by web/ingress[1]"]
    assert scope.addresses == ("10.244.1.11", "fd00:244:0:1::b")


def test_a_deny_rule_takes_the_port_from_an_l7_rule():
    deny = "    ingressDeny: [{from: [{labels: {app: client}}], ports: [{port: 80}]}]\n"
    denied = POLICIES.replace("  - name: client", deny + "  - name: client")
    compiled = compile_policies(spec_of(denied), spec_of(denied).cluster.nodes[0])
    assert compiled.endpoints["web-a"][Key(0, CLIENT, 6, 80, 16)].deny
    assert [m.peer_text for m in compiled.scopes[0].matches] == ["app=client", "app=client", "app=db"]


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy")
def test_the_configuration_is_one_haproxy_accepts(tmp_path: Path):
    """Rendered with a folder for its placeholders, every file passes haproxy -c, and the digest the description
    carries is the one of the files as read back."""
    without_l4 = POLICIES.replace("      - {}\n", "")
    resources = policy_resources(node_views(spec_of(without_l4))[0])
    proxy = next(r for r in resources if r.kind == "l7proxy")
    scopes = [r for r in resources if r.kind == "l7rule"]
    assert [r.address for r in scopes] == ["l7rule.client-a.egress.80", "l7rule.web-a.ingress.80"]
    (tmp_path / haproxy.SCOPES).mkdir()
    for name, text in proxy.meta["_files"].items():
        (tmp_path / name).write_text(haproxy.fill(text, str(tmp_path), proxy.attrs["digest"]))
    for rule in scopes:
        (tmp_path / haproxy.SCOPES / rule.meta["file"]).write_text(haproxy.fill(rule.meta["_text"], str(tmp_path), ""))
    checked = subprocess.run(["haproxy", "-c", "-f", str(tmp_path / haproxy.MAIN), "-f", str(tmp_path / "scopes")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    read = {name: haproxy.template((tmp_path / name).read_text(), str(tmp_path)) for name in proxy.meta["_files"]}
    read |= {f"scopes/{path.name}": haproxy.template(path.read_text(), str(tmp_path))
             for path in (tmp_path / "scopes").iterdir()}
    assert haproxy.digest(read) == proxy.attrs["digest"]
    assert (tmp_path / "ingress.map").read_text() == ("10.244.1.11:80 web-a.ingress.80\n"
                                                      "fd00:244:0:1::b:80 web-a.ingress.80\n")
    egress = (tmp_path / haproxy.SCOPES / "client-a.egress.80.cfg").read_text()
    assert "use-server to-ingress" in egress and f"acl peers0 var(txn.dst_id) -m str {WEB}" in egress


def test_the_plan_speaks_at_the_rule_level(tmp_path: Path):
    from netplanx.engine.planner import make_plan
    from netplanx.features.policy.types import policy_types
    from netplanx.render.human import plan_text
    from netplanx.system.context import KernelContext
    from netplanx.system.state import StateStore

    types = {t.kind: t for t in policy_types(KernelContext(StateStore(tmp_path, "test")))}
    before = [r for r in policy_resources(node_views(spec_of())[0]) if r.kind in ("l7rule", "l7proxy", "policy")]
    after = [r for r in policy_resources(node_views(spec_of(POLICIES.replace("/health", "/healthz")))[0])
             if r.kind in ("l7rule", "l7proxy", "policy")]
    text = plan_text(make_plan(types, after, []), lambda words, _colour: words)
    assert "+ l7rule.web-a.ingress.80  (HTTP requests here are checked by the proxy; a request no rule allows " \
           "gets 403)" in text
    assert 'requests=["GET /api/v1/.* [X-Team: blue] allowed for app=client by web/ingress[0]"' in text
    assert '"tcp/80 L7 by web/ingress[0]"' in text
    changed = plan_text(make_plan(types, after, before), lambda words, _colour: words)
    assert '~ requests[1]: "HEAD /health [X-Probe] allowed for app=client by web/ingress[0]" -> "HEAD /healthz ' \
           '[X-Probe] allowed for app=client by web/ingress[0]"' in changed
    assert "~ l7proxy.node  (hitless: HAProxy reloads (established connections keep going" in changed
    assert changed.index("l7rule.web-a.ingress.80 will be") < changed.index("l7proxy.node will be")


@pytest.mark.parametrize(("extra", "value", "message"), [
    ("rules:\n  - {priority: 9, fwmark: 1, table: 100}\n", "9,",
     "rule priority 9 is taken by netx's L7 redirect (fwmark 0x200/0xf00) (allowed: another priority)"),
    ("routes:\n  - {to: 0.0.0.0/0, dev: lo, type: local, table: 2004}\n", "2004}",
     "table 2004 is taken by netx's L7 redirect (allowed: another table)"),
])
def test_the_redirect_takes_a_rule_priority_and_a_table(extra, value, message):
    text = lab_spec("t", NODES, endpoints=ENDPOINTS) + POLICIES + extra
    last = text.splitlines()[-1]
    assert problems_of(text, "spec.yaml") == [f"spec.yaml:{len(text.splitlines())}:{last.index(value) + 1}: {message}"]
    parse_spec(lab_spec("t", NODES, endpoints=ENDPOINTS) + extra, "spec.yaml")  # without L7 rules: theirs


def test_l7_errors_point_at_the_value():
    text = lab_spec("t", NODES, endpoints=ENDPOINTS) + POLICIES.replace('path: "/api/v1/.*"', 'path: "/api/(v1"')
    (found,) = problems_of(text, "spec.yaml")
    row = next(n for n, line in enumerate(text.splitlines(), start=1) if "/api/(v1" in line)
    column = text.splitlines()[row - 1].index('"/api/(v1"') + 1
    assert found.startswith(f"spec.yaml:{row}:{column}: path '/api/(v1' is not a regular expression"), found

"""L7 (HTTP) policy with real requests (curl, http.client) through real HAProxy, nftables and BPF, in a
three-node lab over the VXLAN overlay.

One lab (module scope) serves every test: requests in both directions on one node and across nodes, a
service VIP in front, flows, a rule change under a keep-alive connection, drift (a killed proxy, an edited
file), a proxy that cannot start, and the removal of the rules.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from netplanx.features.policy.haproxy import LISTENER_PORT
from netplanx.features.policy.proxy import Proxy
from netplanx.lab.cluster import Lab, lab_spec
from netplanx.system import netns as namespaces
from tests.conftest import IS_ROOT, assert_adopts, ip
from tests.http_traffic import ask, curl_all, http_servers, keep_alive

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="needs root: creates network namespaces")

NODES = ["node-a", "node-b", "node-c"]
ENDPOINTS = {"web-a": "node-a", "client-a": "node-a", "client-b": "node-b", "other-b": "node-b", "api-c": "node-c"}
ADDRESS = {"web-a": "10.244.1.11", "client-a": "10.244.1.12", "client-b": "10.244.2.11", "other-b": "10.244.2.12",
           "api-c": "10.244.3.11", "vip": "10.96.0.10"}
ADDRESS6 = {"web-a": "fd00:244:0:1::b", "client-b": "fd00:244:0:2::b"}
LAB_NAME = f"l7{uuid.uuid4().hex[:6]}"
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
                - {method: HEAD, path: /health}
      - from: [{labels: {app: client}}]
        ports: [{port: 8081}]
  - name: client
    selector: {app: client}
    egress:
      - to: [{labels: {app: web}}]
        ports: [{port: 80, rules: {http: [{method: GET|HEAD}]}}, {port: 8081}]
      - to: [{labels: {app: api}}]
        ports: [{port: 80, rules: {http: [{method: GET, path: "/public/.*"}]}}]
services:
  - {name: web, vip: 10.96.0.10, port: 80, backends: [{endpoint: web-a, port: 80}]}
"""


def spec(policies: str = POLICIES) -> str:
    return lab_spec(LAB_NAME, NODES, endpoints=ENDPOINTS) + policies


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    made = Lab(LAB_NAME, NODES, tmp_path_factory.mktemp("l7-lab"))
    try:
        made.up()
        made.apply(spec())
        servers = [(made.endpoint_netns(e), ADDRESS[e], [80, 8081]) for e in ENDPOINTS]
        servers += [(made.endpoint_netns(e), ADDRESS6[e], [80]) for e in ADDRESS6]
        with http_servers(servers):
            yield made
    finally:
        made.down()
        for node in NODES:
            subprocess.run(["rm", "-rf", f"/sys/fs/bpf/netx/{made.netns(node)}"], check=False)


def ns(lab: Lab, endpoint: str) -> str:
    return lab.endpoint_netns(endpoint)


BLUE = ["X-Team: blue"]
# (source, destination, port, method, path, headers, expected status, what it shows); 0: no HTTP answer
MATRIX = [
    ("client-b", "web-a", 80, "GET", "/api/v1/items", BLUE, 200, "ingress rules across nodes (and client-b's egress)"),
    ("client-b", "web-a", 80, "GET", "/api/v1/items", [], 403, "ingress: the header is missing"),
    ("client-b", "web-a", 80, "HEAD", "/health", [], 200, "ingress: the second rule"),
    ("client-b", "web-a", 80, "POST", "/api/v1/items", BLUE, 403, "client-b's egress rules (node-b's proxy)"),
    ("client-a", "web-a", 80, "GET", "/api/v1/items", BLUE, 200, "one node: egress, then ingress rules"),
    ("client-a", "web-a", 80, "GET", "/other", BLUE, 403, "one node: egress allows, ingress denies"),
    ("client-a", "web-a", 80, "DELETE", "/api/v1/items", BLUE, 403, "one node: egress denies"),
    ("client-a", "api-c", 80, "GET", "/public/x", [], 200, "egress rules across nodes, open destination"),
    ("client-a", "api-c", 80, "GET", "/private/x", [], 403, "egress rules across nodes: the path"),
    ("client-b", "web-a6", 80, "GET", "/api/v1/items", BLUE, 200, "IPv6"),
    ("client-b", "web-a6", 80, "GET", "/api/v2/items", BLUE, 403, "IPv6, denied"),
    ("client-b", "web-a", 8081, "GET", "/anything", [], 200, "an L4 rule on another port: no proxy"),
    ("other-b", "web-a", 80, "GET", "/api/v1/items", BLUE, 0, "L4 deny before any proxy"),
    ("client-b", "vip", 80, "GET", "/api/v1/items", BLUE, 200, "a service VIP: balanced, then the rules"),
    ("client-b", "vip", 80, "GET", "/nope", BLUE, 403, "a service VIP, denied"),
    ("other-b", "vip", 80, "GET", "/api/v1/items", BLUE, 0, "a service VIP, L4 deny"),
]


def address_of(name: str) -> str:
    return ADDRESS6[name[:-1]] if name.endswith("6") and name[:-1] in ADDRESS6 else ADDRESS[name]


def run_matrix(lab: Lab, rows: list[tuple]) -> list[str]:
    cases = [(ns(lab, s), address_of(d), port, method, path, headers, 2.0 if want == 0 else 10.0)
             for s, d, port, method, path, headers, want, _why in rows]
    answers = curl_all(cases)
    failed = [f"{s} -> {d}:{port} {method} {path}: expected {want}, got {got.status} ({why})"
              for (s, d, port, method, path, _h, want, why), got in zip(rows, answers, strict=True)
              if got.status != want]
    for (source, destination, _p, method, path, *_rest), got in zip(rows, answers, strict=True):
        if got.status == 200 and method != "HEAD":  # the backend sees the client's own address
            own = ADDRESS6[source] if destination.endswith("6") else ADDRESS[source]
            if got.body.split()[:2] != ["peer", own]:
                failed.append(f"{source} -> {destination} {path}: the backend saw {got.body!r}")
    return failed


def changes(lab: Lab, text: str, node: str) -> dict[str, str]:
    return {c["address"]: c["action"] for c in lab.plan(text, node)["changes"]}


def test_http_rules_apply_in_both_directions_on_one_node_and_across_nodes(lab):
    assert run_matrix(lab, MATRIX) == []
    for node in NODES:
        assert changes(lab, spec(), node) == {}, node
    plan = lab.plan(spec(POLICIES.replace("HEAD, path: /health", "HEAD, path: /healthz")), "node-a")
    steps = [s["address"] for s in plan["steps"]]
    assert steps == ["l7rule.web-a.ingress.80", "l7proxy.node"]  # the files first, then the reload
    rule = next(c for c in plan["changes"] if c["address"] == "l7rule.web-a.ingress.80")
    assert rule["after"]["attrs"]["requests"] == [
        "GET /api/v1/.* [X-Team: blue] allowed for app=client by web/ingress[0]",
        "HEAD /healthz allowed for app=client by web/ingress[0]"]
    proxy = next(c for c in plan["changes"] if c["address"] == "l7proxy.node")
    assert proxy["disruption"].startswith("hitless: HAProxy reloads (established connections keep going")
    shown = lab.netx("node-a", "plan", str(lab.write(spec(POLICIES.replace("/health", "/healthz")), "text.yaml")))
    assert '~ requests[1]: "HEAD /health allowed for app=client by web/ingress[0]" -> "HEAD /healthz allowed ' \
           'for app=client by web/ingress[0]"' in shown.stdout, shown.stdout
    adopted = assert_adopts(lab, "node-a")
    assert "l7proxy.*" in adopted and "l7rule.*" in adopted and "# policies are not adopted" in adopted


def watch_flows(lab: Lab, node: str, *filters: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "netplanx", "flows", "--netns", lab.netns(node), "--json", "--duration", "30",
               *filters]
    env = {**os.environ, "NETX_STATE_DIR": str(lab.state_dir)}
    watcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert watcher.stderr is not None
    assert "policy verdicts and L7 requests" in watcher.stderr.readline()  # the log socket is bound
    return watcher


def flows_of(watcher: subprocess.Popen) -> list[dict]:
    try:
        out, err = watcher.communicate(timeout=40)
    finally:
        watcher.kill()
    return [json.loads(line) for line in out.splitlines()] or pytest.fail(err)


def test_flows_show_each_request_with_its_rule(lab):
    watcher = watch_flows(lab, "node-a", "--endpoint", "web-a", "--count", "2")
    second = lab.netx("node-a", "flows", "--duration", "1")  # (--node is ignored by flows)
    assert second.returncode == 1 and "another netx flows is reading the L7 proxy's log" in second.stderr
    assert run_matrix(lab, [MATRIX[0]]) == []
    redirected, request = flows_of(watcher)
    assert (redirected["protocol"], redirected["verdict"], redirected["redirected"], redirected["rule"]) == (
        "tcp", "allowed", True, "web/ingress[0]")
    assert {k: request[k] for k in ("source", "destination", "destination_port", "protocol", "method", "path",
                                    "status", "verdict", "rule", "endpoint", "direction")} == {
        "source": "client-b", "destination": "web-a", "destination_port": 80, "protocol": "http", "method": "GET",
        "path": "/api/v1/items", "status": 200, "verdict": "allowed", "rule": "web/ingress[0]/http[0]",
        "endpoint": "web-a", "direction": "ingress"}
    watcher = watch_flows(lab, "node-b", "--verdict", "dropped", "--count", "1")
    assert run_matrix(lab, [MATRIX[3]]) == []
    (denied,) = flows_of(watcher)
    assert (denied["source"], denied["method"], denied["status"], denied["rule"], denied["endpoint"],
            denied["direction"]) == ("client-b", "POST", 403, "default-deny", "client-b", "egress")
    watcher = watch_flows(lab, "node-a", "--policy", "web", "--aggregate", "60", "--count", "4")
    assert run_matrix(lab, [MATRIX[0], MATRIX[2]]) == []
    folded = {(f["source"], f["port"], f["verdict"]): f["flows"] for f in flows_of(watcher)}
    assert folded == {("client-b", "tcp/80", "allowed"): 2, ("client-b", "http/80", "allowed"): 2}
    plain = subprocess.run([sys.executable, "-m", "netplanx", "flows", "--netns", lab.netns("node-a"), "--duration",
                            "0.5"], capture_output=True, text=True, env={**os.environ, "NETX_STATE_DIR":
                                                                          str(lab.state_dir)})
    assert plain.returncode == 0, plain.stderr


def test_a_rule_change_keeps_a_keep_alive_connection_and_new_connections_get_the_new_rules(lab):
    connection = keep_alive(ns(lab, "client-a"), ADDRESS["web-a"], 80)
    try:
        assert ask(connection, "GET", "/api/v1/a", {"X-Team": "blue"})[0] == 200
        narrower = POLICIES.replace('path: "/api/v1/.*"', 'path: "/api/v1/b.*"')
        planned = changes(lab, spec(narrower), "node-a")
        assert planned == {"l7rule.web-a.ingress.80": "update", "l7proxy.node": "update"}
        lab.apply(spec(narrower), ["node-a"])
        status, body, header = ask(connection, "GET", "/api/v1/a", {"X-Team": "blue"})
        assert (status, header.lower()) == (200, "close"), body  # the old worker, its rules, then it closes
        fresh = keep_alive(ns(lab, "client-a"), ADDRESS["web-a"], 80)
        try:
            assert ask(fresh, "GET", "/api/v1/a", {"X-Team": "blue"})[0] == 403
            assert ask(fresh, "GET", "/api/v1/b1", {"X-Team": "blue"})[0] == 200
        finally:
            fresh.close()
    finally:
        connection.close()
        lab.apply(spec(), ["node-a"])
    assert changes(lab, spec(), "node-a") == {}


def test_a_killed_proxy_and_an_edited_file_are_drift_that_apply_repairs(lab):
    proxy = Proxy(lab.netns("node-a"))
    master = proxy.pid()
    assert master is not None
    workers = [int(line.split()[0]) for line in proxy.ask(proxy.master_socket, "show proc").splitlines()
               if " worker " in line]
    handles = [os.pidfd_open(pid) for pid in (master, *workers)]
    try:
        signal.pidfd_send_signal(handles[0], signal.SIGKILL)
        for handle in handles:  # the workers leave with their master
            assert select.select([handle], [], [], 10)[0]
    finally:
        for handle in handles:
            os.close(handle)
    assert changes(lab, spec(), "node-a") == {"l7proxy.node": "create"}
    assert run_matrix(lab, [(*MATRIX[0][:6], 0, "no proxy: refused")]) == []
    lab.apply(spec(), ["node-a"])
    assert proxy.pid() not in (None, master)
    assert run_matrix(lab, MATRIX[:3]) == []
    scope = proxy.scopes / "web-a.ingress.80.cfg"
    scope.write_text(scope.read_text().replace("'^(?:GET)$'", "'^(?:GET|DELETE)$'"))
    proxy.reload()  # someone reloaded the edited file: DELETE is let through
    assert run_matrix(lab, [("client-b", "web-a", 80, "DELETE", "/api/v1/x", BLUE, 403, "client-b's egress"),
                            ("client-a", "web-a", 80, "GET", "/api/v1/x", BLUE, 200, "still allowed")]) == []
    planned = lab.plan(spec(), "node-a")
    found = {c["address"]: c for c in planned["changes"]}
    assert set(found) == {"l7rule.web-a.ingress.80", "l7proxy.node"}
    assert found["l7proxy.node"]["before"]["attrs"]["digest"].startswith("edited (files ")
    lab.apply(spec(), ["node-a"])
    assert "DELETE" not in scope.read_text()
    assert changes(lab, spec(), "node-a") == {}
    subprocess.run(["nsenter", f"--net=/run/netns/{lab.netns('node-a')}", "nft", "delete", "table", "inet",
                    "netx-l7"], check=True)
    assert changes(lab, spec(), "node-a") == {"nftables.inet.netx-l7": "create"}
    lab.apply(spec(), ["node-a"])
    assert run_matrix(lab, MATRIX[:2]) == []


def l7_state(lab: Lab, node: str) -> dict:
    """What the L7 redirect leaves on a node, read without netx."""
    netns = lab.netns(node)
    tables = subprocess.run(["nsenter", f"--net=/run/netns/{netns}", "nft", "list", "tables"], capture_output=True,
                            text=True, check=True).stdout
    return {"nft": "netx-l7" in tables, "rules": "2004" in ip("-n", netns, "rule", "show"),
            "routes": ip("-n", netns, "route", "show", "table", "2004", check=False).strip(),
            "folder": Proxy(netns).folder.exists(), "proxy": Proxy(netns).pid()}


def test_a_proxy_that_cannot_start_rolls_the_apply_back_and_removing_the_rules_leaves_nothing(lab):
    plain = POLICIES.replace("""          - port: 80
            rules:
              http:
                - {method: GET, path: "/api/v1/.*", headers: ["X-Team: blue"]}
                - {method: HEAD, path: /health}""", "          - port: 80")
    plain = plain.replace("{port: 80, rules: {http: [{method: GET|HEAD}]}}", "{port: 80}").replace(
        '{port: 80, rules: {http: [{method: GET, path: "/public/.*"}]}}', "{port: 80}")
    assert "rules" not in plain
    try:
        lab.apply(spec(plain))
        nothing = {"nft": False, "rules": False, "routes": "", "folder": False, "proxy": None}
        assert all(l7_state(lab, node) == nothing for node in NODES)
        assert run_matrix(lab, [(*MATRIX[1][:6], 200, "no L7 rules: L4 allows"), MATRIX[12]]) == []
        listener = namespaces.call_inside(lab.netns("node-a"), lambda: socket.create_server(("0.0.0.0", LISTENER_PORT)))
        try:
            path = lab.write(spec(), "occupied.yaml")
            done = lab.netx("node-a", "apply", str(path), "--auto-approve")
            assert done.returncode == 1, done.stdout + done.stderr
            assert "Address already in use" in done.stderr and "back where it was (verified)" in done.stderr, \
                done.stderr
            assert l7_state(lab, "node-a") == nothing
            assert changes(lab, spec(plain), "node-a") == {}
        finally:
            listener.close()
    finally:
        lab.apply(spec())
    assert run_matrix(lab, MATRIX[:2]) == []


def test_the_l7_config_holds_hostile_expressions_exactly(lab):
    """An expression with quotes, '#', '$', braces and backslashes reaches HAProxy as written (show acl)."""
    hostile = r"/q/(it's|\$x{1,2}|#h|\\|}|\{\})"
    text = POLICIES.replace('path: "/api/v1/.*"', "path: '" + hostile.replace("'", "''") + "'")
    lab.apply(spec(text), ["node-a"])
    try:
        proxy = Proxy(lab.netns("node-a"))
        listed = proxy.ask(proxy.stats_socket, "show acl")
        numbers = [line.split()[0] for line in listed.splitlines() if "'path'" in line]
        patterns = [proxy.ask(proxy.stats_socket, f"show acl #{n}").split(" ", 1)[-1].strip() for n in numbers]
        assert f"^(?:{hostile})$" in patterns, patterns
        assert run_matrix(lab, [("client-b", "web-a", 80, "GET", "/q/it's", BLUE, 200, "a quote"),
                                ("client-b", "web-a", 80, "GET", "/q/$xx", BLUE, 200, "a dollar"),
                                ("client-b", "web-a", 80, "GET", "/q/{}", BLUE, 200, "braces"),
                                ("client-b", "web-a", 80, "GET", "/q/x", BLUE, 403, "none of them")]) == []
    finally:
        lab.apply(spec(), ["node-a"])


def test_ingress_rules_apply_to_traffic_from_other_nodes_over_wireguard(tmp_path):
    """With encryption, traffic from other nodes comes in by WireGuard's device, which has no Ethernet header:
    from_remote_ip redirects it."""
    made = Lab(f"l7w{uuid.uuid4().hex[:5]}", ["node-a", "node-b"], tmp_path)
    try:
        made.up()
        endpoints = {"web-a": "node-a", "client-b": "node-b"}
        web_only = POLICIES.split("  - name: client")[0]
        text = lab_spec(made.name, made.nodes, endpoints=endpoints, keys=made.keys()) + web_only
        made.apply(text)
        assert made.plan(text, "node-a")["changes"] == []
        shown = json.loads(made.netx("node-a", "show", "-o", "json").stdout)
        assert {r["attrs"]["device"]: r["attrs"]["program"] for r in shown if r["kind"] == "l7hook"} == {
            "eth0": "from_remote", "netx-wg": "from_remote_ip"}
        with http_servers([(made.endpoint_netns("web-a"), ADDRESS["web-a"], [80])]):
            rows = [("client-b", "web-a", 80, "GET", "/api/v1/items", BLUE, 200, "over WireGuard"),
                    ("client-b", "web-a", 80, "GET", "/api/v2/items", BLUE, 403, "over WireGuard, denied")]
            cases = [(made.endpoint_netns(s), ADDRESS[d], port, method, path, headers)
                     for s, d, port, method, path, headers, _want, _why in rows]
            answers = curl_all(cases)
        assert [a.status for a in answers] == [200, 403], answers
        assert answers[0].body.split()[:2] == ["peer", ADDRESS["client-b"]]
    finally:
        made.down()

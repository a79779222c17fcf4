"""A three-node lab: endpoints talk across nodes in tunnel and native mode, the plans are exact."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid

import pytest

from netplanx.features.cluster.nodes import node_tunnel_mac
from netplanx.lab.cluster import Lab, lab_spec
from netplanx.system.probes import link_kind_error
from tests.conftest import IS_ROOT, assert_adopts, ip_json, snapshot
from tests.traffic import capture, ping, tcp_exchange

NODES = ["node-a", "node-b", "node-c"]
ENDPOINTS = {"web-a": "node-a", "web-b": "node-b", "db-c": "node-c"}
# lab_spec addresses: endpoint k of node i is 10.244.i.(10+k) and fd00:244:0:i::(10+k)
WEB_B, WEB_B6, DB_C, DB_C6 = "10.244.2.11", "fd00:244:0:2::b", "10.244.3.11", "fd00:244:0:3::b"


def spec(lab: Lab, mode: str = "tunnel", nodes: list[str] | None = None, endpoints: dict | None = None,
         protocol: str = "vxlan") -> str:
    return lab_spec(lab.name, nodes or lab.nodes, mode, ENDPOINTS if endpoints is None else endpoints, protocol)


def actions(plan: dict) -> dict[str, str]:
    return {c["address"]: c["action"] for c in plan["changes"]}


def all_reachable(lab: Lab) -> None:
    web_a = lab.endpoint_netns("web-a")
    for address in (WEB_B, WEB_B6, DB_C, DB_C6):
        assert ping(web_a, address), f"web-a cannot reach {address}"
    assert tcp_exchange(lab.endpoint_netns("web-b"), WEB_B, web_a) == f"hello 10.244.1.11 from {lab.name}-web-b"
    assert tcp_exchange(lab.endpoint_netns("db-c"), DB_C6, web_a).startswith("hello fd00:244:0:1::b from")


def test_tunnel_mode_connects_endpoints_over_vxlan(lab):
    results = lab.apply(spec(lab))
    assert all(r["result"] == "applied" for r in results.values())
    with capture(lab.underlay, "ul0", "udp port 8472") as vxlan, \
            capture(lab.underlay, "ul0", f"icmp and host {WEB_B}") as plain:
        all_reachable(lab)
    assert vxlan, "no VXLAN on the underlay"
    assert all("192.0.2." in line and ".8472" in line for line in vxlan)
    assert plain == [], "endpoint traffic crossed the underlay unencapsulated"
    tunnel = ip_json(lab.netns("node-a"), "-d", "link", "show", "netx-tunnel")[0]
    assert tunnel["mtu"] == 1450 and tunnel["linkinfo"]["info_data"]["external"] is True
    inside = ip_json(lab.endpoint_netns("web-a"), "link", "show", "eth0")[0]
    assert inside["mtu"] == 1450
    second = lab.apply(spec(lab))
    assert {r["result"] for r in second.values()} == {"no-changes"}
    assert {r["writes"] for r in second.values()} == {0}
    for node in NODES:
        adopted = assert_adopts(lab, node)
        assert f"is node {node} of cluster {lab.name} (netx made it from a cluster spec: netx plan " in adopted
        assert "encap: {type: ip, id: 42, dst: 192.0.2." in adopted and "neighbours:" in adopted
        assert f'mac: "{node_tunnel_mac(lab.name, node)}"' in adopted  # what the other nodes' neighbours name
    shutil.rmtree(lab.state_dir / "history" / lab.netns("node-b"))  # without it: the endpoint records, the MAC
    assert (f"# this namespace is node node-b of cluster {lab.name} (netx made it from a cluster spec: netx plan "
            "CLUSTER.yaml --node node-b describes it better);") in lab.netx("node-b", "show", "-o", "yaml").stdout


def test_native_mode_routes_plain_ip(lab):
    lab.apply(spec(lab, "native"))
    with capture(lab.underlay, "ul0", "udp port 8472") as vxlan, \
            capture(lab.underlay, "ul0", f"icmp and host {WEB_B}") as plain:
        all_reachable(lab)
    assert vxlan == [] and plain, "native mode must not encapsulate"
    routes = {r["dst"]: r for r in ip_json(lab.netns("node-a"), "route", "show")}
    assert routes["10.244.2.0/24"]["gateway"] == "192.0.2.12" and routes["10.244.2.0/24"]["dev"] == "eth0"
    assert {r["result"] for r in lab.apply(spec(lab, "native")).values()} == {"no-changes"}
    for node in NODES:
        assert_adopts(lab, node)


def test_mode_switch_is_an_exact_plan_and_traffic_returns(lab):
    lab.apply(spec(lab))
    to_native = lab.plan(spec(lab, "native"), "node-a")
    tunnel_objects = {"link.netx-tunnel", "address.netx-tunnel.10.244.1.0/32",
                      "address.netx-tunnel.fd00:244:0:1::/128"} | {
        f"neigh.netx-tunnel.{vtep}" for vtep in ("10.244.2.0", "10.244.3.0", "fd00:244:0:2::", "fd00:244:0:3::")}
    pod_routes = {f"route.main.{cidr}" for cidr in ("10.244.2.0/24", "10.244.3.0/24", "fd00:244:0:2::/64",
                                                    "fd00:244:0:3::/64")}
    assert actions(to_native) == {**dict.fromkeys(tunnel_objects, "delete"), **dict.fromkeys(pod_routes, "replace"),
                                  "link.ep-web-a": "update", "endpoint.web-a": "update"}
    labels = {c["address"]: c["disruption"] for c in to_native["changes"]}
    assert labels["link.netx-tunnel"] == "traffic loss" and labels["route.main.10.244.2.0/24"] == "route gap"
    assert labels["link.ep-web-a"] == "hitless"  # an MTU change
    lab.apply(spec(lab, "native"))
    all_reachable(lab)
    to_tunnel = lab.plan(spec(lab), "node-a")
    assert actions(to_tunnel) == {**dict.fromkeys(tunnel_objects, "create"),
                                  **{r: ("replace" if ":" in r else "update") for r in pod_routes},
                                  "link.ep-web-a": "update", "endpoint.web-a": "update"}
    lab.apply(spec(lab))
    all_reachable(lab)


def test_adding_and_removing_a_node_touches_exactly_its_entries(lab):
    lab.apply(spec(lab))
    lab.add_node("node-d", 3)
    four = [*lab.nodes, "node-d"]
    with_d = spec(lab, nodes=four, endpoints={**ENDPOINTS, "web-d": "node-d"})
    expected = {"neigh.netx-tunnel.10.244.4.0", "neigh.netx-tunnel.fd00:244:0:4::",
                "route.main.10.244.4.0/24", "route.main.fd00:244:0:4::/64"}
    for node in NODES:
        assert actions(lab.plan(with_d, node)) == dict.fromkeys(expected, "create")
    lab.nodes = four
    lab.apply(with_d)
    assert ping(lab.endpoint_netns("web-a"), "10.244.4.11") and ping(lab.endpoint_netns("web-d"), WEB_B6)
    without_d = spec(lab, nodes=NODES)
    for node in NODES:
        assert actions(lab.plan(without_d, node)) == dict.fromkeys(expected, "delete")
    lab.nodes = list(NODES)
    lab.apply(without_d)
    assert not ping(lab.endpoint_netns("web-a"), "10.244.4.11")


def test_endpoints_are_created_and_removed_as_resources(lab):
    lab.apply(spec(lab))
    plan = lab.plan(spec(lab, endpoints={"web-a": "node-a", "db-c": "node-c"}), "node-b")
    assert actions(plan) == {f"netns.{lab.name}-web-b": "delete", "link.ep-web-b": "delete",
                             "address.ep-web-b.169.254.1.1/32": "delete", "address.ep-web-b.fe80::1/64": "delete",
                             "route.main.10.244.2.11/32": "delete", "route.main.fd00:244:0:2::b/128": "delete",
                             "endpoint.web-b": "delete"}
    lab.apply(spec(lab, endpoints={"web-a": "node-a", "db-c": "node-c"}))
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"{lab.name}-web-b" not in namespaces and f"{lab.name}-web-a" in namespaces
    assert not ip_json(lab.netns("node-b"), "link", "show", "ep-web-b") if "ep-web-b" in subprocess.run(
        ["ip", "-n", lab.netns("node-b"), "link"], capture_output=True, text=True).stdout else True
    assert ping(lab.endpoint_netns("web-a"), DB_C)


@pytest.mark.kernel("geneve")
def test_tunnel_mode_connects_endpoints_over_geneve(lab):
    results = lab.apply(spec(lab, protocol="geneve"))
    assert {r["result"] for r in results.values()} == {"applied"}
    with capture(lab.underlay, "ul0", "udp port 6081") as geneve, \
            capture(lab.underlay, "ul0", f"icmp and host {WEB_B}") as plain:
        all_reachable(lab)
    assert geneve and all("192.0.2." in line and ".6081" in line for line in geneve), geneve[:3]
    assert plain == [], "endpoint traffic crossed the underlay unencapsulated"
    tunnel = ip_json(lab.netns("node-a"), "-d", "link", "show", "netx-tunnel")[0]
    assert tunnel["linkinfo"]["info_kind"] == "geneve" and tunnel["mtu"] == 1450
    assert {r["result"] for r in lab.apply(spec(lab, protocol="geneve")).values()} == {"no-changes"}
    assert_adopts(lab, "node-a")


@pytest.mark.skipif(link_kind_error("geneve") is None, reason="the kernel has geneve: nothing to refuse")
def test_geneve_is_refused_with_the_missing_kernel_feature(lab):
    path = lab.write(spec(lab, protocol="geneve"))
    before = ip_json(lab.netns("node-a"), "link", "show")
    result = lab.netx("node-a", "plan", str(path))
    assert result.returncode == 1
    assert "link.netx-tunnel: kernel lacks geneve" in result.stderr and "Traceback" not in result.stderr
    applied = lab.netx("node-a", "apply", str(path), "--auto-approve")
    assert applied.returncode == 1 and "nothing was changed" in applied.stderr
    assert ip_json(lab.netns("node-a"), "link", "show") == before
    assert not [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
                if n.startswith(f"{lab.name}-web")]


@pytest.mark.skipif(link_kind_error("geneve") is None, reason="the kernel has geneve: nothing to refuse")
def test_switching_a_running_overlay_to_geneve_is_refused_too(lab):
    """A replacement creates the new kind as much as a first apply does: the same plan error, nothing touched."""
    lab.apply(spec(lab))
    before = {node: snapshot(lab.netns(node)) for node in NODES}
    path = lab.write(spec(lab, protocol="geneve"))
    result = lab.netx("node-a", "plan", str(path), "--detailed-exitcode")
    assert result.returncode == 1 and "link.netx-tunnel: kernel lacks geneve" in result.stderr
    applied = lab.netx("node-a", "apply", str(path), "--auto-approve")
    assert applied.returncode == 1 and "nothing was changed" in applied.stderr
    assert {node: snapshot(lab.netns(node)) for node in NODES} == before
    assert ping(lab.endpoint_netns("web-a"), WEB_B)


def test_node_view_and_node_overrides(lab):
    text = spec(lab).replace('podCIDR6: "fd00:244:0:2::/64"}',
                             'podCIDR6: "fd00:244:0:2::/64", routes: [{to: 198.51.100.0/24, via: 192.0.2.1}], '
                             'sysctl: {net.ipv4.conf.all.rp_filter: 2}}')
    lab.apply(text)
    on_b = {r["dst"] for r in ip_json(lab.netns("node-b"), "route", "show")}
    on_a = {r["dst"] for r in ip_json(lab.netns("node-a"), "route", "show")}
    assert "198.51.100.0/24" in on_b and "198.51.100.0/24" not in on_a
    unknown = lab.netx("node-z", "plan", str(lab.write(text)))
    assert unknown.returncode == 1 and "node 'node-z' is not in cluster" in unknown.stderr


def test_lab_command_builds_a_working_lab_and_removes_it(tmp_path):
    if not IS_ROOT:
        pytest.skip("needs root: creates network namespaces")
    name = f"lc{uuid.uuid4().hex[:6]}"
    command = [sys.executable, "-m", "netplanx.lab"]
    try:
        up = subprocess.run([*command, "up", "--name", name, "--nodes", "2", "--dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
        assert up.returncode == 0, up.stderr
        assert f"ip netns exec {name}-web-a ping 10.244.2.11" in up.stdout
        assert ping(f"{name}-web-a", "10.244.2.11")
    finally:
        down = subprocess.run([*command, "down", "--name", name], capture_output=True, text=True)
    assert down.returncode == 0
    assert name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def inside_view(lab: Lab) -> dict:
    """What the endpoints of a lab look like from inside (addresses, routes, MTU; not the kernel's own
    link-local address, whose duplicate address detection finishes in its own time)."""
    view = {}
    for endpoint in ENDPOINTS:
        namespace = lab.endpoint_netns(endpoint)
        link = ip_json(namespace, "addr", "show", "eth0")[0]
        addresses = sorted((a["local"], a["prefixlen"]) for a in link["addr_info"] if a["scope"] != "link")
        view[endpoint] = (link["mtu"], link["ifindex"], addresses, ip_json(namespace, "route", "show"),
                          [r for r in ip_json(namespace, "-6", "route", "show") if not r["dst"].startswith("fe80")])
    return view


def test_failure_at_every_step_of_a_mode_switch_rolls_back(lab):
    lab.apply(spec(lab))
    before = (snapshot(lab.netns("node-a")), inside_view(lab))
    native = lab.write(spec(lab, "native"), "native.yaml")
    steps = len(lab.plan(spec(lab, "native"), "node-a")["steps"])
    assert steps >= 15
    for step in range(1, steps + 1):
        failed = subprocess.run(
            [sys.executable, "-m", "netplanx", "apply", str(native), "--auto-approve", "--node", "node-a",
             "--netns", lab.netns("node-a")], capture_output=True, text=True, timeout=120,
            env={**os.environ, "NETX_STATE_DIR": str(lab.state_dir), "NETX_FAILPOINT_STEP": str(step)})
        assert failed.returncode == 1 and "back where it was (verified)" in failed.stderr, failed.stderr
        assert (snapshot(lab.netns("node-a")), inside_view(lab)) == before, f"step {step}"
    all_reachable(lab)


def test_a_node_leaving_the_spec_is_retired_with_an_empty_spec_from_standard_input(lab):
    lab.apply(spec(lab))
    without_c = lab.write(spec(lab, nodes=["node-a", "node-b"], endpoints={"web-a": "node-a", "web-b": "node-b"}))
    refused = lab.netx("node-c", "plan", str(without_c))
    assert refused.returncode == 1 and "to retire this node" in refused.stderr
    assert "echo 'apiVersion: netx/v1' | netx apply - --auto-approve" in refused.stderr
    env = {**os.environ, "NETX_STATE_DIR": str(lab.state_dir)}
    retired = subprocess.run([sys.executable, "-m", "netplanx", "apply", "-", "--auto-approve", "--netns",
                              lab.netns("node-c")], input="apiVersion: netx/v1\n", capture_output=True, text=True,
                             env=env, timeout=120)
    assert retired.returncode == 0, retired.stderr
    links = {link["ifname"] for link in ip_json(lab.netns("node-c"), "link", "show")}
    assert links == {"lo", "eth0"}  # the tunnel and the endpoint veth are gone; the NIC stays
    assert f"{lab.name}-db-c" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout

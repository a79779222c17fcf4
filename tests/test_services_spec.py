"""Services in the spec: positioned errors, what a node compiles, and the ctypes mirrors of the map header."""

from __future__ import annotations

import ctypes
import re

import pytest

from netplanx.features.services.lbmaps import LB, MAP_TYPES, RESERVED_PORTS, SOCKET_HOOKS
from netplanx.spec.compile import compile_spec
from netplanx.spec.validate import parse_spec
from tests.specs import problems_of, spec

SOURCE = "services.yaml"
HEAD = """\
    apiVersion: netx/v1
    cluster:
      name: demo
      podCIDR: 10.244.0.0/16
      nodes:
        - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24}
    endpoints:
      - {name: web-1, node: node-a, address: 10.244.1.11}
      - {name: web-2, node: node-a, address: 10.244.1.12}
    services:
"""

CASES = [
    pytest.param("""\
      - {name: web, vip: 10.96.0.10, port: 80, backends: [{endpoint: web-9}]}
""", 11, 64, "endpoint 'web-9' does not exist (allowed: web-1, web-2)", id="unknown-endpoint"),
    pytest.param("""\
      - {name: web, vip: 10.96.0.10, port: 80, backends: [{endpoint: web-1}]}
      - {name: api, vip: 10.96.0.10, port: 80, backends: [{endpoint: web-2}]}
""", 12, 20, "10.96.0.10:80/tcp is already service web's", id="same-frontend"),
    pytest.param("""\
      - {name: web, vip: 10.96.0.10, port: 80}
      - {name: web, vip: 10.96.0.11, port: 80}
""", 12, 10, "service name 'web' is declared twice", id="same-name"),
    pytest.param("""\
      - {name: web, vip: 10.96.0.10, port: 80, maglevTableSize: 1000}
""", 11, 59, "maglevTableSize 1000 is not one of the allowed primes", id="table-size"),
    pytest.param("""\
      - {name: web, vip: 10.96.0.10, port: 80, protocol: sctp}
""", 11, 52, "sctp", id="protocol"),
    pytest.param("""\
      - {name: web, vip: 10.96.0.10, port: 80, backends: [{endpoint: web-1, address: 10.0.0.1}]}
""", 11, 53, "exactly one of endpoint or address", id="backend-target"),
    pytest.param("""\
      - {name: web, vip: 10.96.0.10, port: 80, backends: [{endpoint: web-1}, {address: 10.244.1.11}]}
""", 11, 72, "backend 10.244.1.11:80 is listed twice", id="same-backend"),
    pytest.param("""\
      - {name: web, vip: 10.96.0, port: 80}
""", 11, 20, "'10.96.0' is not an IP address (allowed: a unicast IPv4 or IPv6 address", id="not-an-address"),
    pytest.param("""\
      - {name: web, vip: 0.0.0.0, port: 80}
""", 11, 20, "'0.0.0.0' is unspecified (0.0.0.0/8, 'this network')", id="unspecified-vip"),
    pytest.param("""\
      - {name: web, vip: 255.255.255.255, port: 80}
""", 11, 20, "'255.255.255.255' is the broadcast address", id="broadcast-vip"),
    pytest.param("""\
      - {name: web, vip: 224.0.0.1, port: 80}
""", 11, 20, "'224.0.0.1' is multicast (224.0.0.0/4)", id="multicast-vip"),
    pytest.param("""\
      - {name: web, vip: 127.0.0.1, port: 80}
""", 11, 20, "'127.0.0.1' is loopback (127.0.0.0/8)", id="loopback-vip"),
    pytest.param("""\
      - {name: web, vip: 10.96.0.10, port: 80, backends: [{address: 127.0.0.1}]}
""", 11, 63, "'127.0.0.1' is loopback (127.0.0.0/8)", id="loopback-backend"),
    pytest.param("""\
      - {name: web, vip: 10.96.0.10, port: 80, backends: [{address: 10.0.0.1}, {address: 10.96.0.10}]}
""", 11, 74, "backend 10.96.0.10:80 is the service's own VIP and port", id="backend-is-the-vip"),
    pytest.param("""\
      - {name: web, vip: 10.96.0.10, port: 80, backends: [{address: 10.96.0.10, port: 8080}, {address: 10.96.0.10}]}
""", 11, 88, "backend 10.96.0.10:80 is the service's own VIP and port", id="backend-is-the-vip-by-default-port"),
    pytest.param("""\
      - {name: web, vip: "::", port: 80}
""", 11, 20, "'::' is unspecified (::)", id="unspecified-vip6"),
    pytest.param("""\
      - {name: web, vip: "::1", port: 80}
""", 11, 20, "'::1' is loopback (::1)", id="loopback-vip6"),
    pytest.param("""\
      - {name: web, vip: "ff02::1", port: 80}
""", 11, 20, "'ff02::1' is multicast (ff00::/8)", id="multicast-vip6"),
    pytest.param("""\
      - {name: web, vip: "fe80::10", port: 80}
""", 11, 20, "'fe80::10' is link-local (fe80::/10)", id="link-local-vip6"),
    pytest.param("""\
      - {name: web, vip: "::ffff:10.96.0.10", port: 80}
""", 11, 20, "'::ffff:10.96.0.10' is IPv4-mapped (::ffff:0:0/96)", id="mapped-vip6"),
    pytest.param("""\
      - {name: web, vip: 10.96.0.10, vip6: 10.96.0.11, port: 80}
""", 11, 38, "'10.96.0.11' is an IPv4 address (allowed: a unicast IPv6 address such as fd00:96::10", id="vip6-ipv4"),
    pytest.param("""\
      - {name: web, vip: "fd00:96::1", vip6: "fd00:96::2", port: 80}
""", 11, 40, "vip6 makes the service dual-stack, so vip must be IPv4, not fd00:96::1", id="vip6-with-ipv6-vip"),
    pytest.param("""\
      - {name: web, vip: 10.96.0.10, vip6: "fd00:96::10", port: 80}
      - {name: api, vip: "fd00:96::10", port: 80}
""", 12, 20, "[fd00:96::10]:80/tcp is already service web's", id="same-frontend6"),
    pytest.param("""\
      - {name: web, vip: 10.96.0.10, port: 80, backends: [{address: "fd00::1"}]}
""", 11, 53, "backend fd00::1 is IPv6, the service's VIP IPv4 (allowed: a backend of a VIP's family",
                 id="backend-family"),
    pytest.param("""\
      - {name: web, vip: "fd00:96::10", port: 80, backends: [{endpoint: web-1}]}
""", 11, 56, "endpoint 'web-1' has no IPv6 address (allowed: a backend of a VIP's family", id="endpoint-without-ipv6"),
    pytest.param("""\
      - {name: web, vip: 10.96.0.10, vip6: "fd00:96::10", port: 80, backends: [{endpoint: web-1}]}
""", 11, 38, "vip6 fd00:96::10 has no IPv6 backend: its connections would be dropped", id="vip6-without-backend"),
    pytest.param("""\
      - {name: web, vip: "fd00:96::10", port: 80, backends: [{address: "fd00:96::10"}]}
""", 11, 56, "backend [fd00:96::10]:80 is the service's own VIP and port", id="backend-is-the-vip6"),
]


@pytest.mark.parametrize(("services", "line", "col", "message"), CASES)
def test_service_spec_error_is_positioned(services: str, line: int, col: int, message: str) -> None:
    problems = problems_of(spec(HEAD) + spec(services), SOURCE)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{SOURCE}:{line}:{col}: "), problems[0]
    assert message in problems[0], problems[0]
    assert "allowed: " in problems[0]


def test_a_host_runs_its_services_on_its_endpoints_veths() -> None:
    """Without cluster, the services run on the host: on its endpoints' veths, backends by address too."""
    parsed, _ = parse_spec(spec("""\
        apiVersion: netx/v1
        endpoints:
          - {name: web-1, netns: web, address: 10.244.1.11}
        services:
          - {name: web, vip: 10.96.0.10, port: 80, backends: [{endpoint: web-1, port: 8080}, {address: 10.0.0.1}]}
        """), SOURCE)
    resources = {r.address: r for r in compile_spec(parsed)}
    assert resources["service.web"].attrs["backends"] == {"10.244.1.11:8080": 1, "10.0.0.1:80": 1}
    assert {a for a in resources if a.startswith(("datapath.", "bpfprog."))} == {
        "bpfprog.lb", "datapath.ep-web-1.ingress", "datapath.ep-web-1.egress"}


def test_a_host_runs_its_load_balancer_on_its_devices_too() -> None:
    parsed, _ = parse_spec(spec("""\
        apiVersion: netx/v1
        interfaces:
          - {name: eth0, type: device}
          - {name: eth1, type: device}
        services:
          - {name: web, vip: 10.96.0.10, port: 80, backends: [{address: 10.0.0.1}]}
        loadBalancerDevices:
          - {name: eth0, mode: xdpGeneric, masquerade: 192.0.2.11}
          - {name: eth1}
        """), SOURCE)
    resources = {r.address: r for r in compile_spec(parsed)}
    assert resources["datapath.eth0.xdp"].attrs["mode"] == "xdp-generic"
    assert resources["datapath.eth0.xdp"].attrs["masquerade"] == "192.0.2.11"
    assert resources["datapath.eth1.ingress"].attrs["masquerade"] is None and "datapath.eth1.egress" in resources
    assert "sysctl.net.ipv4.conf.eth0.accept_local" in resources
    assert "sysctl.net.ipv4.conf.eth1.accept_local" not in resources


@pytest.mark.parametrize(("text", "line", "col", "message"), [
    pytest.param("""\
        apiVersion: netx/v1
        services:
          - {name: web, vip: 10.96.0.10, port: 80}
        loadBalancerDevices:
          - {name: eth9}
        """, 5, 12, "device 'eth9' is not declared (allowed: an interface in interfaces: none declared)",
        id="undeclared-device"),
    pytest.param("""\
        apiVersion: netx/v1
        interfaces:
          - {name: eth0, type: device}
        loadBalancerDevices:
          - {name: eth0}
        """, 5, 5, "a load balancer device needs services (allowed: add services:)", id="no-services"),
])
def test_load_balancer_device_error_is_positioned(text: str, line: int, col: int, message: str) -> None:
    problems = problems_of(spec(text), SOURCE)
    assert problems == [f"{SOURCE}:{line}:{col}: {message}"]


def test_a_node_compiles_its_services_and_attachments() -> None:
    text = spec(HEAD).replace("address: 192.0.2.11,", "address: 192.0.2.11,").replace(
        "podCIDR: 10.244.0.0/16", "podCIDR: 10.244.0.0/16\n  underlay: {loadBalancer: xdp}") + spec("""\
          - {name: web, vip: 10.96.0.10, port: 80, maglevTableSize: 251,
             backends: [{endpoint: web-1, port: 8080}, {address: 10.244.9.9, weight: 3}]}
        """)
    parsed, _ = parse_spec(text, SOURCE)
    resources = {r.address: r for r in compile_spec(parsed, "node-a")}
    web = resources["service.web"]
    assert web.attrs["backends"] == {"10.244.1.11:8080": 1, "10.244.9.9:80": 3}
    assert web.attrs["maglev"]["size"] == 251 and re.fullmatch(r"[0-9a-f]{12}", web.attrs["maglev"]["table"])
    assert resources["bpfprog.lb"].attrs == {"version": LB.version, "maps": LB.map_version}
    assert {a for a in resources if a.startswith("datapath.")} == {
        "datapath.ep-web-1.ingress", "datapath.ep-web-1.egress", "datapath.ep-web-2.ingress",
        "datapath.ep-web-2.egress", "datapath.eth0.xdp", "datapath.eth0.egress"}
    assert resources["datapath.eth0.xdp"].attrs["masquerade"] == "192.0.2.11"
    assert resources["datapath.ep-web-1.ingress"].attrs["masquerade"] is None
    assert resources["sysctl.net.ipv4.conf.eth0.accept_local"].attrs["value"] in (1, "1")
    assert resources["sysctl.net.ipv4.ip_local_reserved_ports"].attrs["value"] == "61000-65535"  # masquerade
    assert resources["datapath.eth0.xdp"].attrs["mode"] == "xdp"  # made concrete when planned, on the node


def test_ctypes_mirrors_match_the_header() -> None:
    """Each struct of bpf/lb_maps.h has the size its ctypes mirror has (read from the C text; a struct field
    counts the size of its struct, fields are aligned to 4 bytes or to 8 for 64-bit ones)."""
    header = LB.maps_header.read_text()
    sizes = {"__u8": 1, "__u16": 2, "__be16": 2, "__u32": 4, "__be32": 4, "__u64": 8, "int": 4, "char": 1}
    structs: dict[str, int] = {}
    for name, body in re.findall(r"struct (\w+) \{(.*?)\};", header, re.S):
        total, align = 0, 1
        for nested, kind, _field, count in re.findall(r"^\s*(?:struct (\w+)|(\w+)) (\w+)(?:\[(\d+)\])?;", body,
                                                       re.M):
            size = structs[nested] if nested else sizes[kind]
            unit = 4 if nested else size
            total = -(-total // unit) * unit + size * int(count or 1)
            align = max(align, unit)
        structs[name] = -(-total // align) * align
    mirrors = {"lb_svc_key": MAP_TYPES["lb_svc"][0], "lb_svc_val": MAP_TYPES["lb_svc"][1],
               "lb_be_val": MAP_TYPES["lb_be"][1], "lb_ct_key": MAP_TYPES["lb_ct"][0],
               "lb_ct_val": MAP_TYPES["lb_ct"][1], "lb_stats": MAP_TYPES["lb_stats"][1],
               "lb_name": MAP_TYPES["lb_names"][1], "lb_masq": MAP_TYPES["lb_masq"][1],
               "lb_sk_rev_key": MAP_TYPES["lb_sk_rev"][0], "lb_sk_rev_val": MAP_TYPES["lb_sk_rev"][1],
               "lb_sk_client": MAP_TYPES["lb_sk_client"][1]}
    assert {n: structs[n] for n in mirrors} == {n: ctypes.sizeof(t) for n, t in mirrors.items()}
    assert structs["lb_ct_key"] == 40 and structs["lb_ct_val"] == 56  # the dual-stack layout


@pytest.mark.parametrize(("declared", "reserved"), [
    ("", "61000-65535"), ("30000-32767", "30000-32767,61000-65535"), ("61000-62000, 8080", "8080,61000-65535"),
    ("60000-61500,65535", "60000-65535")])
def test_the_masquerade_ports_join_the_ports_the_spec_reserves_itself(declared: str, reserved: str) -> None:
    """One resource holds net.ipv4.ip_local_reserved_ports: it keeps the spec's own reservations too."""
    text = spec(HEAD).replace("podCIDR: 10.244.0.0/16", "podCIDR: 10.244.0.0/16\n  underlay: {loadBalancer: tc}")
    text += spec("""\
          - {name: web, vip: 10.96.0.10, port: 80, backends: [{endpoint: web-1}]}
        """) + (f"sysctl:\n  net.ipv4.ip_local_reserved_ports: '{declared}'\n" if declared else "")
    parsed, _ = parse_spec(text, SOURCE)
    found = [r.attrs["value"] for r in compile_spec(parsed, "node-a") if r.address == f"sysctl.{RESERVED_PORTS}"]
    assert found == [reserved]  # one resource an address: the services' holds both


def test_a_dual_stack_service_balances_each_vip_over_the_backends_of_its_family() -> None:
    text = spec(HEAD).replace("address: 10.244.1.11}", 'address: 10.244.1.11, address6: "fd00:244:0:1::11"}').replace(
        "podCIDR: 10.244.1.0/24}", 'podCIDR: 10.244.1.0/24, podCIDR6: "fd00:244:0:1::/64"}').replace(
        "podCIDR: 10.244.0.0/16", 'podCIDR: 10.244.0.0/16\n  podCIDR6: "fd00:244::/48"') + spec("""\
          - {name: web, vip: 10.96.0.10, vip6: "fd00:96::10", port: 80,
             backends: [{endpoint: web-1, port: 8080}, {endpoint: web-2}, {address: "fd00:244:9::9", weight: 3}]}
          - {name: v6, vip: "fd00:96::11", port: 80, backends: [{endpoint: web-1}]}
        """)
    parsed, _ = parse_spec(text, SOURCE)
    resources = {r.address: r for r in compile_spec(parsed, "node-a")}
    web = resources["service.web"].attrs
    assert (web["vip"], web["vip6"]) == ("10.96.0.10", "fd00:96::10")
    assert web["backends"] == {"10.244.1.11:8080": 1, "10.244.1.12:80": 1, "[fd00:244:0:1::11]:8080": 1,
                               "[fd00:244:9::9]:80": 3}  # web-2 has no IPv6 address: an IPv4 backend only
    assert set(web["maglev"]) == {"size", "table", "table6"}
    v6 = resources["service.v6"].attrs
    assert (v6["vip"], v6["vip6"], v6["backends"]) == ("fd00:96::11", None, {"[fd00:244:0:1::11]:80": 1})


CLUSTER_SOCKETS = HEAD.replace("""\
        - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24}
""", """\
        - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24, socketLB: {cgroup: kubepods/node-a}}
        - {name: node-b, address: 192.0.2.12, podCIDR: 10.244.2.0/24}
        - {name: node-c, address: 192.0.2.13, podCIDR: 10.244.3.0/24, socketLB: {enabled: false}}
""")


def test_socket_lb_is_the_specs_or_a_nodes_own() -> None:
    """socketLB at the top applies to every node; a node's own replaces it. Each node attaches the socket
    programs to its cgroup and registers its endpoints' addresses (clientIP affinity of their sockets)."""
    text = spec(CLUSTER_SOCKETS) + spec("""\
          - {name: web, vip: 10.96.0.10, port: 80, backends: [{endpoint: web-1}]}
        socketLB: {cgroup: /sys/fs/cgroup/unified/netx-workloads}
        """)
    parsed, _ = parse_spec(text, SOURCE)
    for node, cgroup in (("node-a", "kubepods/node-a"), ("node-b", "/sys/fs/cgroup/unified/netx-workloads")):
        resources = {r.address: r for r in compile_spec(parsed, node)}
        assert resources["socklb.cgroup"].attrs == {"cgroup": cgroup, "hooks": dict.fromkeys(SOCKET_HOOKS, LB.version)}
        clients = {a: r.attrs for a, r in resources.items() if a.startswith("lbclient.")}
        assert clients == ({"lbclient.web-1": {"netns": "demo-web-1", "addresses": ["10.244.1.11"]},
                            "lbclient.web-2": {"netns": "demo-web-2", "addresses": ["10.244.1.12"]}}
                           if node == "node-a" else {})
    assert not any(r.kind in ("socklb", "lbclient") for r in compile_spec(parsed, "node-c"))


@pytest.mark.parametrize(("text", "line", "col", "message"), [
    pytest.param("""\
        apiVersion: netx/v1
        socketLB: {cgroup: netx-workloads}
        """, 2, 11, "socket-level load balancing needs services (allowed: add services:, or enabled: false)",
        id="no-services"),
    pytest.param("""\
        apiVersion: netx/v1
        services:
          - {name: web, vip: 10.96.0.10, port: 80}
        socketLB: {enabled: true}
        """, 4, 11, "socketLB needs the cgroup of the workloads (allowed: cgroup: PATH below the cgroup v2 mount",
        id="no-cgroup"),
    pytest.param("""\
        apiVersion: netx/v1
        services:
          - {name: web, vip: 10.96.0.10, port: 80}
        socketLB: {cgroup: workloads/../system.slice}
        """, 4, 20, "cgroup 'workloads/../system.slice' is not a normalized path below the cgroup root (allowed: a "
                    "path below the cgroup v2 mount", id="dot-dot"),
    pytest.param("""\
        apiVersion: netx/v1
        services:
          - {name: web, vip: 10.96.0.10, port: 80}
        socketLB: {cgroup: /}
        """, 4, 20, "cgroup '/' is not a normalized path below the cgroup root", id="root"),
])
def test_socket_lb_error_is_positioned(text: str, line: int, col: int, message: str) -> None:
    problems = problems_of(spec(text), SOURCE)
    assert len(problems) == 1 and problems[0].startswith(f"{SOURCE}:{line}:{col}: "), problems
    assert message in problems[0] and "allowed: " in problems[0]


def test_a_nodes_socket_lb_error_is_positioned_on_the_node() -> None:
    problems = problems_of(spec(CLUSTER_SOCKETS).replace("services:\n", ""), SOURCE)
    assert problems == [f"{SOURCE}:6:77: socket-level load balancing needs services (allowed: add services:, or "
                        "enabled: false)"]

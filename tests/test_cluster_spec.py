"""Cluster specs without root: positioned errors of nodes and endpoints, and what each node compiles.

Error cases follow tests/test_spec_errors.py: a small spec written inline (``textwrap.dedent``: the first
line of the text is line 1), the position it must be reported at, and a distinctive part of the message.
Most specs start with the four lines of ``demo``, so their rows begin at line 5. Where only a few lines of
one node, of the routing or of the endpoints vary, a row gives just those lines to ``node``, ``routing`` or
``endpoints`` (each says on which line they start).
Compile cases use the lab's generator: node i has 192.0.2.1i, 2001:db8::1i, pods 10.244.i.0/24 and
fd00:244:0:i::/64; endpoint k of a node gets host .1k of it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from netplanx.engine.resource import Resource
from netplanx.errors import PlanError, SpecError
from netplanx.features.cluster.nodes import find_node, tunnel_mac
from netplanx.lab.cluster import NODE_NAMES, lab_spec
from netplanx.spec.compile import compile_spec
from netplanx.spec.model import Spec
from netplanx.spec.semantic import node_views
from netplanx.spec.validate import parse_spec
from tests.specs import one_problem, spec

SOURCE = "cluster.yaml"
NODES = ["node-a", "node-b", "node-c"]
ENDPOINTS = {"web-a": "node-a", "web-b": "node-b", "db-c": "node-c"}
LAB_WEB = {f"web-{n[-1]}": n for n in NODE_NAMES}  # an endpoint on each node of the lab
NAME_RULE = "(allowed: 1-40 lower-case letters, digits and '-', starting and ending with a letter or digit)"
LONG = "n" * 41
DEMO = """\
        apiVersion: netx/v1
        cluster:
          name: demo
          podCIDR: 10.244.0.0/16
"""
NODE_A = "{name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24}"


def demo(rest: str) -> str:
    """The spec of cluster demo: its first four lines, then ``rest`` (written with the tables' 8-space margin).

    The first line of ``rest`` is line 5 of the spec.
    """
    return spec(DEMO + rest)


def node(*lines: str, name: str = "node-a") -> str:
    """The demo cluster with one node written as a block: ``name`` on line 6, its other keys ``lines`` from line 7."""
    return spec(DEMO) + f"  nodes:\n    - name: {name}\n" + "".join(f"      {line}\n" for line in lines)


def named(name: str) -> str:
    """The demo cluster with one node, NODE_A, but ``name`` for its name (line 3)."""
    return spec(DEMO).replace("name: demo", f"name: {name}") + f"  nodes:\n    - {NODE_A}\n"


def routing(*lines: str) -> str:
    """The demo cluster with one node, NODE_A, and a routing section (line 5) whose ``lines`` start at line 6."""
    return spec(DEMO) + "  routing:\n" + "".join(f"    {line}\n" for line in lines) + f"  nodes:\n    - {NODE_A}\n"


def endpoints(*lines: str) -> str:
    """The demo cluster with one node, NODE_A (line 6), and endpoints whose ``lines`` start at line 8."""
    return spec(DEMO) + f"  nodes:\n    - {NODE_A}\nendpoints:\n" + "".join(f"  {line}\n" for line in lines)


# (text, line, col, distinctive part of the message); exactly one problem is expected for each.
CASES = [
    # --- nodes against each other ---------------------------------------------------------------------
    pytest.param(demo("""\
          nodes:
            - name: node-a
              address: 192.0.2.11
              podCIDR: 10.244.1.0/24
            - name: node-b
              address: 192.0.2.12
              podCIDR: 10.244.1.128/25
        """), 11, 16, "podCIDR 10.244.1.128/25 overlaps 10.244.1.0/24 of node node-a (allowed: disjoint pod networks)",
        id="node-pod-cidr-overlap-ipv4"),
    pytest.param(demo("""\
          podCIDR6: "fd00:244::/48"
          nodes:
            - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24, podCIDR6: "fd00:244:0:1::/64"}
            - name: node-b
              address: 192.0.2.12
              podCIDR: 10.244.2.0/24
              podCIDR6: "fd00:244::/56"
        """), 11, 17, 'podCIDR6 fd00:244::/56 overlaps fd00:244:0:1::/64 of node node-a (allowed: disjoint',
        id="node-pod-cidr-overlap-ipv6"),
    pytest.param(demo("""\
          nodes:
            - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24}
            - {name: node-b, address: 192.0.2.12, podCIDR: 10.244.2.0/24}
            - name: node-a
              address: 192.0.2.13
              podCIDR: 10.244.3.0/24
        """), 8, 13, "node name 'node-a' is declared twice (first at cluster.nodes[0]; allowed: unique node names)",
        id="duplicate-node-name"),
    pytest.param(demo("""\
          nodes:
            - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24}
            - name: node-b
              address: 192.0.2.11
              podCIDR: 10.244.2.0/24
        """), 8, 16, "address 192.0.2.11 is already the address of node node-a (allowed: one address a node)",
        id="duplicate-node-address"),
    pytest.param(demo("""\
          nodes:
            - {name: node-a, address: 192.0.2.11, address6: "2001:db8::11", podCIDR: 10.244.1.0/24}
            - name: node-b
              address: 192.0.2.12
              address6: "2001:db8:0:0::11"
              podCIDR: 10.244.2.0/24
        """), 9, 17, "address 2001:db8::11 is already the address of node node-a (allowed: one address a node)",
        id="duplicate-node-address6"),
    # --- nodes against the cluster's ranges ------------------------------------------------------------
    pytest.param(node("address: 192.0.2.11", "podCIDR: 10.245.1.0/24"),
        8, 16, "podCIDR 10.245.1.0/24 is outside the cluster's 10.244.0.0/16 (allowed: a subnet of "
        "10.244.0.0/16)", id="node-pod-cidr-outside-cluster"),
    pytest.param(demo("""\
          podCIDR6: "fd00:244::/48"
          nodes:
            - name: node-a
              address: 192.0.2.11
              podCIDR: 10.244.1.0/24
              podCIDR6: "fd00:245:0:1::/64"
        """), 10, 17, "podCIDR6 fd00:245:0:1::/64 is outside the cluster's fd00:244::/48",
        id="node-pod-cidr6-outside-cluster"),
    pytest.param(demo("""\
          podCIDR6: "fd00:244::/48"
          nodes:
            - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24, podCIDR6: "fd00:244:0:1::/64"}
            - name: node-b
              address: 192.0.2.12
              podCIDR: 10.244.2.0/24
        """), 8, 7, "node node-b has no podCIDR6 while the cluster has one (allowed: a podCIDR6 inside "
        "fd00:244::/48 on every node)", id="node-without-pod-cidr6"),
    pytest.param(node("address: 192.0.2.11", "podCIDR: 10.244.1.0/24", 'podCIDR6: "fd00:244:0:1::/64"'),
        9, 17, "node podCIDR6 fd00:244:0:1::/64 but the cluster has no podCIDR6 (allowed: set "
        "cluster.podCIDR6, or drop this one)", id="node-pod-cidr6-without-cluster-pod-cidr6"),
    pytest.param(demo("""\
          podCIDR6: "fd00:244::/48"
          routing: {mode: native}
          nodes:
            - name: node-a
              address: 192.0.2.11
              address6: "2001:db8::11"
              podCIDR: 10.244.1.0/24
              podCIDR6: "fd00:244:0:1::/64"
            - name: node-b
              address: 192.0.2.12
              podCIDR: 10.244.2.0/24
              podCIDR6: "fd00:244:0:2::/64"
        """), 13, 7, "native routing of IPv6 needs node node-b's address6 (allowed: an IPv6 underlay address, "
        "or mode tunnel)", id="native-ipv6-node-without-address6"),
    # --- endpoints -------------------------------------------------------------------------------------
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - {name: lo, type: device}
        endpoints:
          - name: web
            node: node-a
            address: 10.244.1.11
        """), 6, 11, "node 'node-a' needs a cluster section (allowed: add cluster: with the nodes, or omit node",
        id="endpoint-node-without-cluster"),
    pytest.param(demo("""\
          nodes:
            - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24}
            - {name: node-b, address: 192.0.2.12, podCIDR: 10.244.2.0/24}
        endpoints:
          - name: web
            node: node-x
            address: 10.244.1.11
        """), 10, 11, "node 'node-x' is not in the cluster (allowed: node-a, node-b)", id="endpoint-unknown-node"),
    pytest.param(demo("""\
          nodes:
            - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24}
            - {name: node-b, address: 192.0.2.12, podCIDR: 10.244.2.0/24}
        endpoints:
          - name: web
            node: node-a
            address: 10.244.2.11
        """), 11, 14, "address 10.244.2.11 is not a usable address of node node-a's 10.244.1.0/24 (allowed: an "
        "address inside it, not its first or last)", id="endpoint-address-outside-node-pod-cidr"),
    pytest.param(endpoints("- {name: web, node: node-a, address: 10.244.1.0}"),
        8, 40, "address 10.244.1.0 is not a usable address of node node-a's 10.244.1.0/24",
        id="endpoint-address-is-pod-network-address"),
    pytest.param(endpoints("- {name: web, node: node-a, address: 10.244.1.255}"),
        8, 40, "address 10.244.1.255 is not a usable address of node node-a's 10.244.1.0/24",
        id="endpoint-address-is-broadcast"),
    pytest.param(demo("""\
          podCIDR6: "fd00:244::/48"
          nodes:
            - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24, podCIDR6: "fd00:244:0:1::/64"}
        endpoints:
          - name: web
            node: node-a
            address: 10.244.1.11
            address6: "fd00:244:0:1::"
        """), 12, 15, "address6 fd00:244:0:1:: is not a usable address of node node-a's fd00:244:0:1::/64",
        id="endpoint-address6-is-pod-network-address"),
    pytest.param(endpoints("- {name: web, node: node-a, address: 10.244.1.11}",
                           "- {name: web, node: node-a, address: 10.244.1.12}"),
        9, 12, "endpoint name 'web' is declared twice (first at endpoints[0]; allowed: unique names)",
        id="duplicate-endpoint-name"),
    pytest.param(endpoints("- {name: web, node: node-a, address: 10.244.1.11}",
                           "- {name: db, node: node-a, address: 10.244.1.11}"),
        9, 39, "address 10.244.1.11 is already used by endpoint web (allowed: one endpoint an address)",
        id="duplicate-endpoint-address"),
    pytest.param(demo("""\
          podCIDR6: "fd00:244::/48"
          nodes:
            - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24, podCIDR6: "fd00:244:0:1::/64"}
        endpoints:
          - {name: web, node: node-a, address: 10.244.1.11, address6: "fd00:244:0:1::b"}
          - name: db
            node: node-a
            address: 10.244.1.12
            address6: "fd00:244:0:1:0::b"
        """), 13, 15, "address6 fd00:244:0:1::b is already used by endpoint web (allowed: one endpoint an address)",
        id="duplicate-endpoint-address6"),
    pytest.param(endpoints("- name: web", "  node: node-a", "  address: 10.244.1.11", '  address6: "fd00:244:0:1::b"'),
        11, 15, "node node-a has no podCIDR6 for fd00:244:0:1::b (allowed: give the node one, or drop "
        "address6)", id="endpoint-address6-node-without-pod-cidr6"),
    pytest.param(spec(f"""\
        apiVersion: netx/v1
        cluster:
          name: {"c" * 40}
          podCIDR: 10.244.0.0/16
          nodes:
            - {{name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24}}
        endpoints:
          - {{name: {"e" * 24}, node: node-a, address: 10.244.1.11}}
        """), 8, 12, f"namespace name '{'c' * 40}-{'e' * 24}' (cluster name, '-', endpoint name) is longer than "
        "64 (allowed: shorter names)", id="endpoint-namespace-too-long"),
    # --- names ----------------------------------------------------------------------------------------
    pytest.param(named("Demo"), 3, 9, f"name 'Demo' is not valid {NAME_RULE}", id="cluster-name-upper-case"),
    pytest.param(named(LONG), 3, 9, f"name '{LONG}' is not valid {NAME_RULE}", id="cluster-name-too-long"),
    pytest.param(node("address: 192.0.2.11", "podCIDR: 10.244.1.0/24", name="Node-A"),
        6, 13, f"name 'Node-A' is not valid {NAME_RULE}", id="node-name-upper-case"),
    pytest.param(node("address: 192.0.2.11", "podCIDR: 10.244.1.0/24", name=LONG),
        6, 13, f"name '{LONG}' is not valid {NAME_RULE}", id="node-name-too-long"),
    pytest.param(endpoints("- {name: Web, node: node-a, address: 10.244.1.11}"),
        8, 12, f"name 'Web' is not valid {NAME_RULE}", id="endpoint-name-upper-case"),
    pytest.param(endpoints(f"- {{name: {LONG}, node: node-a, address: 10.244.1.11}}"),
        8, 12, f"name '{LONG}' is not valid {NAME_RULE}", id="endpoint-name-too-long"),
    # --- address families -----------------------------------------------------------------------------
    pytest.param(node('address: "2001:db8::11"', "podCIDR: 10.244.1.0/24"),
        7, 16, "'2001:db8::11' is not an IPv4 address (allowed: an IPv4 address)", id="node-address-ipv6"),
    pytest.param(node("address: 192.0.2.11", 'podCIDR: "fd00:244:0:1::/64"'),
        8, 16, "'fd00:244:0:1::/64' is not an IPv4 network (allowed: an IPv4 CIDR)", id="node-pod-cidr-ipv6"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        cluster:
          name: demo
          podCIDR: "fd00:244::/48"
          nodes:
            - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24}
        """), 4, 12, "'fd00:244::/48' is not an IPv4 network (allowed: an IPv4 CIDR)", id="cluster-pod-cidr-ipv6"),
    pytest.param(node("address: 192.0.2.11", "address6: 192.0.2.111", "podCIDR: 10.244.1.0/24"),
        8, 17, "'192.0.2.111' is not an IPv6 address (allowed: an IPv6 address)", id="node-address6-ipv4"),
    pytest.param(demo("""\
          podCIDR6: "fd00:244::/48"
          nodes:
            - name: node-a
              address: 192.0.2.11
              podCIDR: 10.244.1.0/24
              podCIDR6: 10.245.1.0/24
        """), 10, 17, "'10.245.1.0/24' is not an IPv6 network (allowed: an IPv6 CIDR)", id="node-pod-cidr6-ipv4"),
    pytest.param(endpoints('- {name: web, node: node-a, address: "fd00:244:0:1::b"}'),
        8, 40, "'fd00:244:0:1::b' is not an IPv4 address (allowed: an IPv4 address)", id="endpoint-address-ipv6"),
    # --- routing --------------------------------------------------------------------------------------
    pytest.param(routing("mode: tunnel", "tunnel: {protocol: vxlan, vni: 16777216}"),
        7, 36, "vni 16777216 is too large (allowed: at most 16777215)", id="tunnel-vni-too-large"),
    pytest.param(routing("tunnel:", "  vni: -1"),
        7, 12, "vni -1 is too small (allowed: at least 0)", id="tunnel-vni-negative"),
    pytest.param(routing("mode: bgp"),
        6, 11, "'bgp' is not allowed for mode (allowed: 'tunnel' or 'native')", id="unknown-routing-mode"),
    pytest.param(routing("tunnel: {protocol: gre}"),
        6, 24, "'gre' is not allowed for protocol (allowed: 'vxlan' or 'geneve')", id="unknown-tunnel-protocol"),
    # --- a node's own interfaces, routes and sysctls: reported where they are written -------------------
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - {name: lo, type: device}
        routes:
          - {to: 10.9.0.0/16, dev: lo}
        cluster:
          name: demo
          podCIDR: 10.244.0.0/16
          nodes:
            - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24}
            - name: node-b
              address: 192.0.2.12
              podCIDR: 10.244.2.0/24
              interfaces:
                - {name: eth1, type: device, addresses: [198.51.100.2/24]}
              routes:
                - {to: 10.8.0.0/16, via: 198.51.100.1}
                - to: 10.7.0.0/16
                  via: 203.0.113.1
        """), 19, 16, "gateway 203.0.113.1 is not reachable: no address on any interface covers it",
        id="node-route-gateway-unreachable"),
    pytest.param(node("address: 192.0.2.11",
                      "podCIDR: 10.244.1.0/24",
                      "routes:",
                      "  - {to: 10.7.0.0/16, via: 192.0.2.1}"),
        10, 34, "gateway 192.0.2.1 is not reachable", id="node-route-via-underlay-without-prefix-length"),
    pytest.param(demo("""\
          nodes:
            - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24}
            - name: node-b
              address: 192.0.2.12
              podCIDR: 10.244.2.0/24
              interfaces:
                - {name: eth1, type: device, addresses: [198.51.100.2/24]}
              routes:
                - to: 10.7.0.0/16
                  nexthops:
                    - {via: 198.51.100.1}
                    - {via: 203.0.113.1}
        """), 16, 21, "gateway 203.0.113.1 is not reachable", id="node-route-nexthop-unreachable"),
    pytest.param(node("address: 192.0.2.11",
                      "podCIDR: 10.244.1.0/24",
                      "interfaces:",
                      "  - name: netx-tunnel",
                      "    type: bridge"),
        10, 17, "interface 'netx-tunnel' is created and configured by the cluster settings on this node "
        "(allowed: another name", id="node-interface-named-like-the-tunnel"),
    pytest.param(demo("""\
          routing: {tunnel: {device: flannel-1}}
          nodes:
            - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24}
            - name: node-b
              address: 192.0.2.12
              podCIDR: 10.244.2.0/24
              interfaces:
                - {name: flannel-1, type: vxlan, vni: 1, remote: 192.0.2.11}
        """), 12, 18, "interface 'flannel-1' is created and configured by the cluster settings on this node",
        id="node-interface-named-like-a-renamed-tunnel"),
    pytest.param(demo("""\
          nodes:
            - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24}
        endpoints:
          - {name: web, node: node-a, address: 10.244.1.11}
        interfaces:
          - {name: ep-web, type: bridge}
        """), 10, 12, "interface 'ep-web' is created and configured by the cluster settings on this node",
        id="interface-named-like-an-endpoint-veth"),
    pytest.param(node("address: 192.0.2.11", "podCIDR: 10.244.1.0/24", "sysctl:", "  net.ipv4.conf.eth7.forwarding: 1"),
        10, 9, "sysctl net.ipv4.conf.eth7.forwarding names interface 'eth7' which is not declared",
        id="node-sysctl-undeclared-interface"),
    # --- the same name twice in one node: the first is named where it is written -----------------------
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - {name: lo, type: device}
        cluster:
          name: demo
          podCIDR: 10.244.0.0/16
          nodes:
            - name: node-a
              address: 192.0.2.11
              podCIDR: 10.244.1.0/24
              interfaces:
                - {name: eth1, type: device}
                - {name: eth1, type: device}
        """), 13, 18, "first at cluster.nodes[0].interfaces[0]", id="node-interface-declared-twice"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - {name: lo, type: device}
        routes:
          - {to: 10.9.0.0/16, dev: lo}
        cluster:
          name: demo
          podCIDR: 10.244.0.0/16
          nodes:
            - name: node-a
              address: 192.0.2.11
              podCIDR: 10.244.1.0/24
              routes:
                - {to: 10.8.0.0/16, dev: lo}
                - {to: 10.8.0.0/16, dev: lo}
        """), 15, 16, "first at cluster.nodes[0].routes[0]", id="node-route-declared-twice"),
]


@pytest.mark.parametrize(("text", "line", "col", "message"), CASES)
def test_cluster_spec_error_is_positioned(text: str, line: int, col: int, message: str) -> None:
    problem = one_problem(text, SOURCE, line, col)
    assert message in problem, problem
    assert "allowed: " in problem, "every problem says what is allowed"


@pytest.mark.parametrize("text", [
    pytest.param(demo("""\
          podCIDR6: "fd00:244::/48"
          underlay: {device: eth0, prefixLength: 24, prefixLength6: 64}
          nodes:
            - name: node-a
              address: 192.0.2.11
              address6: "2001:db8::11"
              podCIDR: 10.244.1.0/24
              podCIDR6: "fd00:244:0:1::/64"
              routes:
                - {to: 10.7.0.0/16, via: 192.0.2.1}
                - {to: 10.6.0.0/16, via: 192.0.2.1, dev: eth0}
                - {to: "fd07::/64", via: "2001:db8::1", dev: eth0}
        """), id="node-route-via-underlay-network"),
    pytest.param(demo("""\
          routing: {mode: native}
          nodes:
            - name: node-a
              address: 192.0.2.11
              podCIDR: 10.244.1.0/24
              interfaces:
                - {name: netx-tunnel, type: bridge}
        """), id="tunnel-device-name-is-free-in-native-mode"),
    pytest.param(demo("""\
          nodes:
            - name: node-a
              address: 192.0.2.11
              podCIDR: 10.244.1.0/24
              sysctl:
                net.ipv4.conf.netx-tunnel.rp_filter: 0
        endpoints:
          - {name: web, node: node-a, address: 10.244.1.254}
        sysctl:
          net.ipv4.conf.eth0.rp_filter: 2
        """), id="sysctls-may-name-links-the-cluster-creates"),
    pytest.param(demo("""\
          podCIDR6: "fd00:244::/48"
          routing: {mode: native}
          nodes:
            - {name: node-a, address: 192.0.2.11, address6: "2001:db8::11", podCIDR: 10.244.1.0/24,
               podCIDR6: "fd00:244:0:1::/64"}
            - {name: node-b, address: 192.0.2.12, address6: "2001:db8::12", podCIDR: 10.244.2.0/24,
               podCIDR6: "fd00:244:0:2::/64"}
        endpoints:
          - {name: web-1, node: node-a, address: 10.244.1.11, address6: "fd00:244:0:1:ffff:ffff:ffff:ffff"}
          - {name: web-2, node: node-b, address: 10.244.2.11}
        """), id="native-dual-stack-last-ipv6-address-and-ipv4-only-endpoint"),
    pytest.param(lab_spec("demo", list(NODE_NAMES), "tunnel", LAB_WEB), id="lab-tunnel"),
    pytest.param(lab_spec("demo", list(NODE_NAMES), "native", LAB_WEB), id="lab-native"),
])
def test_valid_cluster_specs(text: str) -> None:
    parse_spec(text, SOURCE)


# --- compile -------------------------------------------------------------------------------------------


def load(text: str) -> Spec:
    """The spec model of ``text``."""
    return parse_spec(text, SOURCE)[0]


def lab_text(mode: str = "tunnel", nodes: list[str] | None = None, protocol: str = "vxlan",
             port: int | None = 8472) -> str:
    """The lab's spec of cluster demo with ENDPOINTS; port None leaves the tunnel port out (the default applies)."""
    text = lab_spec("demo", nodes or NODES, mode, ENDPOINTS, protocol, 8472 if port is None else port)
    if port is None:
        assert ", port: 8472" in text
        text = text.replace(", port: 8472", "")
    return text


def lab(mode: str = "tunnel", nodes: list[str] | None = None, protocol: str = "vxlan",
        port: int | None = 8472) -> Spec:
    """The spec model of ``lab_text``."""
    return load(lab_text(mode, nodes, protocol, port))


def by_address(resources: list[Resource]) -> dict[str, Resource]:
    """``resources`` by address; no address may stand twice."""
    counts = Counter(r.address for r in resources)
    assert all(n == 1 for n in counts.values()), [a for a, n in counts.items() if n > 1]
    return {r.address: r for r in resources}


def compiled(spec_: Spec, node: str) -> dict[str, Resource]:
    """What ``node`` compiles of ``spec_``, by address."""
    return by_address(compile_spec(spec_, node))


def as_json(resources: list[Resource]) -> dict[str, dict[str, Any]]:
    """``resources`` by address, each as its JSON form."""
    return {address: r.to_json() for address, r in by_address(resources).items()}


def of_kind(resources: list[Resource], kind: str) -> list[Resource]:
    """The resources of one kind, in order."""
    return [r for r in resources if r.kind == kind]


def tunnel_links(resources: list[Resource]) -> list[Resource]:
    """The vxlan and geneve links among ``resources``."""
    return [r for r in of_kind(resources, "link") if r.attrs.get("type") in ("vxlan", "geneve")]


OTHERS = {  # node-a's view of the others: (IPv4 pod network, its vtep, IPv6 pod network, its vtep, underlay)
    "node-b": ("10.244.2.0/24", "10.244.2.0", "fd00:244:0:2::/64", "fd00:244:0:2::", "192.0.2.12", "2001:db8::12"),
    "node-c": ("10.244.3.0/24", "10.244.3.0", "fd00:244:0:3::/64", "fd00:244:0:3::", "192.0.2.13", "2001:db8::13"),
}


def test_tunnel_mode_compiles_one_overlay_for_node_a() -> None:
    spec_ = lab()
    resources = compile_spec(spec_, "node-a")
    found = by_address(resources)
    tunnels = tunnel_links(resources)
    assert [t.address for t in tunnels] == ["link.netx-tunnel"]
    link = tunnels[0].attrs
    assert (link["type"], link["external"], link["vni"], link["port"], link["learning"]) == ("vxlan", True, None,
                                                                                           8472, False)
    assert link["mtu"] == 1500 - 50
    mac = link["mac"]
    assert mac == tunnel_mac(spec_, find_node(spec_, "node-a"))
    assert int(mac[:2], 16) & 0b11 == 0b10, "a locally administered unicast MAC"
    assert found["address.netx-tunnel.10.244.1.0/32"].attrs["dev"] == "netx-tunnel"
    assert found["address.netx-tunnel.fd00:244:0:1::/128"].attrs["nodad"] is True

    neighbours = of_kind(resources, "neighbour")
    encap_routes = [r for r in of_kind(resources, "route") if r.attrs["encap"]]
    assert len(neighbours) == len(encap_routes) == 2 * len(OTHERS)
    for name, (net4, vtep4, net6, vtep6, address, _address6) in OTHERS.items():
        their_mac = tunnel_mac(spec_, find_node(spec_, name))
        assert their_mac != mac
        for network, vtep in ((net4, vtep4), (net6, vtep6)):
            neighbour = found[f"neigh.netx-tunnel.{vtep}"].attrs
            assert neighbour == {"dev": "netx-tunnel", "ip": vtep, "lladdr": their_mac}
            route = found[f"route.main.{network}"].attrs
            assert (route["via"], route["dev"], route["onlink"], route["table"]) == (vtep, "netx-tunnel", True, 254)
            assert route["encap"] == {"type": "ip", "id": 42, "dst": address}

    # the endpoint of node-a, and only that one
    assert found["netns.demo-web-a"].attrs == {"name": "demo-web-a"}
    veth = found["link.ep-web-a"]
    assert (veth.attrs["type"], veth.attrs["mtu"], veth.attrs["peer"]) == ("veth", 1450,
                                                                          {"name": "eth0", "netns": "demo-web-a"})
    assert "netns.demo-web-a" in veth.meta["requires"]
    assert "address.ep-web-a.169.254.1.1/32" in found
    assert "address.ep-web-a.fe80::1/64" in found
    assert found["route.main.10.244.1.11/32"].attrs["dev"] == "ep-web-a"
    assert found["route.main.fd00:244:0:1::b/128"].attrs["dev"] == "ep-web-a"
    endpoint = found["endpoint.web-a"]
    assert endpoint.attrs == {"netns": "demo-web-a", "interface": "eth0", "mtu": 1450,
                              "addresses": ["10.244.1.11/32", "fd00:244:0:1::b/128"],
                              "gateways": ["169.254.1.1", "fe80::1"]}
    assert endpoint.meta["labels"] == {"app": "web"}
    assert [r.address for r in of_kind(resources, "endpoint")] == ["endpoint.web-a"]
    assert [r.address for r in of_kind(resources, "netns")] == ["netns.demo-web-a"]

    assert str(found["sysctl.net.ipv4.ip_forward"].attrs["value"]) == "1"
    assert str(found["sysctl.net.ipv6.conf.all.forwarding"].attrs["value"]) == "1"
    # the underlay (prefixLength and prefixLength6 are set in the lab)
    assert found["link.eth0"].attrs["mtu"] == 1500
    assert "address.eth0.192.0.2.11/24" in found and "address.eth0.2001:db8::11/64" in found


# (spec text, attributes of node-a's one tunnel link, attributes of other resources of node-a by address)
TUNNEL_LINKS = [
    pytest.param(lab_text().replace("mtu: 1500", "mtu: 9000"), {"mtu": 8950}, {"endpoint.web-a": {"mtu": 8950}},
                 id="mtu-follows-the-underlay-mtu"),
    pytest.param(lab_text(protocol="vxlan", port=None), {"port": 8472}, {}, id="vxlan-port-defaults-to-8472"),
    pytest.param(lab_text(protocol="geneve", port=7000), {"port": 7000}, {}, id="an-explicit-port-wins"),
    pytest.param(lab_text(protocol="geneve", port=None),
                 {"type": "geneve", "port": 6081, "vni": None, "remote": None, "mtu": 1450},
                 {"route.main.10.244.2.0/24": {"encap": {"type": "ip", "id": 42, "dst": "192.0.2.12"}}},
                 id="geneve-is-an-external-link-on-port-6081-by-default"),
]


@pytest.mark.parametrize(("text", "link", "others"), TUNNEL_LINKS)
def test_tunnel_link_of_node_a(text: str, link: dict[str, Any], others: dict[str, dict[str, Any]]) -> None:
    resources = compile_spec(load(text), "node-a")
    [tunnel] = tunnel_links(resources)
    assert tunnel.address == "link.netx-tunnel"
    assert {name: tunnel.attrs[name] for name in link} == link
    found = by_address(resources)
    for address, attrs in others.items():
        assert {name: found[address].attrs[name] for name in attrs} == attrs, address


def test_geneve_tunnel_is_external_and_has_no_vxlan_only_attributes() -> None:
    [link] = tunnel_links(compile_spec(lab(protocol="geneve", port=None), "node-a"))
    assert link.attrs["external"] is True
    assert not {"learning", "group", "local", "device"} & set(link.attrs), "no vxlan-only attributes"


def test_tunnel_mac_of_a_node_is_the_same_from_every_node() -> None:
    spec_ = lab()
    node_a = find_node(spec_, "node-a")
    own = tunnel_links(compile_spec(spec_, "node-a"))[0].attrs["mac"]
    assert {tunnel_mac(view.spec, node_a) for view in node_views(spec_)} == {own}
    for name in ("node-b", "node-c"):
        found = compiled(spec_, name)
        assert found["neigh.netx-tunnel.10.244.1.0"].attrs["lladdr"] == own
        assert found["neigh.netx-tunnel.fd00:244:0:1::"].attrs["lladdr"] == own


def test_native_mode_routes_via_the_other_nodes_underlay_addresses() -> None:
    resources = compile_spec(lab("native"), "node-a")
    found = by_address(resources)
    assert tunnel_links(resources) == []
    assert of_kind(resources, "neighbour") == []
    assert not [r for r in resources if "netx-tunnel" in r.address]
    assert not [r for r in of_kind(resources, "route") if r.attrs["encap"]]
    for net4, _vtep4, net6, _vtep6, address, address6 in OTHERS.values():
        for network, via in ((net4, address), (net6, address6)):
            route = found[f"route.main.{network}"].attrs
            assert (route["via"], route["dev"], route["onlink"], route["encap"]) == (via, "eth0", False, None)
    assert found["link.ep-web-a"].attrs["mtu"] == 1500
    assert found["endpoint.web-a"].attrs["mtu"] == 1500
    assert "sysctl.net.ipv4.ip_forward" in found and "sysctl.net.ipv6.conf.all.forwarding" in found


@pytest.mark.parametrize("mode", ["tunnel", "native"])
def test_every_node_routes_to_a_pod_network_the_same_way(mode: str) -> None:
    """No fact is written twice: the route to node X's pods is one derivation, the same on every node."""
    spec_ = lab(mode)
    found = {n: compiled(spec_, n) for n in NODES}
    for target in spec_.cluster.nodes:
        for network in (target.pod_cidr, target.pod_cidr6):
            address = f"route.main.{network}"
            views = {n: found[n][address].to_json() for n in NODES if n != target.name}
            assert len(views) == len(NODES) - 1
            assert len({repr(v) for v in views.values()}) == 1, views
            route = next(iter(views.values()))["attrs"]
            if mode == "tunnel":
                assert route["encap"]["dst"] == str(target.address)
                assert route["via"] == str(network.network_address)
            else:
                assert route["via"] == str(target.address if network.version == 4 else target.address6)
            assert address not in found[target.name], "a node has no route to its own pod network"


@pytest.mark.parametrize(("mode", "added"), [
    pytest.param("tunnel", {"neighbour": 2, "route": 2}, id="tunnel"),
    pytest.param("native", {"route": 2}, id="native"),
])
def test_adding_a_node_adds_only_its_routes_to_the_others(mode: str, added: dict[str, int]) -> None:
    before = lab(mode, NODES)
    after = lab(mode, [*NODES, "node-d"])
    for name in NODES:
        old, new = as_json(compile_spec(before, name)), as_json(compile_spec(after, name))
        assert set(old) <= set(new)
        assert {a: new[a] for a in old} == old, "nothing else changes"
        extra = [new[a] for a in set(new) - set(old)]
        assert len(extra) == sum(added.values())
        assert Counter(r["kind"] for r in extra) == added
        assert {r["address"] for r in extra if r["kind"] == "route"} == {
            "route.main.10.244.4.0/24", "route.main.fd00:244:0:4::/64"}


def test_each_node_gets_only_its_own_entries() -> None:
    spec_ = load(spec("""\
        apiVersion: netx/v1
        interfaces:
          - {name: lo, type: device}
        sysctl:
          net.ipv4.conf.all.rp_filter: 2
        cluster:
          name: demo
          podCIDR: 10.244.0.0/16
          underlay: {device: eth0, prefixLength: 24}
          nodes:
            - name: node-a
              address: 192.0.2.11
              podCIDR: 10.244.1.0/24
              routes:
                - {to: 10.7.0.0/16, via: 192.0.2.1}
              sysctl:
                net.ipv4.conf.all.rp_filter: 0
            - {name: node-b, address: 192.0.2.12, podCIDR: 10.244.2.0/24}
        """))
    node_a, node_b = compiled(spec_, "node-a"), compiled(spec_, "node-b")
    assert node_a["route.main.10.7.0.0/16"].attrs["via"] == "192.0.2.1"
    assert "route.main.10.7.0.0/16" not in node_b
    assert str(node_a["sysctl.net.ipv4.conf.all.rp_filter"].attrs["value"]) == "0"
    assert str(node_b["sysctl.net.ipv4.conf.all.rp_filter"].attrs["value"]) == "2"
    assert "link.lo" in node_a and "link.lo" in node_b
    assert "sysctl.net.ipv6.conf.all.forwarding" not in node_a, "IPv4-only cluster: no IPv6 forwarding"


def test_a_sysctl_the_cluster_sets_otherwise_is_an_error_not_a_silent_choice() -> None:
    """The cluster turns forwarding on; a sysctl section asking for it off compiled to two resources of one
    address, and the plan silently kept the cluster's. Now: an error naming both values; the same value is one
    resource."""
    with pytest.raises(PlanError) as caught:
        compile_spec(load(lab_text() + "sysctl:\n  net.ipv4.ip_forward: 0\n"), "node-a")
    assert str(caught.value) == (
        "sysctl.net.ipv4.ip_forward is asked twice with different values: value='0' by the sysctls section and "
        "value='1' by the cluster section (allowed: one value: leave it out of one of them, or give both the same)")
    same = [r for r in compile_spec(load(lab_text() + "sysctl:\n  net.ipv4.ip_forward: 1\n"), "node-a")
            if r.address == "sysctl.net.ipv4.ip_forward"]
    assert [r.attrs["value"] for r in same] == ["1"]


def test_unknown_node_is_a_plan_error_naming_the_nodes() -> None:
    with pytest.raises(PlanError) as caught:
        compile_spec(lab(), "node-x")
    message = str(caught.value)
    assert "node 'node-x' is not in cluster demo" in message
    assert "node-a, node-b, node-c" in message


@pytest.mark.parametrize("interface", [
    pytest.param("{name: eth0, type: device, mtu: 9000}", id="underlay-device"),
    pytest.param("{name: netx-tunnel, type: device, mtu: 1400}", id="tunnel-device"),
])
def test_a_link_the_cluster_creates_is_never_compiled_twice(interface: str) -> None:
    text = demo(f"""\
          underlay: {{device: eth0, mtu: 1500, prefixLength: 24}}
          nodes:
            - name: node-a
              address: 192.0.2.11
              podCIDR: 10.244.1.0/24
              interfaces:
                - {interface}
            - {{name: node-b, address: 192.0.2.12, podCIDR: 10.244.2.0/24}}
        """)
    try:
        spec_ = load(text)
    except SpecError:
        return  # rejecting the conflict is a fine outcome too
    compiled(spec_, "node-a")

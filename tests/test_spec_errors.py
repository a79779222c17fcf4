"""Every class of spec error is reported at the right FILE:LINE:COL with a helpful message.

Each case is a small spec, the position it must be reported at, and a distinctive part of the message. A spec
is written inline (``textwrap.dedent``: the first line of the text is line 1) or, where only a few lines of a
common frame vary, as those lines: ``interface``, ``with_interface`` and ``section`` say on which line they start.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from netplanx.document import loader
from netplanx.errors import SpecError
from netplanx.spec.validate import load_spec, parse_spec
from tests.specs import TOP_KEYS, one_problem, spec
from tests.specs import problems_of as problems

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "host.yaml"
SOURCE = "spec.yaml"
TYPES = ("'device', 'veth', 'bridge', 'bond', 'vlan', 'vrf', 'dummy', 'macvlan', 'ipvlan', 'vxlan', 'geneve', 'gre', "
         "'gretap', 'ipip', 'sit', 'ip6tnl', 'ip6gre'")  # every link kind, in the catalog's order
ETH0 = "{name: eth0, type: device}"  # interfaces for with_interface
ETH0_V4 = "{name: eth0, type: device, addresses: [10.0.0.2/24]}"


def problems_of(text: str) -> list[str]:
    """The problems of ``text`` as spec.yaml."""
    return problems(text, SOURCE)


def block(key: str, *lines: str) -> str:
    """The top-level ``key`` holding ``lines``, each indented by two."""
    return f"{key}:\n" + "".join(f"  {line}\n" for line in lines)


def section(key: str, *lines: str) -> str:
    """A spec of apiVersion and one top-level ``key`` (line 2) holding ``lines`` from line 3."""
    return "apiVersion: netx/v1\n" + block(key, *lines)


def interface(name: str, kind: str, *lines: str) -> str:
    """A spec of one interface: ``name`` on line 3, ``kind`` on line 4, and its other keys ``lines`` from line 5."""
    return section("interfaces", f"- name: {name}", f"  type: {kind}", *(f"  {line}" for line in lines))


def with_interface(device: str, key: str, *lines: str) -> str:
    """A spec of one interface ``device`` (a flow mapping, line 3) and a top-level ``key`` (line 4) holding ``lines``
    from line 5."""
    return section("interfaces", f"- {device}") + block(key, *lines)


# (text, line, col, distinctive part of the message); exactly one problem is expected for each.
CASES = [
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - name: eth0
           type: device
        """), 4, 4, "YAML syntax error: did not find expected '-' indicator", id="yaml-syntax"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - name: eth0
        \ttype: device
        """), 4, 1, "YAML syntax error: found a tab character that violates indentation", id="yaml-tab-indent"),
    pytest.param(interface("eth0", "device", "addresses: [10.0.0.1/24, fd00::1/64]"), 5, 34,
        'quote values that contain \':\' inside [ ] or { }, such as "fd00::1/64"', id="unquoted-ipv6-in-flow-list"),
    pytest.param(interface("eth0", "device", "name: eth1"),
        5, 5, "duplicate key 'name' (first given at line 3, column 5; allowed: each key once)", id="duplicate-key"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        base: &base {mtu: 1500}
        interfaces:
          - <<: *base
            name: eth0
            type: device
        """), 4, 5, "merge keys (<<) are not supported", id="merge-key"),
    pytest.param(section("interface", "- name: eth0", "  type: device"),
        2, 1, f"unknown key 'interface' (allowed: {TOP_KEYS})", id="unknown-top-key"),
    pytest.param(interface("eth0", "device", "mtuu: 1500"), 5, 5,
        "unknown key 'mtuu' (allowed: name, mtu, state, mac, master, addresses, type)", id="unknown-interface-key"),
    pytest.param(interface("v0", "veth", "peer: {name: v1, nets: blue}"),
        5, 22, "unknown key 'nets' (allowed: name, netns)", id="unknown-veth-peer-key"),
    pytest.param(section("routes", "- to: default", "  gw: 192.0.2.1"),
        4, 5, "unknown key 'gw' (allowed: to, via, dev, src, table, vrf, metric, scope, type, onlink, nexthops, encap)",
        id="unknown-route-key"),
    pytest.param(spec("""\
        interfaces:
          - name: eth0
            type: device
        """), 1, 1, "missing required key 'apiVersion'", id="missing-api-version"),
    pytest.param(spec("""\
        apiVersion: netx/v2
        """), 1, 13, "'netx/v2' is not allowed for apiVersion (allowed: 'netx/v1')", id="wrong-api-version"),
    pytest.param(spec("""\
        - apiVersion: netx/v1
        """), 1, 1,
        f"the spec must be a mapping (allowed: apiVersion, {TOP_KEYS})",
        id="spec-not-a-mapping"),
    pytest.param(interface("v0", "veth", "mtu: 1500"), 3, 5, "missing required key 'peer'", id="veth-without-peer"),
    pytest.param(with_interface(ETH0, "routes", "- dev: eth0", "  metric: 10"),
        5, 5, "missing required key 'to'", id="route-without-to"),
    pytest.param(interface("vx0", "vxlan", "remote: 192.0.2.1"),
        3, 5, "a vxlan needs vni (allowed: 0-16777215, or external: true)", id="vxlan-without-vni"),
    pytest.param(interface("tun0", "tun"),
        3, 5, f"unknown type 'tun' (allowed: {TYPES})",
        id="unknown-interface-type"),
    pytest.param(section("interfaces", "- name: eth0", "  mtu: 1500"),
        3, 5, f"missing key 'type' (allowed: {TYPES})",
        id="interface-without-type-lists-types"),
    pytest.param(interface("eth0", "device", "mtu: 70000"),
        5, 10, "mtu 70000 is too large (allowed: at most 65535)", id="mtu-too-large"),
    pytest.param(interface("eth0", "device", "mtu: 67"),
        5, 10, "mtu 67 is too small (allowed: at least 68)", id="mtu-too-small"),
    pytest.param(interface("eth0", "device", "mtu: jumbo"),
        5, 10, "mtu must be an integer, got 'jumbo' (allowed: a whole number)", id="mtu-not-a-number"),
    pytest.param(interface("eth0", "device", "state: sideways"),
        5, 12, "'sideways' is not allowed for state (allowed: 'up' or 'down')", id="state-literal"),
    pytest.param(interface("uplink-to-core01", "device"),
        3, 11, "interface name 'uplink-to-core01' is 16 bytes long (allowed: at most 15 bytes)", id="ifname-too-long"),
    pytest.param(interface("ééééééé-x", "device"),
        3, 11, "interface name 'ééééééé-x' is 16 bytes long (allowed: at most 15 bytes)",
        id="ifname-too-long-in-bytes-not-characters"),
    pytest.param(interface("eth0/1", "device"),
        3, 11, "interface name 'eth0/1' contains '/', ':' or white space", id="ifname-with-slash"),
    pytest.param(interface("42", "device"),
        3, 11, "name must be text, got int 42 (allowed: a string)", id="ifname-not-text"),
    pytest.param(interface("eth0", "device", "mac: 02:00:00:00:00"),
        5, 10, "'02:00:00:00:00' is not a MAC address (allowed: six hex octets", id="mac-invalid"),
    pytest.param(interface("eth0", "device", "mac: 01:00:5e:00:00:01"),
        5, 10, "'01:00:5e:00:00:01' is a multicast MAC address (allowed: a unicast address", id="mac-multicast"),
    pytest.param(interface("eth0", "device", "addresses:", "  - 10.0.0.1/24", "  - 10.0.1.1"),
        7, 9, "address '10.0.1.1' has no prefix length (allowed: address/prefix such as 10.0.0.1/24)",
        id="address-without-prefix"),
    pytest.param(interface("eth0", "device", "addresses: [10.0.0.300/24]"),
        5, 17, "'10.0.0.300/24' is not an address/prefix", id="address-invalid"),
    pytest.param(with_interface(ETH0, "routes", "- to: 10.1.2.3/16", "  dev: eth0"),
        5, 9, "'10.1.2.3/16' has host bits set (allowed: the network address, 10.1.0.0/16)", id="route-host-bits-set"),
    pytest.param(section("rules", "- priority: 100", '  from: "fd00::1/64"', "  table: 10"),
        4, 11, "'fd00::1/64' has host bits set (allowed: the network address, fd00::/64)", id="rule-host-bits-set"),
    pytest.param(with_interface(ETH0, "routes", "- to: 10.1.0.0/33", "  dev: eth0"), 5, 9,
        "'10.1.0.0/33' is not a network (allowed: CIDR such as 10.0.0.0/24 or fd00::/64)", id="route-not-a-network"),
    pytest.param(with_interface(ETH0_V4, "routes", "- to: 10.1.0.0/16", '  via: "fd00::1"'), 5, 5,
        "route mixes IPv4 and IPv6 in to, via, src and nexthops (allowed: one family)", id="route-mixes-families"),
    pytest.param(section("routes", "- to: 10.99.0.0/16", "  type: blackhole", "  via: 10.0.0.1"),
        3, 5, "a blackhole route takes no via, dev or nexthops (allowed: to, table, metric)", id="blackhole-with-via"),
    pytest.param(section("routes", "- to: 0.0.0.0/0", "  type: local", "  table: 2004"),
        3, 5, "a local route needs dev and takes no via or nexthops (allowed: dev: lo)", id="local-without-dev"),
    pytest.param(section("routes", "- to: 10.99.0.0/16", "  metric: 5"),
        3, 5, "a unicast route needs via, dev or nexthops", id="unicast-without-next-hop"),
    pytest.param(with_interface(ETH0_V4, "routes", "- to: 10.1.0.0/16", "  nexthops:", "    - via: 10.0.0.1"),
        5, 5, "nexthops needs two or more paths (allowed: via/dev for a single path)", id="nexthops-one-path"),
    pytest.param(with_interface(ETH0_V4, "routes", "- to: 10.1.0.0/16",
                                                   "  nexthops:",
                                                   "    - via: 10.0.0.1",
                                                   "    - weight: 2"),
        8, 9, "a nexthop needs via or dev (allowed: via, dev or both)", id="nexthop-without-via-or-dev"),
    pytest.param(section("rules", "- priority: 100", "  from: 10.0.0.0/8", '  to: "fd00::/8"', "  table: 10"),
        3, 5, "rule mixes IPv4 and IPv6 in family, from and to (allowed: one family)", id="rule-mixes-families"),
    pytest.param(section("rules", "- priority: 100", "  from: 10.0.0.0/8"), 3, 5,
        "a lookup rule needs a table (allowed: main, local, default, 1-4294967295, or vrf)",
        id="lookup-rule-without-table"),
    pytest.param(section("rules", "- priority: 40000", "  from: 10.0.0.0/8", "  table: 10"),
        3, 15, "priority 40000 is too large (allowed: at most 32765)", id="rule-priority-range"),
    pytest.param(interface("vx0", "vxlan", "vni: 42", "remote: 192.0.2.20", "group: 239.1.1.1"),
        3, 5, "remote and group are exclusive (allowed: one of them)", id="vxlan-remote-and-group"),
    pytest.param(section("sysctl", "net.ipv4.ip_forward: 1", "kernel.panic: 10"),
        4, 3, "sysctl 'kernel.panic' is not a network sysctl (allowed: net.* keys such as net.ipv4.ip_forward)",
        id="sysctl-not-net"),
    pytest.param(section("sysctl", "net.ipv4.ip_forward: 1", 'net.ipv4.conf.all.rp_filter: "1\\n2"'),
        4, 32, "sysctl value is not a single short line", id="sysctl-multiline-value"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces: [eth0]
        """), 2, 14, "must be a mapping", id="interface-not-a-mapping"),
    pytest.param(section("interfaces", "- {name: v0, type: veth, peer: v1}"),
        3, 34, "peer must be a mapping, got str (allowed: a mapping with name, netns)", id="veth-peer-not-a-mapping"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        routes: [10.0.0.0/8]
        """), 2, 10, "routes[0] must be a mapping, got str (allowed: a mapping with to, via,",
        id="route-not-a-mapping"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        x: """) + "[" * 70 + "]" * 70 + "\n", 2, 68,
        f"nesting deeper than {loader.MAX_DEPTH} levels (allowed: at most {loader.MAX_DEPTH})", id="too-deep"),
    # Semantic (cross-object) checks: they run once the model validates.
    pytest.param(section("interfaces", "- {name: eth0, type: device}", "- name: eth0", "  type: bridge"),
        4, 11, "interface name 'eth0' is declared twice (first at interfaces[0]; allowed: unique names",
        id="duplicate-interface-name"),
    pytest.param(section("interfaces", "- {name: br0, type: bridge}",
                                       "- name: v0",
                                       "  type: veth",
                                       "  peer: {name: br0}"),
        6, 18, "interface name 'br0' is declared twice", id="veth-peer-name-clashes"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - name: v0
            type: veth
            peer: {name: v1}
          - {name: v1, type: device, mtu: 9000}
          - {name: v1, type: device, mtu: 1500}
        """), 7, 12, "interface name 'v1' is declared twice", id="veth-peer-configured-twice"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - {name: eth0, type: device, addresses: [10.0.0.1/24]}
          - name: eth1
            type: device
            addresses:
              - "fd00::1/64"
              - 10.0.0.1/16
        """), 8, 9, "address 10.0.0.1 is already assigned to 'eth0' (allowed: each address once)",
        id="duplicate-address"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - {name: eth0, type: device}
          - {name: br0, type: bridge}
          - name: eth1
            type: device
            master: eth0
        """), 7, 13, "master 'eth0' is a device, not a bridge, bond or vrf (allowed: br0)", id="master-not-a-bridge"),
    pytest.param(interface("eth1", "device", "master: br9"), 5, 13,
        "master 'br9' is not declared (allowed: a bridge, bond or vrf in interfaces: none declared)",
        id="master-not-declared"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - {name: bond0, type: bond, mode: active-backup, primary: m9}
          - {name: m0, type: device, master: bond0}
        """), 3, 61, "primary 'm9' is not a member of bond 'bond0' (allowed: a link whose master is bond0: m0)",
        id="bond-primary-not-a-member"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - {name: bond0, type: bond}
          - {name: m0, type: device, master: bond0, addresses: [10.0.0.1/24]}
        """), 4, 56, "a member of bond 'bond0' carries no addresses (allowed: put them on the bond)",
        id="bond-member-with-addresses"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - {name: bond0, type: bond}
          - {name: v0, type: vlan, parent: bond0, id: 5, master: bond0}
        """), 4, 58, "a vlan cannot join bond 'bond0' (allowed: an Ethernet link: device, veth, dummy, gretap)",
        id="bond-member-not-ethernet"),
    pytest.param(interface("bond0", "bond", "mode: active-backup", "lacpRate: fast"),
        3, 5, "lacpRate applies to mode 802.3ad only (allowed: omit it in mode active-backup)",
        id="bond-lacp-rate-in-another-mode"),
    pytest.param(section("rules", "- priority: 100", "  from: 10.0.0.0/8", "  vrf: blue"), 5, 10,
        "vrf 'blue' is not declared (allowed: a vrf in interfaces: none declared)", id="rule-vrf-not-declared"),
    pytest.param(interface("br0", "bridge", "master: br0"),
        5, 13, "interface 'br0' cannot be its own master", id="master-is-itself"),
    pytest.param(with_interface(ETH0_V4, "routes", "- to: default", "  via: 10.1.0.1"),
        6, 10, "gateway 10.1.0.1 is not reachable: no address on any interface covers it (allowed: a "
               "gateway inside a subnet of a declared address, or onlink: true)", id="gateway-unreachable"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - {name: eth0, type: device, addresses: [10.0.0.2/24]}
          - {name: eth1, type: device, addresses: [10.1.0.2/24]}
        routes:
          - to: default
            via: 10.1.0.1
            dev: eth0
        """), 7, 10, "gateway 10.1.0.1 is not reachable: no address on 'eth0' covers it",
        id="gateway-unreachable-on-dev"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - {name: eth0, type: device, addresses: ["fd00::2/64"]}
        routes:
          - to: "fd01::/64"
            nexthops:
              - {via: "fd00::1"}
              - {via: "fd02::1"}
        """), 8, 15, "gateway fd02::1 is not reachable", id="nexthop-gateway-unreachable"),
    pytest.param(section("routes", '- to: "fd01::/64"', '  via: "fe80::1"'),
        4, 10, "link-local gateway fe80::1 needs dev (allowed: set dev)", id="link-local-gateway-without-dev"),
    pytest.param(with_interface(ETH0_V4, "routes", "- to: default", "  via: 192.0.2.1", "  onlink: true"),
        5, 5, "onlink", id="onlink-without-dev"),
    pytest.param(with_interface(ETH0, "routes", "- to: 10.1.0.0/16", "  dev: eth9"),
        6, 10, "dev 'eth9' is not declared (allowed: an interface in interfaces: eth0)", id="route-dev-not-declared"),
    pytest.param(with_interface(ETH0, "routes", "- {to: 10.1.0.0/16, dev: eth0, metric: 5}",
                                                "- {to: 10.1.0.0/16, dev: eth0, metric: 6}",
                                                "- {to: 10.1.0.0/16, dev: eth0, metric: 5, table: 7}",
                                                "- {to: 10.1.0.0/16, dev: eth0, metric: 5}"),
        8, 10, "route to 10.1.0.0/16 in table main is declared twice (first at routes[0]; allowed: "
               "distinct to/table/metric)", id="duplicate-route"),
    pytest.param(with_interface(ETH0, "routes", "- {to: default, dev: eth0}", "- {to: 0.0.0.0/0, dev: eth0}"),
        6, 10, "route to 0.0.0.0/0 in table main is declared twice", id="duplicate-default-route"),
    pytest.param(with_interface(ETH0, "routes", "- {to: 10.1.0.0/16, dev: eth0, table: 254}",
                                                "- {to: 10.1.0.0/16, dev: eth0, table: main}"),
        6, 10, "is declared twice", id="duplicate-route-table-number-and-name"),
    pytest.param(with_interface(ETH0, "routes", "- {to: 10.1.0.0/16, dev: eth0}",
                                                "- {to: 10.1.0.0/16, dev: eth0, metric: 0}"),
        6, 10, "is declared twice", id="duplicate-route-default-metric"),
    pytest.param(section("rules", "- {priority: 100, from: 10.0.0.0/8, table: 10}",
                                  "- {priority: 100, to: 10.1.0.0/16, table: 11}"),
        4, 16, "IPv4 rule priority 100 is declared twice (first at rules[0]; allowed: one rule a priority)",
        id="duplicate-rule-priority"),
    pytest.param(with_interface(ETH0, "sysctl", "net.ipv4.conf.eth0.forwarding: 1",
                                                "net.ipv6.conf.eth9.disable_ipv6: 1"),
        6, 3, "sysctl net.ipv6.conf.eth9.disable_ipv6 names interface 'eth9' which is not declared "
              "(allowed: all, default, or eth0)", id="sysctl-undeclared-interface"),
    pytest.param(interface("vx0", "vxlan", "vni: 42", "remote: 192.0.2.20", "device: eth9"), 7, 13,
        "device 'eth9' is not declared (allowed: an interface in interfaces: vx0)", id="vxlan-device-not-declared"),
    pytest.param(interface("mv0", "macvlan", "parent: eth9"), 5, 13,
        "parent 'eth9' is not declared (allowed: an interface in interfaces: mv0)", id="macvlan-parent-not-declared"),
]


@pytest.mark.parametrize(("text", "line", "col", "message"), CASES)
def test_spec_error_is_positioned(text: str, line: int, col: int, message: str) -> None:
    problem = one_problem(text, SOURCE, line, col)
    assert message in problem, problem
    if not message.startswith("missing required key"):  # see the row missing-key-says-what-is-allowed of EXACT
        assert "allowed: " in problem, "every problem says what is allowed"


@pytest.mark.parametrize("text", [
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - {name: eth0, type: device, addresses: [10.0.0.2/24]}
        routes:
          - to: default
            via: 192.0.2.1
            dev: eth0
            onlink: true
        """), id="unreachable-gateway-with-onlink"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - {name: eth0, type: device}
        routes:
          - {to: "fd01::/64", via: "fe80::1", dev: eth0}
        """), id="link-local-gateway-with-dev"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - {name: v0, type: veth, peer: {name: v1}}
          - {name: v1, type: device, addresses: [10.0.0.1/24]}
          - {name: v2, type: veth, peer: {name: v0, netns: other}}
        """), id="veth-peer-configured-as-device"),
    pytest.param(with_interface(ETH0, "routes", "- {to: 10.1.0.0/16, dev: eth0}",
                                                "- {to: 10.1.0.0/16, dev: eth0, table: 100}",
                                                "- {to: 10.1.0.0/16, dev: eth0, metric: 10}")
                 + block("rules", "- {priority: 100, from: 10.0.0.0/8, table: 100}",
                                  '- {priority: 100, from: "fd00::/8", table: 100}'),
                 id="same-route-other-table-same-priority-other-family"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - name: uplink-to-core
            type: device
            mac: 02:AB:00:00:00:01
            addresses:
              - fd00::1/64
        """), id="15-byte-name-upper-case-mac-unquoted-ipv6-in-block-list"),
    pytest.param("apiVersion: netx/v1\n", id="api-version-alone"),
])
def test_valid_edge_cases(text: str) -> None:
    parse_spec(text, SOURCE)


# (text, every problem it is refused with, in order)
EXACT = [
    pytest.param("", [f"{SOURCE}:1:1: missing required key 'apiVersion' (allowed: this object needs apiVersion)"],
                 id="empty-spec-needs-api-version"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - {name: v0, type: veth}
        """), [f"{SOURCE}:3:5: missing required key 'peer' (allowed: this object needs name, type, peer)"],
        id="missing-key-says-what-is-allowed"),
    # pydantic reports interfaces before routes and the unknown key last; lines 10+ must sort after line 9
    pytest.param(spec("""\
        apiVersion: netx/v1
        colour: blue
        routes:
          - to: 10.0.0.1/8
            dev: eth0
        interfaces:
          - name: uplink-to-core01
            type: device
            mtu: 10
          - name: b
            type: bogus
          - name: c
            type: device
            mac: 01:00:00:00:00:01
        """), [
        f"{SOURCE}:2:1: unknown key 'colour' (allowed: {TOP_KEYS})",
        f"{SOURCE}:4:9: '10.0.0.1/8' has host bits set (allowed: the network address, 10.0.0.0/8)",
        f"{SOURCE}:7:11: interface name 'uplink-to-core01' is 16 bytes long (allowed: at most 15 bytes)",
        f"{SOURCE}:9:10: mtu 10 is too small (allowed: at least 68)",
        f"{SOURCE}:10:5: unknown type 'bogus' (allowed: {TYPES})",
        f"{SOURCE}:14:10: '01:00:00:00:00:01' is a multicast MAC address (allowed: a unicast address, "
        "first octet even)",
    ], id="all-model-problems-at-once-sorted-by-position"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        rules:
          - {priority: 5, table: 1}
          - {priority: 5, table: 2}
        routes:
          - {to: 10.0.0.0/24, dev: nope}
        interfaces:
          - {name: a, type: device, master: zz}
          - {name: a, type: device}
          - name: c
            type: device
            addresses: [10.0.0.1/24, 10.0.0.1/25]
        """), [
        f"{SOURCE}:4:16: IPv4 rule priority 5 is declared twice (first at rules[0]; allowed: one rule a priority)",
        f"{SOURCE}:6:28: dev 'nope' is not declared (allowed: an interface in interfaces: a, c)",
        f"{SOURCE}:8:37: master 'zz' is not declared (allowed: a bridge, bond or vrf in interfaces: none declared)",
        f"{SOURCE}:9:12: interface name 'a' is declared twice (first at interfaces[0]; allowed: unique names "
        "in a namespace)",
        f"{SOURCE}:12:30: address 10.0.0.1 is already assigned to 'c' (allowed: each address once)",
    ], id="all-semantic-problems-at-once-sorted-by-position"),
    # the second interface fails the schema; the first is still checked (its master is not declared), and
    # the duplicate name, which only involves the failed entry, is not repeated
    pytest.param(spec("""\
        apiVersion: netx/v1
        interfaces:
          - {name: a, type: device, master: zz}
          - {name: a, type: device, mtu: 1}
        """), [f"{SOURCE}:3:37: master 'zz' is not declared (allowed: a bridge, bond or vrf in interfaces: none "
               "declared)",
              f"{SOURCE}:4:34: mtu 1 is too small (allowed: at least 68)"],
        id="whole-file-checks-run-on-the-parts-that-passed-the-schema"),
    pytest.param(spec("""\
        apiVersion: netx/v1
        routes: []
        base: &base {mtu: 1500}
        routes: []
        interfaces:
          - <<: *base
            name: a
            name: b
        """), [
        f"{SOURCE}:4:1: duplicate key 'routes' (first given at line 2, column 1; allowed: each key once)",
        f"{SOURCE}:6:5: merge keys (<<) are not supported (allowed: plain keys; anchors and aliases on values "
        "are fine)",
        f"{SOURCE}:8:5: duplicate key 'name' (first given at line 7, column 5; allowed: each key once)",
    ], id="all-document-problems-at-once"),
]


@pytest.mark.parametrize(("text", "expected"), EXACT)
def test_spec_problems_are_exactly(text: str, expected: list[str]) -> None:
    assert problems_of(text) == expected


def test_alias_bomb_is_a_positioned_error_not_a_hang() -> None:
    # Billion laughs: 10 levels of 10 aliases expand to 10**10 values. The loader sizes the expansion before
    # building anything, and points at the innermost anchor that passes the limit (l6: 10**7 values).
    lines = ["apiVersion: netx/v1", "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    lines.append("interfaces: *l9")
    started = time.monotonic()
    problems = problems_of("\n".join(lines) + "\n")
    assert time.monotonic() - started < 1
    assert problems == [
        f"{SOURCE}:8:5: document expands to more than {loader.MAX_NODES} values (alias expansion too large; "
        "allowed: write the values out or use fewer nested aliases)",
    ]


# (the file's bytes, or None for no file; loader.MAX_BYTES for the case, or None; the problem after "PATH:")
FILES = [
    pytest.param("apiVersion: netx/v1\n# é".encode() + b"\xff\n", None,
                 "2:4: invalid UTF-8 byte 0xff (allowed: UTF-8 text)", id="invalid-utf8-column-counts-characters"),
    pytest.param(b"apiVersion: netx/v1\ninterfaces:\n  - name: et\xffh0\n    type: device\n", None,
                 "3:13: invalid UTF-8 byte 0xff (allowed: UTF-8 text)", id="invalid-utf8-is-positioned"),
    pytest.param(("apiVersion: netx/v1\n" + "# padding\n" * 10).encode(), 64,
                 "1:1: file is 120 bytes (allowed: at most 64)", id="file-too-large"),
    pytest.param(None, None, "1:1: cannot read the spec (No such file or directory)", id="missing-file"),
]


@pytest.mark.parametrize(("content", "max_bytes", "problem"), FILES)
def test_spec_file_problem_is_positioned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes | None,
                                        max_bytes: int | None, problem: str) -> None:
    if max_bytes is not None:
        monkeypatch.setattr(loader, "MAX_BYTES", max_bytes)
    path = tmp_path / "spec.yaml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.problems == [f"{path}:{problem}"]


def test_example_spec_is_valid() -> None:
    spec_, document = load_spec(EXAMPLE)
    assert document.source == str(EXAMPLE)
    assert [i.name for i in spec_.interfaces] == ["br0", "veth-client", "uplink", "vx42", "mv0"]
    assert len(spec_.routes) == 6
    assert [r.priority for r in spec_.rules] == [1000, 1001]
    assert spec_.sysctl["net.ipv4.ip_forward"] == 1


def test_cli_validate_reports_every_problem_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(spec("""\
        apiVersion: netx/v1
        interfaces:
          - name: uplink-to-core01
            type: device
            mtu: 10
        """))
    result = subprocess.run([sys.executable, "-m", "netplanx", "validate", str(path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}:3:11: interface name 'uplink-to-core01' is 16 bytes long (allowed: at most 15 bytes)",
        f"{path}:5:10: mtu 10 is too small (allowed: at least 68)",
        "2 spec error(s); nothing was changed.",
    ]


def test_cli_validate_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    from netplanx.cli.main import main

    assert main(["validate", str(EXAMPLE)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{EXAMPLE}: valid (")
    assert err == ""

"""The bgp sections: every mistake is reported at its FILE:LINE:COL, and a valid one compiles for each node."""

from __future__ import annotations

import pytest

from netplanx.spec.compile import compile_spec
from tests.specs import problems_of, spec

CLUSTER = """\
    apiVersion: netx/v1
    cluster:
      name: c
      podCIDR: 10.244.0.0/16
      routing: {mode: native, routes: bgp}
      nodes:
        - {name: node-a, address: 192.0.2.11, podCIDR: 10.244.1.0/24}
        - {name: node-b, address: 192.0.2.12, podCIDR: 10.244.2.0/24, bgp: {asn: 65002}}
    bgp:
      asn: 65001
      peers: [{address: 192.0.2.1, asn: 65000}]
      advertise: {prefixes: [{prefix: 198.51.100.0/24, communities: [no-export, "65001:7"]}]}
    """

CASES = [
    pytest.param("""\
        apiVersion: netx/v1
        bgp: {asn: 65001, routerId: 192.0.2.1, peers: [{address: 192.0.2.2, asn: 65000, holdTime: 9, keepalive: 4}]}
        """, 2, 48, "keepalive 4 is more than a third of holdTime 9 (allowed: at most 3)", id="keepalive"),
    pytest.param("""\
        apiVersion: netx/v1
        bgp:
          asn: 65001
          routerId: 192.0.2.1
          advertise: {prefixes: [{prefix: 198.51.100.0/24, communities: ["65001:70000"]}]}
        """, 5, 66, "'65001:70000' is not a BGP community (allowed: ASN:VALUE with both 0-65535, or no-export",
        id="community"),
    pytest.param("""\
        apiVersion: netx/v1
        bgp: {asn: 65001}
        """, 2, 7, "bgp needs a routerId outside a cluster", id="router-id"),
    pytest.param("""\
        apiVersion: netx/v1
        bgp:
          asn: 65001
          routerId: 192.0.2.1
          peers:
            - {address: 192.0.2.2, asn: 65000}
            - {address: 192.0.2.2, asn: 65002}
        """, 7, 17, "peer 192.0.2.2 is declared twice (first at bgp.peers[0]; allowed: one peer an address)",
        id="duplicate-peer"),
    pytest.param("""\
        apiVersion: netx/v1
        bgp: {asn: 65001, routerId: 192.0.2.1, api: localhost}
        """, 2, 45, "'localhost' is not a host:port address", id="api-address"),
    pytest.param("""\
        apiVersion: netx/v1
        bgp: {asn: 0, routerId: 192.0.2.1}
        """, 2, 12, "asn", id="asn-range"),
    pytest.param(CLUSTER.replace("    bgp:\n      asn: 65001\n      peers: [{address: 192.0.2.1, asn: 65000}]\n"
                                 "      advertise: {prefixes: [{prefix: 198.51.100.0/24, communities: [no-export, "
                                 '"65001:7"]}]}\n', "").replace(", bgp: {asn: 65002}", ""),
                 5, 35, "routes: bgp needs a bgp section with the peers", id="routes-bgp-without-bgp"),
    pytest.param(CLUSTER.replace("{mode: native, routes: bgp}", "{mode: tunnel, routes: bgp}"), 5, 35,
                 "routes: bgp needs mode: native", id="routes-bgp-in-tunnel-mode"),
    pytest.param(CLUSTER.replace("bgp: {asn: 65002}", "bgp: {asn: 65002, peers: [{address: 192.0.2.1, asn: 1}]}"),
                 8, 103,
                 "peer 192.0.2.1 is declared twice (first at bgp.peers[0]; allowed: one peer an address)",
                 id="node-peer-repeats-a-common-one"),
    pytest.param("""\
        apiVersion: netx/v1
        bgp: {asn: 65001, routerId: 192.0.2.1, gracefulRestart: {restartTime: 5000}}
        """, 2, 71, "restartTime 5000 is too large (allowed: at most 4095)", id="restart-time-range"),
    pytest.param("""\
        apiVersion: netx/v1
        bgp:
          asn: 65001
          routerId: 192.0.2.1
          gracefulRestart: {enabled: yes please}
        """, 5, 30, "enabled must be true or false", id="restart-enabled-type"),
    pytest.param("""\
        apiVersion: netx/v1
        bgp:
          asn: 65001
          routerId: 192.0.2.1
          gracefulRestart: {enabled: false, restartTime: 60}
        """, 5, 20, "restartTime 60 has no effect with graceful restart off (allowed: enabled: true, or no "
        "restartTime)", id="restart-time-while-off"),
    pytest.param("""\
        apiVersion: netx/v1
        bgp:
          asn: 65001
          routerId: 192.0.2.1
          gracefulRestart: {enabled: false}
          peers: [{address: 192.0.2.2, asn: 65000, gracefulRestart: {restartTime: 30}}]
        """, 6, 75, "restartTime 30 has no effect: bgp.gracefulRestart.enabled is false (allowed: enabled: true "
        "here too, or no restartTime)", id="peer-restart-time-while-off"),
    pytest.param("""\
        apiVersion: netx/v1
        bgp:
          asn: 65001
          routerId: 192.0.2.1
          peers: [{address: 192.0.2.2, asn: 65000, gracefulRestart: {restart: 30}}]
        """, 5, 62, "unknown key 'restart' (allowed: enabled, restartTime)", id="peer-restart-unknown-key"),
]


@pytest.mark.parametrize(("text", "line", "col", "message"), CASES)
def test_bgp_spec_error_is_positioned(text: str, line: int, col: int, message: str) -> None:
    found = problems_of(spec(text), "spec.yaml")
    assert len(found) == 1, found
    assert found[0].startswith(f"spec.yaml:{line}:{col}: "), found[0]
    assert message in found[0], found[0]


def test_cluster_bgp_compiles_per_node_with_overrides() -> None:
    from netplanx.spec.validate import parse_spec

    text = spec(CLUSTER).replace(", bgp: {asn: 65002}",
                                 ", bgp: {asn: 65002, routerId: 192.0.2.99, prefixes: [{prefix: 203.0.113.0/24}]}")
    parsed, _ = parse_spec(text, "spec.yaml")
    a = {r.address: r for r in compile_spec(parsed, "node-a")}
    b = {r.address: r for r in compile_spec(parsed, "node-b")}
    restart = {"graceful_restart": True, "restart_time": 120}  # the default
    assert a["bgp.global"].attrs == {"asn": 65001, "router_id": "192.0.2.11", "listen_port": 179, **restart}
    assert b["bgp.global"].attrs == {"asn": 65002, "router_id": "192.0.2.99", "listen_port": 179, **restart}
    assert a["bgppath.198.51.100.0/24"].attrs["communities"] == ["65001:7", "no-export"]
    assert "bgppath.10.244.1.0/24" in a and "bgppath.10.244.2.0/24" in b and "bgppath.203.0.113.0/24" in b
    assert "bgppath.203.0.113.0/24" not in a
    assert a["bgppeer.192.0.2.1"].attrs["keepalive"] == 30 and a["bgppeer.192.0.2.1"].attrs["families"] == [
        "ipv4-unicast"]
    # routes: bgp leaves the other nodes' pod networks to BGP: no static route to them
    assert not any(address.startswith("route.main.10.244.2.") for address in a)


def test_service_vips_are_advertised_when_asked() -> None:
    from netplanx.spec.validate import parse_spec

    text = spec(CLUSTER).replace("advertise: {", "advertise: {serviceVIPs: true, ") + (
        "services:\n"
        "  - {name: web, vip: 10.96.0.10, port: 80, backends: [{address: 10.244.1.20, port: 8080}]}\n"
        "  - {name: web-tls, vip: 10.96.0.10, port: 443, backends: [{address: 10.244.1.20, port: 8443}]}\n"
        "  - {name: dns, vip: 10.96.0.53, vip6: 'fd00:96::53', port: 53, protocol: udp, backends: [{address: "
        "10.244.2.20}, {address: 'fd00:244:2::20'}]}\n")
    parsed, _ = parse_spec(text, "spec.yaml")
    paths = {r.address for r in compile_spec(parsed, "node-a") if r.kind == "bgppath"}
    assert {"bgppath.10.96.0.10/32", "bgppath.10.96.0.53/32", "bgppath.fd00:96::53/128"} <= paths
    quiet, _ = parse_spec(text.replace("serviceVIPs: true, ", ""), "spec.yaml")
    assert not any("10.96." in r.address for r in compile_spec(quiet, "node-a"))


def test_adopting_a_peer_with_a_password_asks_for_its_file() -> None:
    from netplanx.features.bgp.resources import global_resource, peer_resource
    from netplanx.spec.adopt import live_to_spec

    live = [global_resource(asn=65001, router_id="192.0.2.11", listen_port=179, graceful_restart=None,
                            restart_time=None, api="127.0.0.1:50051"),
            peer_resource("2001:db8::1", asn=65000, password_file=None, multihop=0, hold_time=9, keepalive=3,
                          families=["ipv6-unicast"], description="", passive=False, graceful_restart=True,
                          restart_time=120, api="127.0.0.1:50051", password="hmac:0123456789ab")]
    peer = live_to_spec(live)["bgp"]["peers"][0]
    assert peer == {"address": "2001:db8::1", "asn": 65000, "passwordFile": "/etc/netx/bgp-2001-db8--1.pw",
                    "holdTime": 9}


def test_graceful_restart_is_on_by_default_and_a_peer_can_differ() -> None:
    from netplanx.spec.validate import parse_spec

    text = spec("""\
        apiVersion: netx/v1
        bgp:
          asn: 65001
          routerId: 192.0.2.11
          gracefulRestart: {restartTime: 60}
          peers:
            - {address: 192.0.2.1, asn: 65000}
            - {address: 192.0.2.2, asn: 65000, gracefulRestart: {enabled: false}}
            - {address: 192.0.2.3, asn: 65000, gracefulRestart: {restartTime: 30}}
        """)
    parsed, _ = parse_spec(text, "spec.yaml")
    found = {r.address: r.attrs for r in compile_spec(parsed)}
    assert (found["bgp.global"]["graceful_restart"], found["bgp.global"]["restart_time"]) == (True, 60)
    assert [(found[f"bgppeer.192.0.2.{i}"]["graceful_restart"], found[f"bgppeer.192.0.2.{i}"]["restart_time"])
            for i in (1, 2, 3)] == [(True, 60), (False, 0), (True, 30)]
    default, _ = parse_spec(text.replace("  gracefulRestart: {restartTime: 60}\n", ""), "spec.yaml")
    assert {r.address: r.attrs for r in compile_spec(default)}["bgppeer.192.0.2.1"]["restart_time"] == 120

"""Native routing over BGP in the three-node lab: BIRD reflects the nodes' pod networks, each node's
``netx bgp sync`` installs the others', and endpoints on different nodes talk over plain routing."""

from __future__ import annotations

import subprocess
import time

from netplanx.lab.bgp import gobgp, wait_until
from netplanx.lab.cluster import REFLECTOR, Lab
from tests.conftest import ip_json
from tests.test_cluster import WEB_B, WEB_B6, all_reachable, spec
from tests.traffic import capture, ping_flow

PODS = {"node-a": ("10.244.1.0/24", "fd00:244:0:1::/64"), "node-b": ("10.244.2.0/24", "fd00:244:0:2::/64"),
        "node-c": ("10.244.3.0/24", "fd00:244:0:3::/64")}


def learned_routes(lab: Lab, node: str) -> dict[str, str]:
    netns = lab.netns(node)
    return {r["dst"]: r.get("gateway", "") for family in ("-4", "-6")
            for r in ip_json(netns, family, "route", "show", "proto", "79")}


def test_native_routing_over_bgp_connects_endpoints(lab):
    lab.start_bgp()
    plan = lab.plan(spec(lab, "bgp"), "node-a")
    creates = {c["address"] for c in plan["changes"]}
    assert {"bgp.global", f"bgppeer.{REFLECTOR[0]}", f"bgppeer.{REFLECTOR[1]}", "bgppath.10.244.1.0/24",
            "bgppath.fd00:244:0:1::/64"} <= creates
    assert not any(a.startswith(("route.main.10.244.2.", "route.main.10.244.3.")) for a in creates)
    lab.apply(spec(lab, "bgp"))
    lab.start_route_sync()
    for node in lab.nodes:
        others = {p for other, pods in PODS.items() if other != node for p in pods}
        routes = wait_until(lambda n=node, o=others: (r := learned_routes(lab, n)).keys() >= o and r, 30,
                            f"{node} learning the other pod networks")
        assert routes["10.244.2.0/24" if node != "node-b" else "10.244.1.0/24"].startswith("192.0.2.1")
    reflector_kernel = {r["dst"] for r in ip_json(lab.underlay, "route", "show", "proto", "bird")}
    assert {pods[0] for pods in PODS.values()} <= reflector_kernel  # BIRD put the pod CIDRs in its kernel
    with capture(lab.underlay, "ul0", "udp port 8472") as tunnelled:
        all_reachable(lab)
    assert not tunnelled, "native routing must not encapsulate"
    established = gobgp(lab.netns("node-a"), "neighbor").stdout
    assert established.count("Establ") == 2, established
    for node in lab.nodes:  # idempotent, and the synced routes are not the spec's business
        assert lab.plan(spec(lab, "bgp"), node)["changes"] == []


def test_service_vips_reach_the_route_reflector(lab):
    """With advertise.serviceVIPs every node announces each VIP, so the router can spread clients over them."""
    lab.start_bgp()
    text = spec(lab, "bgp").replace("bgp:\n  asn: 65000\n", "bgp:\n  asn: 65000\n  advertise: {serviceVIPs: true}\n")
    text += ("services:\n"
             "  - {name: web, vip: 10.96.0.10, port: 80, backends: [{endpoint: web-b, port: 8080}]}\n")
    lab.apply(text)
    reflector = next(iter(lab.daemons.glob("bird-*.ctl")))
    routes = wait_until(lambda: (out := subprocess.run(["birdc", "-s", str(reflector), "show", "route",
                                                        "10.96.0.10/32", "all"], capture_output=True,
                                                       text=True).stdout).count("BGP.next_hop") == 3 and out,
                        20, "the VIP from every node")
    assert all(f"192.0.2.{10 + i}" in routes for i in (1, 2, 3))


def test_traffic_keeps_flowing_while_a_nodes_gobgpd_restarts(lab):
    """Graceful restart end to end: node-a's gobgpd is killed (as systemd stops it with the example unit)
    and started again empty. BIRD keeps node-a's pod networks (it helps the restart), node-a's sync keeps
    the others', and once netx applies node-a's spec again gobgpd restarts its sessions with the Restart
    State and Forwarding State flags, so no route moves. Pings both ways over IPv4 and IPv6 lose nothing."""
    lab.start_bgp()
    lab.apply(spec(lab, "bgp"))
    lab.start_route_sync()
    wait_until(lambda: learned_routes(lab, "node-a").keys() >= {*PODS["node-b"], *PODS["node-c"]}, 30,
               "node-a learning the other pod networks")
    wait_until(lambda: learned_routes(lab, "node-b").keys() >= set(PODS["node-a"]), 30, "node-b learning node-a's")
    log = lab.daemons / f"netx-bgp-sync-{lab.netns('node-a')}.log"
    synced = log.read_text().count("synced:")
    web_a, web_b = lab.endpoint_netns("web-a"), lab.endpoint_netns("web-b")
    with ping_flow(web_a, WEB_B) as there, ping_flow(web_b, "10.244.1.11") as back, ping_flow(web_a, WEB_B6) as v6:
        started = time.monotonic()
        lab.restart_gobgpd("node-a")
        lab.apply(spec(lab, "bgp"), ["node-a"])
        wait_until(lambda: log.read_text().count("synced:") > synced, 30, "node-a's sync after the restart")
        wait_until(lambda: gobgp(lab.netns("node-a"), "neighbor").stdout.count("Establ") == 2, 30, "both sessions")
        restarted = time.monotonic() - started
    for flow in (there, back, v6):
        assert len(flow.answered) > restarted / 0.05 and flow.lost == [], flow.lines[-3:]  # 20 a second at least
    routes = learned_routes(lab, "node-b")
    assert routes["10.244.1.0/24"] == "192.0.2.11" and "fd00:244:0:1::/64" in routes
    print(f"gobgpd restart on node-a: {restarted:.2f} s until synced again, "
          f"{sum(len(f.answered) for f in (there, back, v6))} echo replies, none lost")

"""Create, update, replace and delete of every kernel resource kind, observed with iproute2."""

from __future__ import annotations

import errno
import subprocess
from types import MappingProxyType

from netplanx.system import netns as namespaces
from tests.conftest import NetlinkEvents, assert_adopts, ip, ip_json, sysctl

BASE = """\
apiVersion: netx/v1
interfaces:
  - {name: br0, type: bridge, addresses: [10.0.0.1/24, "fd00::1/64"]}
  - {name: uplink, type: veth, peer: {name: uplink-p}, addresses: [192.0.2.10/24, "2001:db8::10/64"]}
"""


def changes(plan: dict) -> dict[str, dict]:
    return {c["address"]: c for c in plan["changes"]}


def actions(plan: dict) -> dict[str, str]:
    return {c["address"]: c["action"] for c in plan["changes"]}


def link(netns: str, name: str) -> dict:
    found = ip_json(netns, "-d", "link", "show", "dev", name)
    assert found, f"{name} missing"
    return found[0]


def routes(netns: str, *args: str) -> list[dict]:
    return ip_json(netns, *args, "route", "show", "table", "all")


def test_links_create_update_replace_delete(netx, netns, other_netns):
    spec = BASE + f"""\
  - {{name: veth-a, type: veth, peer: {{name: eth0, netns: {other_netns}}}, master: br0, mtu: 1400}}
  - {{name: vx0, type: vxlan, vni: 42, local: 192.0.2.10, remote: 192.0.2.20, device: uplink, learning: false,
     addresses: [10.42.0.1/24]}}
  - {{name: mv0, type: macvlan, parent: uplink, mode: bridge}}
"""
    plan = netx.plan(spec)
    assert set(actions(plan).values()) == {"create"}
    netx.apply(spec)
    veth = link(netns, "veth-a")
    assert veth["master"] == "br0" and veth["mtu"] == 1400 and veth["ifalias"] == "netx"
    assert "UP" in veth["flags"]
    peer = ip_json(other_netns, "link", "show", "dev", "eth0")[0]
    assert "UP" in peer["flags"] and peer["mtu"] == 1400
    vx = link(netns, "vx0")["linkinfo"]["info_data"]
    assert (vx["id"], vx["local"], vx["remote"], vx["link"], vx["learning"]) == (42, "192.0.2.10", "192.0.2.20",
                                                                                 "uplink", False)
    assert link(netns, "mv0")["linkinfo"]["info_data"]["mode"] == "bridge"

    # in-place updates: mtu (hitless), state down (link down), master removed
    updated = spec.replace("master: br0, mtu: 1400", "mtu: 1300, state: down")
    plan = netx.plan(updated)
    change = changes(plan)["link.veth-a"]
    assert change["action"] == "update" and set(change["changed"]) == {"mtu", "state", "master"}
    assert change["disruption"] == "link down"
    netx.apply(updated)
    veth = link(netns, "veth-a")
    assert veth["mtu"] == 1300 and "UP" not in veth["flags"] and "master" not in veth

    # a new VNI cannot be set in place: replace, and the address on the tunnel is re-created with it
    replaced = updated.replace("vni: 42", "vni: 43")
    plan = changes(netx.plan(replaced))
    assert plan["link.vx0"]["action"] == "replace" and plan["link.vx0"]["forces_replacement"] == ["vni"]
    assert plan["link.vx0"]["disruption"] == "traffic loss"
    assert plan["address.vx0.10.42.0.1/24"]["action"] == "replace"
    assert "link.vx0 is replaced" in plan["address.vx0.10.42.0.1/24"]["reason"]
    netx.apply(replaced)
    assert link(netns, "vx0")["linkinfo"]["info_data"]["id"] == 43
    assert any(a["local"] == "10.42.0.1" for a in ip_json(netns, "addr", "show", "dev", "vx0")[0]["addr_info"])

    # removing interfaces from the spec deletes them (and the veth's peer in the other namespace with it)
    plan = netx.plan(BASE)
    assert actions(plan) == {"link.veth-a": "delete", "link.vx0": "delete", "link.mv0": "delete",
                             "address.vx0.10.42.0.1/24": "delete"}
    netx.apply(BASE)
    names = {entry["ifname"] for entry in ip_json(netns, "link", "show")}
    assert names == {"lo", "br0", "uplink", "uplink-p"}
    assert not ip_json(other_netns, "link", "show", "dev", "eth0") if "eth0" in ip("-n", other_netns, "link") else True
    assert netx.plan(BASE)["changes"] == []


def test_bridge_stp_and_mac_update(netx, netns):
    netx.apply(BASE)
    spec = BASE.replace("type: bridge,", 'type: bridge, stp: true, mac: "02:00:00:00:00:aa",')
    change = changes(netx.plan(spec))["link.br0"]
    assert change["action"] == "update" and set(change["changed"]) == {"stp", "mac"}
    netx.apply(spec)
    br = link(netns, "br0")
    assert br["address"] == "02:00:00:00:00:aa" and br["linkinfo"]["info_data"]["stp_state"] == 1


def test_device_is_configured_but_never_created_or_deleted(netx, netns):
    ip("-n", netns, "link", "add", "ext0", "type", "veth", "peer", "name", "ext1")
    spec = "apiVersion: netx/v1\ninterfaces:\n  - {name: ext0, type: device, mtu: 1280, addresses: [198.51.100.1/24]}\n"
    plan = changes(netx.plan(spec))
    assert plan["link.ext0"]["action"] == "update"
    assert plan["address.ext0.198.51.100.1/24"]["action"] == "create"
    netx.apply(spec)
    assert link(netns, "ext0")["mtu"] == 1280 and "UP" in link(netns, "ext0")["flags"]
    netx.apply("apiVersion: netx/v1\n")  # only the address netx made goes; the device stays
    assert link(netns, "ext0")["mtu"] == 1280
    assert not [a for a in ip_json(netns, "addr", "show", "dev", "ext0")[0]["addr_info"] if a["family"] == "inet"]
    missing = netx("plan", spec="apiVersion: netx/v1\ninterfaces:\n  - {name: nope0, type: device}\n")
    assert missing.code == 1 and "device 'nope0' does not exist" in missing.err


def test_addresses_ipv4_ipv6_create_and_delete(netx, netns):
    netx.apply(BASE)
    info = {(a["local"], a["prefixlen"]) for a in ip_json(netns, "addr", "show", "dev", "br0")[0]["addr_info"]}
    assert {("10.0.0.1", 24), ("fd00::1", 64)} <= info
    fewer = BASE.replace(', "fd00::1/64"', "")
    assert actions(netx.plan(fewer)) == {"address.br0.fd00::1/64": "delete"}
    assert changes(netx.plan(fewer))["address.br0.fd00::1/64"]["disruption"] == "address loss"
    netx.apply(fewer)
    info = {a["local"] for a in ip_json(netns, "addr", "show", "dev", "br0")[0]["addr_info"]}
    assert "fd00::1" not in info and "10.0.0.1" in info


ROUTES = BASE + """\
routes:
  - {to: 198.51.100.0/24, via: 192.0.2.1, metric: 100}
  - {to: default, via: 192.0.2.1}
  - {to: "2001:db8:100::/48", via: "2001:db8::1"}
  - {to: 203.0.113.0/24, nexthops: [{via: 192.0.2.1, weight: 2}, {via: 10.0.0.254, dev: br0}]}
  - {to: "2001:db8:200::/48", nexthops: [{via: "2001:db8::1"}, {via: "fd00::fe", dev: br0}]}
  - {to: 10.99.0.0/16, type: blackhole}
  - {to: 10.98.0.0/16, type: unreachable, table: 100}
  - {to: 172.16.0.0/16, dev: br0, src: 10.0.0.1}
  - {to: 172.17.0.0/16, via: 10.9.9.9, dev: br0, onlink: true, table: 1000}
"""


def test_routes_every_shape(netx, netns):
    netx.apply(ROUTES)
    v4 = {(r["dst"], r.get("table", "main")): r for r in routes(netns, "-4")}
    v6 = {(r["dst"], r.get("table", "main")): r for r in routes(netns, "-6")}
    assert v4[("198.51.100.0/24", "main")]["metric"] == 100
    assert v4[("198.51.100.0/24", "main")]["protocol"] in ("netx", "78")
    assert v4[("default", "main")]["gateway"] == "192.0.2.1"
    assert {(h["gateway"], h["weight"]) for h in v4[("203.0.113.0/24", "main")]["nexthops"]} == {
        ("192.0.2.1", 2), ("10.0.0.254", 1)}
    assert len(v6[("2001:db8:200::/48", "main")]["nexthops"]) == 2
    assert v4[("10.99.0.0/16", "main")]["type"] == "blackhole"
    assert v4[("10.98.0.0/16", "100")]["type"] == "unreachable"
    assert v4[("172.16.0.0/16", "main")]["scope"] == "link" and v4[("172.16.0.0/16", "main")]["prefsrc"] == "10.0.0.1"
    assert "onlink" in v4[("172.17.0.0/16", "1000")]["flags"]
    assert netx.plan(ROUTES)["changes"] == []


def test_route_update_is_replace_in_place_and_metric_is_identity(netx, netns):
    netx.apply(ROUTES)
    moved = ROUTES.replace("{to: 198.51.100.0/24, via: 192.0.2.1, metric: 100}",
                           "{to: 198.51.100.0/24, via: 192.0.2.2, metric: 100}")
    change = changes(netx.plan(moved))["route.main.198.51.100.0/24@100"]
    assert change["action"] == "update" and change["changed"] == ["via"] and change["disruption"] == "hitless"
    netx.apply(moved)
    assert [r["gateway"] for r in routes(netns, "-4") if r["dst"] == "198.51.100.0/24"] == ["192.0.2.2"]
    reweighted = moved.replace("{via: 192.0.2.1, weight: 2}", "{via: 192.0.2.1, weight: 3}")
    change = changes(netx.plan(reweighted))["route.main.203.0.113.0/24"]
    assert change["action"] == "update" and change["changed"] == ["nexthops"]
    netx.apply(reweighted)
    remetric = reweighted.replace("via: 192.0.2.2, metric: 100", "via: 192.0.2.2, metric: 200")
    assert actions(netx.plan(remetric)) == {"route.main.198.51.100.0/24@100": "delete",
                                            "route.main.198.51.100.0/24@200": "create"}
    netx.apply(remetric)
    assert [r["metric"] for r in routes(netns, "-4") if r["dst"] == "198.51.100.0/24"] == [200]
    netx.apply(BASE)
    assert not [r for r in routes(netns, "-4") + routes(netns, "-6") if r.get("protocol") in ("netx", "78")]


RULES = BASE + """\
rules:
  - {priority: 1000, from: 10.0.0.0/24, table: 100}
  - {priority: 1001, to: 10.98.0.0/16, action: unreachable}
  - {priority: 1002, fwmark: 0x10, fwmask: 0xff, iif: br0, table: main}
  - {priority: 1000, family: ipv6, from: "fd00::/64", table: 100}
"""


def test_rules_create_replace_delete(netx, netns):
    netx.apply(RULES)
    v4 = {r["priority"]: r for r in ip_json(netns, "-4", "rule", "show")}
    assert v4[1000]["src"] == "10.0.0.0" and v4[1000]["table"] == "100"
    assert v4[1001]["action"] == "unreachable"
    assert v4[1002]["fwmark"] == "0x10" and v4[1002]["fwmask"] == "0xff" and v4[1002]["iif"] == "br0"
    assert {r["priority"] for r in ip_json(netns, "-6", "rule", "show")} >= {1000}
    retabled = RULES.replace("{priority: 1000, from: 10.0.0.0/24, table: 100}",
                             "{priority: 1000, from: 10.0.0.0/24, table: 200}")
    change = changes(netx.plan(retabled))["rule.ipv4.1000"]
    assert change["action"] == "replace" and change["forces_replacement"] == ["table"]
    assert change["disruption"] == "route gap"
    netx.apply(retabled)
    assert {r["priority"]: r for r in ip_json(netns, "-4", "rule", "show")}[1000]["table"] == "200"
    netx.apply(BASE)
    assert {r["priority"] for r in ip_json(netns, "-4", "rule", "show")} == {0, 32766, 32767}


def test_sysctl_update_and_restore_on_removal(netx, netns):
    assert sysctl(netns, "net.ipv4.ip_forward") == "0"
    spec = BASE + "sysctl:\n  net.ipv4.ip_forward: 1\n  net.ipv4.conf.br0.rp_filter: 2\n"
    plan = changes(netx.plan(spec))
    assert plan["sysctl.net.ipv4.ip_forward"]["action"] == "update"
    assert plan["sysctl.net.ipv4.conf.br0.rp_filter"]["action"] == "create"  # appears with its link
    netx.apply(spec)
    assert sysctl(netns, "net.ipv4.ip_forward") == "1"
    assert sysctl(netns, "net.ipv4.conf.br0.rp_filter") == "2"
    assert netx.plan(spec)["changes"] == []
    plan = changes(netx.plan(BASE))
    assert plan["sysctl.net.ipv4.ip_forward"]["action"] == "delete"
    netx.apply(BASE)
    assert sysctl(netns, "net.ipv4.ip_forward") == "0"  # the value found before netx first wrote it
    assert sysctl(netns, "net.ipv4.conf.br0.rp_filter") == sysctl(netns, "net.ipv4.conf.default.rp_filter")
    assert netx.plan(BASE)["changes"] == []


def test_missing_sysctl_is_a_plan_error_naming_the_kernel_feature(netx):
    result = netx("plan", spec="apiVersion: netx/v1\nsysctl: {net.ipv4.no_such_knob: 1}\n")
    assert result.code == 1 and "kernel lacks sysctl net.ipv4.no_such_knob" in result.err


def test_second_apply_makes_no_writes(netx, netns, other_netns):
    spec = ROUTES.replace("interfaces:\n", f"interfaces:\n  - {{name: v9, type: veth, peer: {{name: p9, netns: "
                                           f"{other_netns}}}}}\n")
    spec += RULES[len(BASE):] + "sysctl: {net.ipv4.ip_forward: 1}\n"
    for key in ("all", "default"):  # no IPv6 duplicate address detection: its late events are not netx's
        subprocess.run(["nsenter", f"--net=/run/netns/{netns}", "sysctl", "-qw", f"net.ipv6.conf.{key}.accept_dad=0"],
                       check=True)
    first = netx.apply(spec).json
    assert first["result"] == "applied" and first["writes"] > 0
    events = NetlinkEvents(netns)
    try:
        second = netx.apply(spec).json
        human = netx("apply", "--auto-approve", spec=spec)
        changed = events.pending()
    finally:
        events.close()
    assert second["result"] == "no-changes" and second["writes"] == 0
    assert "No changes" in human.out
    assert changed == 0, "netlink change notifications during a no-op apply"
    # the observer does see a real change
    events = NetlinkEvents(netns)
    try:
        ip("-n", netns, "route", "add", "10.77.0.0/16", "dev", "br0")
        assert events.pending() > 0
    finally:
        events.close()
    adopted = assert_adopts(netx)
    assert "10.77.0.0/16" in adopted and "unmanaged" not in adopted  # a route made by hand is adopted too


TUNNEL = BASE + """\
  - {name: vx0, type: vxlan, external: true, learning: false}
routes:
  - {to: 10.244.2.0/24, via: 10.244.2.0, dev: vx0, onlink: true, encap: {id: 42, dst: 192.0.2.12}}
  - {to: 10.244.3.0/24, dev: vx0, encap: {id: 7, dst: 192.0.2.13}}
neighbours:
  - {dev: vx0, ip: 10.244.2.0, lladdr: "02:00:00:00:02:00"}
  - {dev: vx0, ip: "fd00:244:0:2::", lladdr: "02:00:00:00:02:00"}
  - {dev: br0, ip: 10.0.0.9, lladdr: "02:00:00:00:00:09"}
"""


def test_neighbours_and_encap_routes(netx, netns):
    """A tunnel node's forwarding as a host spec: routes with lightweight tunnel metadata through an external
    vxlan, and permanent neighbour entries (created, updated in place, deleted)."""
    netx.apply(TUNNEL)
    assert "encap ip id 42 src 0.0.0.0 dst 192.0.2.12 " in ip("-n", netns, "route", "show", "10.244.2.0/24")
    assert "encap ip id 7 src 0.0.0.0 dst 192.0.2.13 " in ip("-n", netns, "route", "show", "10.244.3.0/24")
    neighbours = {(n["dst"], n["dev"]): n for n in ip_json(netns, "neigh", "show", "nud", "permanent")}
    assert neighbours[("10.244.2.0", "vx0")]["lladdr"] == "02:00:00:00:02:00"
    assert neighbours[("fd00:244:0:2::", "vx0")]["lladdr"] == "02:00:00:00:02:00"
    assert netx.plan(TUNNEL)["changes"] == []
    moved = TUNNEL.replace("10.0.0.9, lladdr: \"02:00:00:00:00:09\"", "10.0.0.9, lladdr: \"02:00:00:00:00:0a\"")
    moved = moved.replace("id: 7, dst: 192.0.2.13", "id: 8, dst: 192.0.2.13")
    assert actions(netx.plan(moved)) == {"neigh.br0.10.0.0.9": "update", "route.main.10.244.3.0/24": "update"}
    netx.apply(moved)
    assert ip_json(netns, "neigh", "show", "10.0.0.9", "dev", "br0")[0]["lladdr"] == "02:00:00:00:00:0a"
    assert "encap ip id 8 " in ip("-n", netns, "route", "show", "10.244.3.0/24")  # (its JSON has two "dst")
    assert_adopts(netx)
    netx.apply(BASE)
    assert ip_json(netns, "neigh", "show", "nud", "permanent") == []


def test_deleting_what_the_kernel_already_removed_is_done(netx, netns, tmp_path):
    """A route, address, neighbour or rule whose link went first (taking them along) is gone: a delete of
    it succeeds, as the rollback of an apply that removed the link needs."""
    from netplanx.engine.resource import Query
    from netplanx.system import netns as namespaces
    from netplanx.workflow.session import Session

    netx.apply("""\
        apiVersion: netx/v1
        interfaces:
          - {name: g0, type: veth, peer: {name: g0-p}, addresses: [10.91.0.1/24]}
        routes:
          - {to: 10.92.0.0/16, via: 10.91.0.2, table: 100}
        rules:
          - {priority: 1100, from: 10.91.0.0/24, table: 100}
        neighbours:
          - {dev: g0, ip: 10.91.0.9, lladdr: "02:00:00:00:00:09"}
        """)
    with namespaces.inside(netns):
        session = Session(netns, tmp_path / "state")
        try:
            live = {r.address: r for r in session.read_live()}
            ip("-n", netns, "link", "del", "g0")
            ip("-n", netns, "rule", "del", "priority", "1100")
            for address in ("route.100.10.92.0.0/16", "address.g0.10.91.0.1/24", "neigh.g0.10.91.0.9",
                            "rule.ipv4.1100"):
                res = live[address]
                assert session.types[res.kind].delete([res]) == [None], address
            assert not [r for r in session.types["route"].read(Query()) if r.address == "route.100.10.92.0.0/16"]
        finally:
            session.close()


def test_routes_read_by_shape_are_the_routes_decoded_one_by_one(netx, netns):
    """The route read decodes one message per shape (a route without its destination) and copies it for the
    others, in C (_route_dump.c) or in Python (_decode_routes, where it was not built): every kind of route,
    several of each shape, in several tables, must read exactly as decoding each message does, both ways."""
    from tests.test_route_dump import assert_same_routes, three_ways

    netx.apply(ROUTES)
    for extra in ("198.51.101.0/24 via 192.0.2.1 metric 100", "198.51.102.0/24 via 192.0.2.1 metric 100",
                  "10.97.0.0/16 nexthop via 192.0.2.1 nexthop via 10.0.0.254", "10.96.0.0/16 nexthop via 192.0.2.1 "
                  "nexthop via 10.0.0.254", "blackhole 10.95.0.0/16", "172.18.0.0/16 dev br0 src 10.0.0.1",
                  "2001:db8:300::/48 via 2001:db8::1", "198.51.103.0/24 via 192.0.2.1 table 200",
                  "198.51.104.0/24 via 192.0.2.1 table 200", "blackhole 10.94.0.0/16 table 200",
                  "2001:db8:400::/48 via 2001:db8::1 table 200"):
        ip("-n", netns, "route", "add", *extra.split())

    one_by_one, by_shape, in_c, _datagrams = three_ways(netns)
    assert by_shape == one_by_one
    assert_same_routes(in_c, by_shape)
    assert sum(r.attrs["metric"] == 100 for r in by_shape) == 3
    assert sum(r.attrs["table"] == 200 for r in in_c) == 4
    assert not [r for r in in_c if r.attrs["table"] == 255]  # the local table's, skipped by shape
    for found in (by_shape, in_c):
        for alike in (("198.51.101.0/24", "198.51.102.0/24"), ("198.51.103.0/24", "198.51.104.0/24")):
            copied = [type(r.meta) is MappingProxyType for r in found if r.attrs["to"] in alike]
            assert copied == [False, True]  # the second of the shape was not decoded: it shares the first one's meta


def test_a_batch_of_writes_reports_each_failure_in_its_place(netns):
    """Only the last request of a batch asks for an ack: a refused request anywhere (in the middle, last of a
    batch, last of all) is still reported in its place, and every request around it is done."""
    from netplanx.features.routing.routes import RTM_NEWROUTE, _encode, route_resource
    from netplanx.system import netlink

    prefixes = [f"10.77.{i // 256}.{i % 256}/32" for i in range(netlink.BATCH + 5)]
    refused = {3, netlink.BATCH - 1, netlink.BATCH + 4}
    for i in refused:  # already there: a create with NLM_F_EXCL is refused with EEXIST
        ip("-n", netns, "route", "add", "blackhole", prefixes[i])
    requests = [(RTM_NEWROUTE, netlink.NLM_F_CREATE | netlink.NLM_F_EXCL, _encode(route_resource(
        table=254, to=to, metric=None, kind="blackhole", via=None, dev=None, src=None, scope=None, onlink=False,
        nexthops=[]), {})) for to in prefixes]

    def write() -> list[int]:
        nl = netlink.NetlinkSocket()
        try:
            return [0 if error is None else error.errno for error in nl.transact(requests)]
        finally:
            nl.close()

    outcomes = namespaces.call_inside(netns, write)
    assert {i for i, code in enumerate(outcomes) if code} == refused
    assert {outcomes[i] for i in refused} == {errno.EEXIST}
    present = {r["dst"] for r in routes(netns) if r.get("type") == "blackhole"}
    assert present == {p.removesuffix("/32") for p in prefixes}

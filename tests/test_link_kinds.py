"""The link kinds of real servers: bond, vlan, vrf, dummy, ipvlan and the IP tunnels, created, changed in place,
replaced, adopted and deleted, observed with iproute2 (in the stock-kernel VM where this kernel lacks them)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Netx, assert_adopts, ip, ip_json, new_netns, snapshot
from tests.traffic import capture, inside, ping, ping_flow
from tests.vm.plugin import kind_missing

NEW_KINDS = ("bond", "vlan", "vrf", "dummy", "ipvlan", "gre", "gretap", "ipip", "sit", "ip6tnl", "ip6gre")

ALL = """\
apiVersion: netx/v1
interfaces:
  - {name: up0, type: veth, peer: {name: up0-p}, addresses: [192.0.2.1/24, "2001:db8::1/64"]}
  - {name: bond0, type: bond, mode: active-backup, primary: m0}
  - {name: m0, type: veth, peer: {name: m0-p}, master: bond0}
  - {name: m1, type: veth, peer: {name: m1-p}, master: bond0}
  - {name: bond0.10, type: vlan, parent: bond0, id: 10, addresses: [10.10.0.1/24]}
  - {name: qinq, type: vlan, parent: up0, id: 20, protocol: 802.1ad}
  - {name: br0, type: bridge}
  - {name: br0.30, type: vlan, parent: br0, id: 30}
  - {name: up0-p, type: device}
  - {name: nic.40, type: vlan, parent: up0-p, id: 40}
  - {name: blue, type: vrf, table: 10}
  - {name: d0, type: dummy, master: blue, addresses: [10.1.0.1/24]}
  - {name: iv0, type: ipvlan, parent: up0-p, mode: l2}
  - {name: gre1, type: gre, local: 192.0.2.1, remote: 192.0.2.2, key: 7, ttl: 64}
  - {name: tap1, type: gretap, local: 192.0.2.1, remote: 192.0.2.3}
  - {name: ipip1, type: ipip, local: 192.0.2.1, remote: 192.0.2.4}
  - {name: sit1, type: sit, local: 192.0.2.1, remote: 192.0.2.5}
  - {name: t6, type: ip6tnl, local: "2001:db8::1", remote: "2001:db8::2"}
  - {name: g6, type: ip6gre, local: "2001:db8::1", remote: "2001:db8::3", key: 9}
  - {name: gnv1, type: geneve, vni: 5, remote: 192.0.2.6}
routes:
  - {to: default, via: 10.1.0.254, vrf: blue}
"""


def info(netns: str) -> dict[str, dict]:
    """Link name -> (kind, its IFLA_INFO_DATA as iproute2 shows it, master)."""
    return {link["ifname"]: {"kind": link.get("linkinfo", {}).get("info_kind"), "master": link.get("master"),
                             **(link.get("linkinfo", {}).get("info_data") or {})}
            for link in ip_json(netns, "-d", "link", "show")}


def changes(plan: dict) -> dict[str, dict]:
    return {c["address"]: c for c in plan["changes"]}


@pytest.mark.kernel(*NEW_KINDS, "geneve")
def test_every_kind_is_created_changed_in_place_replaced_adopted_and_deleted(netx, netns):
    assert {c["action"] for c in netx.plan(ALL)["changes"]} == {"create"}
    netx.apply(ALL)
    links = info(netns)
    assert links["bond0"]["mode"] == "active-backup" and links["bond0"]["miimon"] == 100
    assert links["bond0"]["primary"] == "m0" and links["m0"]["master"] == links["m1"]["master"] == "bond0"
    assert (links["bond0.10"]["id"], links["bond0.10"]["protocol"]) == (10, "802.1Q")
    assert (links["qinq"]["id"], links["qinq"]["protocol"]) == (20, "802.1ad")
    assert (links["br0.30"]["id"], links["nic.40"]["id"]) == (30, 40)  # on a bridge, on a NIC (a device)
    assert links["blue"]["table"] == 10 and links["d0"]["master"] == "blue" and links["d0"]["kind"] == "dummy"
    assert links["iv0"]["mode"] == "l2"
    assert (links["gre1"]["remote"], links["gre1"]["ttl"], links["gre1"]["ikey"]) == ("192.0.2.2", 64, "0.0.0.7")
    assert [links[name]["kind"] for name in ("tap1", "ipip1", "sit1", "t6", "g6")] == [
        "gretap", "ipip", "sit", "ip6tnl", "ip6gre"]
    assert links["g6"]["okey"] == "0.0.0.9" and links["t6"]["remote"] == "2001:db8::2"
    assert ip_json(netns, "route", "show", "table", "10", "default")[0]["gateway"] == "10.1.0.254"
    assert netx.plan(ALL)["changes"] == []

    # in place: what the kernel changes without re-creating the link
    tuned = (ALL.replace("mode: active-backup, primary: m0", "mode: active-backup, primary: m1, miimon: 50")
             .replace("key: 7, ttl: 64", "key: 8, ttl: 32").replace("remote: 192.0.2.4", "remote: 192.0.2.40")
             .replace("mode: l2", "mode: l3").replace('remote: "2001:db8::2"', 'remote: "2001:db8::20", ttl: 9'))
    plan = changes(netx.plan(tuned))
    assert {address: c["action"] for address, c in plan.items()} == dict.fromkeys(
        ["link.bond0", "link.gre1", "link.ipip1", "link.iv0", "link.t6"], "update")
    assert {address: c["disruption"] for address, c in plan.items()} == {
        "link.bond0": "hitless", "link.gre1": "re-pointed", "link.ipip1": "re-pointed", "link.iv0": "link flap",
        "link.t6": "re-pointed"}
    netx.apply(tuned)
    links = info(netns)
    assert (links["bond0"]["primary"], links["bond0"]["miimon"]) == ("m1", 50)
    assert (links["gre1"]["ikey"], links["gre1"]["ttl"], links["gre1"]["local"]) == ("0.0.0.8", 32, "192.0.2.1")
    assert links["ipip1"]["remote"] == "192.0.2.40" and links["iv0"]["mode"] == "l3" and links["t6"]["ttl"] == 9
    assert netx.plan(tuned)["changes"] == []

    # replaced: what the kernel cannot change in place, with what lives on it
    rebuilt = (tuned.replace("id: 10,", "id: 11,").replace("table: 10", "table: 11")
               .replace("mode: active-backup, primary: m1, miimon: 50", "mode: 802.3ad, lacpRate: fast")
               .replace("remote: 192.0.2.5}", "}"))
    plan = changes(netx.plan(rebuilt))
    assert {a: (c["action"], c["forces_replacement"]) for a, c in plan.items() if c["forces_replacement"]} == {
        "link.bond0.10": ("replace", ["id"]), "link.blue": ("replace", ["table"]),
        "link.bond0": ("replace", ["mode"]), "link.sit1": ("replace", ["remote"])}
    assert plan["address.bond0.10.10.10.0.1/24"]["action"] == "replace"
    assert plan["link.m0"]["action"] == plan["link.d0"]["action"] == "update"  # members re-attached
    assert plan["route.10.0.0.0.0/0"]["action"] == "delete" and plan["route.11.0.0.0.0/0"]["action"] == "create"
    netx.apply(rebuilt)
    links = info(netns)
    assert (links["bond0"]["mode"], links["bond0"]["ad_lacp_rate"], links["m1"]["master"]) == ("802.3ad", "fast",
                                                                                             "bond0")
    assert links["blue"]["table"] == 11 and links["d0"]["master"] == "blue" and links["bond0.10"]["id"] == 11
    assert links["sit1"]["remote"] == "any"
    assert ip_json(netns, "route", "show", "table", "11", "default")[0]["gateway"] == "10.1.0.254"

    adopted = assert_adopts(netx)
    for text in ("type: bond", "mode: 802.3ad", "lacpRate: fast", "type: vlan", "protocol: 802.1ad", "type: vrf",
                 "table: 11", "type: dummy", "type: ipvlan", "key: 8", "type: ip6gre", "type: gretap"):
        assert text in adopted, text

    netx.apply(UP0)
    assert {link["ifname"] for link in ip_json(netns, "link", "show")} - FALLBACKS == {"lo", "up0", "up0-p"}


# the devices the kernel makes in every namespace once a tunnel module is loaded (they cannot be deleted)
FALLBACKS = {"gre0", "gretap0", "erspan0", "tunl0", "sit0", "ip6tnl0", "ip6gre0", "ip_vti0", "ip6_vti0"}


# one entry of each kind that a development kernel may lack, on the veth up0 where it needs a parent
LACKED = {
    "bond": "{name: x1, type: bond}",
    "vlan": "{name: x1, type: vlan, parent: up0, id: 5}",
    "vrf": "{name: x1, type: vrf, table: 10}",
    "dummy": "{name: x1, type: dummy}",
    "ipvlan": "{name: x1, type: ipvlan, parent: up0}",
    "gre": "{name: x1, type: gre, remote: 192.0.2.2}",
    "gretap": "{name: x1, type: gretap, remote: 192.0.2.2}",
    "ipip": "{name: x1, type: ipip, remote: 192.0.2.2}",
    "sit": "{name: x1, type: sit, remote: 192.0.2.2}",
    "ip6tnl": '{name: x1, type: ip6tnl, remote: "2001:db8::2"}',
    "ip6gre": '{name: x1, type: ip6gre, remote: "2001:db8::2"}',
    "geneve": "{name: x1, type: geneve, vni: 5, remote: 192.0.2.2}",
}
UP0 = "apiVersion: netx/v1\ninterfaces:\n  - {name: up0, type: veth, peer: {name: up0-p}}\n"


@pytest.mark.parametrize("kind", sorted(LACKED))
def test_a_kind_this_kernel_lacks_is_a_plan_error_when_created_or_replacing(netx, netns, kind):
    """Creating the kind and replacing a link by one of it: plan and apply exit 1 naming what the kernel lacks,
    and nothing in the namespace changes."""
    if kind_missing(kind) is None:
        pytest.skip(f"this kernel has {kind}")
    netx.apply(UP0 + "  - {name: x1, type: veth, peer: {name: x1-p}}\n")
    before = ip_json(netns, "-d", "link", "show")
    for replacing in (True, False):  # x1 is a veth (a replacement), then it is gone (a creation)
        if not replacing:
            netx.apply(UP0)
        before = ip_json(netns, "-d", "link", "show")
        for command in (("plan",), ("apply", "--auto-approve")):
            result = netx(*command, spec=UP0 + f"  - {LACKED[kind]}\n")
            assert result.code == 1 and f"link.x1: kernel lacks {kind} (" in result.err, result.err
            assert "nothing was changed" in result.err and "Traceback" not in result.err
        assert ip_json(netns, "-d", "link", "show") == before


# --- real traffic between two namespaces (in the stock-kernel VM here) ----------------------------------------

@pytest.fixture
def far(tmp_path: Path) -> Iterator[Netx]:
    """A second namespace with its own netx state: the far side of a scenario."""
    name = new_netns("netx-far")
    (tmp_path / "far").mkdir()
    try:
        yield Netx(name, tmp_path / "far-state", tmp_path / "far")
    finally:
        ip("netns", "del", name, check=False)


def bonded(far: str) -> tuple[str, str]:
    """Two namespaces joined by a bond of two veth pairs, VLANs 10 and 20 on it; on the far side VLAN 20
    lives in the vrf red, whose default route differs from the main table's."""
    near = f"""\
        apiVersion: netx/v1
        interfaces:
          - {{name: bond0, type: bond, mode: active-backup, primary: m0, miimon: 50}}
          - {{name: m0, type: veth, peer: {{name: m0-p, netns: {far}}}, master: bond0}}
          - {{name: m1, type: veth, peer: {{name: m1-p, netns: {far}}}, master: bond0}}
          - {{name: bond0.10, type: vlan, parent: bond0, id: 10, addresses: [10.10.0.1/24]}}
          - {{name: bond0.20, type: vlan, parent: bond0, id: 20, addresses: [10.20.0.1/24]}}
        """
    remote = """\
        apiVersion: netx/v1
        interfaces:
          - {name: bond0, type: bond, mode: active-backup, primary: m0-p, miimon: 50}
          - {name: m0-p, type: device, master: bond0}
          - {name: m1-p, type: device, master: bond0}
          - {name: bond0.10, type: vlan, parent: bond0, id: 10, addresses: [10.10.0.2/24]}
          - {name: red, type: vrf, table: 20}
          - {name: bond0.20, type: vlan, parent: bond0, id: 20, master: red, addresses: [10.20.0.2/24]}
        routes:
          - {to: 198.51.100.0/24, via: 10.10.0.1}
          - {to: default, via: 10.20.0.1, vrf: red}
        rules:
          - {priority: 100, from: 10.30.0.0/24, vrf: red}
        """
    return near, remote


def route_get(netns: str, *args: str) -> dict:
    return ip_json(netns, "route", "get", *args)[0]


@pytest.mark.kernel("bond", "vlan", "vrf")
def test_bond_vlans_and_vrf_carry_traffic_and_survive_a_member_going_down(netx, netns, far):
    near, remote = bonded(far.netns)
    netx.apply(near)
    far.apply(remote)
    # the vrf: its own default route, its rule, and a ping bound to it
    assert route_get(far.netns, "198.51.100.1")["gateway"] == "10.10.0.1"
    assert (route_get(far.netns, "198.51.100.1", "vrf", "red")["gateway"],
            route_get(far.netns, "203.0.113.1", "vrf", "red")["dev"]) == ("10.20.0.1", "bond0.20")
    assert subprocess.run(["ip", "-n", far.netns, "route", "get", "203.0.113.1"], capture_output=True).returncode
    assert {"priority": 100, "src": "10.30.0.0", "srclen": 24, "table": "20"}.items() <= next(
        r for r in ip_json(far.netns, "rule", "show") if r["priority"] == 100).items()
    # the VLANs: tagged on the members' wire; VLAN 20 is out of the main table's reach without a router
    with capture(far.netns, "m0-p", "vlan 10 and icmp") as tagged10:
        assert ping(far.netns, "10.10.0.1")
    with capture(far.netns, "m0-p", "vlan 20 and icmp") as tagged20:
        assert not ping(far.netns, "10.20.0.1", count=1)  # no route in the main table
        bound = subprocess.run(inside(far.netns, "ping", "-c", "3", "-W", "2", "-i", "0.2", "-I", "red",
                                      "10.20.0.1"), capture_output=True, text=True)
        assert bound.returncode == 0, bound.stdout + bound.stderr
    assert tagged10 and tagged20  # (the filters match the tags)
    # the bond: its primary goes down, pings keep flowing over the other member
    assert ip_json(netns, "-d", "link", "show", "bond0")[0]["linkinfo"]["info_data"]["active_slave"] == "m0"
    with ping_flow(netns, "10.10.0.2", interval=0.05) as flow:
        time.sleep(0.5)
        ip("-n", netns, "link", "set", "m0", "down")
        time.sleep(2)
    assert ip_json(netns, "-d", "link", "show", "bond0")[0]["linkinfo"]["info_data"]["active_slave"] == "m1"
    assert len(flow.answered) > 20 and max(flow.answered) > 2 * len(flow.lost), flow.lines[-5:]
    ip("-n", netns, "link", "set", "m0", "up")
    for side, spec in ((netx, near), (far, remote)):
        assert side.plan(spec)["changes"] == []
        assert_adopts(side)


@pytest.mark.kernel("gre", "ipip")
def test_gre_and_ipip_tunnels_carry_pings_between_namespaces(netx, netns, far):
    def side(here: str, there: str, name: str, peer: str) -> str:
        return f"""\
            apiVersion: netx/v1
            interfaces:
              - {name}
              - {{name: gre1, type: gre, local: 192.0.2.{here}, remote: 192.0.2.{there}, key: 7,
                 addresses: [10.47.0.{here}/30]}}
              - {{name: ipip1, type: ipip, local: 192.0.2.{here}, remote: 192.0.2.{there}, ttl: 64,
                 addresses: [10.4.0.{here}/30]}}
            """ + peer
    netx.apply(side("1", "2", f"{{name: ul0, type: veth, peer: {{name: ul0-p, netns: {far.netns}}}, "
                              "addresses: [192.0.2.1/24]}", ""))
    far.apply(side("2", "1", "{name: ul0-p, type: device, addresses: [192.0.2.2/24]}", ""))
    with capture(netns, "ul0", "ip proto 47") as gre:
        assert ping(netns, "10.47.0.2")
    with capture(netns, "ul0", "ip proto 4") as ipip:
        assert ping(netns, "10.4.0.2")
    assert gre and all("GREv0, key=0x7" in line for line in gre), gre
    assert ipip and all("10.4.0." in line and "192.0.2." in line for line in ipip), ipip
    assert_adopts(netx)
    assert_adopts(far)


@pytest.mark.kernel(*NEW_KINDS, "geneve")
def test_a_namespace_set_up_by_hand_adopts_into_a_spec_with_no_changes(netx, netns):
    commands = [
        "link add up0 type veth peer name up0-p", "addr add 192.0.2.1/24 dev up0",
        "addr add 2001:db8::1/64 dev up0 nodad", "link set up0 up", "link set up0-p up",
        "link add m0 type veth peer name m0-p", "link add m1 type veth peer name m1-p",
        "link add bond0 type bond mode 802.3ad lacp_rate fast xmit_hash_policy layer3+4 miimon 100",
        "link set m0 master bond0", "link set m1 master bond0", "link set bond0 up",
        "link add link bond0 name bond0.10 type vlan id 10", "addr add 10.10.0.1/24 dev bond0.10",
        "link set bond0.10 up", "link add link up0 name qinq type vlan proto 802.1ad id 20",
        "link add blue type vrf table 10", "link set blue up", "link add d0 type dummy",
        "link set d0 master blue", "addr add 10.1.0.1/24 dev d0", "link set d0 up",
        "route add default via 10.1.0.254 table 10", "rule add from 10.2.0.0/24 lookup 10 pref 100",
        "link add iv0 link up0-p type ipvlan mode l2",
        "link add gre1 type gre local 192.0.2.1 remote 192.0.2.2 key 7 ttl 64",
        "link add tap1 type gretap local 192.0.2.1 remote 192.0.2.3",
        "link add ipip1 type ipip local 192.0.2.1 remote 192.0.2.4",
        "link add sit1 type sit local 192.0.2.1 remote 192.0.2.5",
        "link add t6 type ip6tnl local 2001:db8::1 remote 2001:db8::2",
        "link add g6 type ip6gre local 2001:db8::1 remote 2001:db8::3 key 9",
        "link add gnv1 type geneve id 5 remote 192.0.2.6",
    ]
    for command in commands:
        ip("-n", netns, *command.split())
    adopted = assert_adopts(netx)
    for text in ("type: bond", "mode: 802.3ad", "lacpRate: fast", "xmitHashPolicy: layer3+4", "type: vlan",
                 "protocol: 802.1ad", "type: vrf", "master: blue", "type: dummy", "type: ipvlan", "mode: l2",
                 "type: gre", "key: 7", "type: gretap", "type: ipip", "type: sit", "type: ip6tnl",
                 "type: ip6gre", "type: geneve", "table: 10"):
        assert text in adopted, text


def migration(far: str, onto: str) -> tuple[str, str]:
    """A NIC (a veth here) holding the address and the default route, and the same moved onto a new ``onto``
    (a bond or a bridge) over that NIC; the far side answers on 192.0.2.1 and 203.0.113.1 (past the gateway)."""
    nic = f"{{name: up0, type: veth, peer: {{name: up0-p, netns: {far}}}"
    route = "routes:\n  - {to: default, via: 192.0.2.1}\n"
    before = f"apiVersion: netx/v1\ninterfaces:\n  - {nic}, addresses: [192.0.2.10/24]}}\n{route}"
    kind = "bond, mode: active-backup" if onto == "bond" else "bridge"
    after = (f"apiVersion: netx/v1\ninterfaces:\n  - {nic}, master: {onto}0}}\n"
             f"  - {{name: {onto}0, type: {kind}, addresses: [192.0.2.10/24]}}\n{route}")
    return before, after


FAR_SIDE = """\
apiVersion: netx/v1
interfaces:
  - {name: up0-p, type: device, addresses: [192.0.2.1/24]}
  - {name: lo, type: device, addresses: [203.0.113.1/32]}
"""


@pytest.mark.parametrize("onto", [pytest.param("bond", marks=pytest.mark.kernel("bond")), "bridge"])
def test_moving_the_address_and_default_route_from_a_nic_onto_a_new_master_is_one_ordered_plan(
        netx, netns, far, onto):
    """nmstate's favourite: one plan, in the order the kernel needs, each step labelled; a step that fails
    rolls back to the NIC holding the address and the route."""
    before, after = migration(far.netns, onto)
    netx.apply(before)
    far.apply(FAR_SIDE)
    assert ping(netns, "203.0.113.1")
    plan = netx.plan(after)
    master = f"{onto}0"
    assert [(s["operation"], s["address"]) for s in plan["steps"]] == [
        ("delete", "route.main.0.0.0.0/0"), ("delete", "address.up0.192.0.2.10/24"), ("create", f"link.{master}"),
        ("update", "link.up0"), ("create", f"address.{master}.192.0.2.10/24"), ("create", "route.main.0.0.0.0/0")]
    assert {c["address"]: c["disruption"] for c in plan["changes"]} == {
        f"link.{master}": "hitless", "link.up0": "link flap", "address.up0.192.0.2.10/24": "address loss",
        f"address.{master}.192.0.2.10/24": "hitless", "route.main.0.0.0.0/0": "route gap"}
    original = snapshot(netns)
    for step in range(1, len(plan["steps"]) + 1):
        failed = netx("apply", "--auto-approve", spec=after, env={"NETX_FAILPOINT_STEP": str(step)})
        assert failed.code == 1 and "back where it was (verified)" in failed.err, failed.err
        assert snapshot(netns) == original, f"step {step}"
        assert ping(netns, "203.0.113.1"), f"step {step}"
    netx.apply(after)
    assert ip_json(netns, "route", "show", "default")[0]["dev"] == master
    assert [a["local"] for a in ip_json(netns, "addr", "show", master)[0]["addr_info"] if a["family"] == "inet"] == [
        "192.0.2.10"]
    assert ping(netns, "203.0.113.1")
    assert netx.plan(after)["changes"] == []

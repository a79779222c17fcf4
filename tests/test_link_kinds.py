"""The link kinds of real servers: bond, vlan, vrf, dummy, ipvlan and the IP tunnels, created, changed in place,
replaced, adopted and deleted, observed with iproute2 (in the stock-kernel VM where this kernel lacks them)."""

from __future__ import annotations

import pytest

from tests.conftest import assert_adopts, ip_json

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

    base = "apiVersion: netx/v1\ninterfaces:\n  - {name: up0, type: veth, peer: {name: up0-p}}\n"
    netx.apply(base)
    assert {link["ifname"] for link in ip_json(netns, "link", "show")} - FALLBACKS == {"lo", "up0", "up0-p"}


# the devices the kernel makes in every namespace once a tunnel module is loaded (they cannot be deleted)
FALLBACKS = {"gre0", "gretap0", "erspan0", "tunl0", "sit0", "ip6tnl0", "ip6gre0", "ip_vti0", "ip6_vti0"}

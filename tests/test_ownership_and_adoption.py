"""What netx does not own it never touches; what exists can be adopted as a spec."""

from __future__ import annotations

import json
import subprocess

from tests.conftest import assert_adopts, ip, ip_json

SPEC = """\
apiVersion: netx/v1
interfaces:
  - {name: br0, type: bridge, addresses: [10.0.0.1/24]}
  - {name: up0, type: veth, peer: {name: up0-p}, addresses: [192.0.2.10/24]}
routes:
  - {to: 198.51.100.0/24, via: 192.0.2.1}
rules:
  - {priority: 1000, from: 10.0.0.0/24, table: 100}
"""


def foreign_objects(netns: str) -> None:
    ip("-n", netns, "link", "add", "foreign0", "type", "veth", "peer", "name", "foreign1")
    ip("-n", netns, "link", "set", "foreign0", "up")
    ip("-n", netns, "addr", "add", "10.50.0.1/24", "dev", "foreign0")
    ip("-n", netns, "route", "add", "10.60.0.0/16", "via", "10.50.0.254", "proto", "static")
    ip("-n", netns, "route", "add", "10.61.0.0/16", "via", "10.50.0.254", "proto", "bird")
    ip("-n", netns, "route", "add", "blackhole", "10.62.0.0/16", "table", "100")
    ip("-n", netns, "rule", "add", "priority", "500", "from", "10.50.0.0/24", "table", "100")
    ip("-n", netns, "rule", "add", "priority", "1000", "to", "10.51.0.0/24", "table", "100")  # same priority
    ip("-n", netns, "neigh", "add", "10.50.0.9", "lladdr", "02:00:00:00:00:09", "dev", "foreign0", "nud", "permanent")
    subprocess.run(["tc", "-n", netns, "qdisc", "add", "dev", "foreign0", "clsact"], check=True)


def foreign_view(netns: str) -> dict:
    routes = ip_json(netns, "route", "show", "table", "all")
    return {
        "links": sorted(link["ifname"] for link in ip_json(netns, "link", "show") if "foreign" in link["ifname"]),
        "addresses": [a["local"] for a in ip_json(netns, "addr", "show", "dev", "foreign0")[0]["addr_info"]
                      if a["family"] == "inet"],
        "routes": sorted(json.dumps(r, sort_keys=True) for r in routes
                         if r.get("dst") in ("10.60.0.0/16", "10.61.0.0/16", "10.62.0.0/16")),
        "rules": sorted(json.dumps(r, sort_keys=True) for r in ip_json(netns, "rule", "show")
                        if r.get("src") == "10.50.0.0" or r.get("dst") == "10.51.0.0"),
        "neighbours": ip_json(netns, "neigh", "show", "dev", "foreign0", "nud", "permanent"),
        "tc": subprocess.run(["tc", "-n", netns, "-j", "qdisc", "show", "dev", "foreign0"],
                             capture_output=True, text=True, check=True).stdout,
    }


def test_foreign_objects_survive_apply_reapply_and_removal(netx, netns):
    foreign_objects(netns)
    expected = foreign_view(netns)
    assert len(expected["routes"]) == 3 and len(expected["rules"]) == 2 and len(expected["neighbours"]) == 1
    assert "clsact" in expected["tc"]
    first = netx.apply(SPEC).json
    assert all("foreign" not in c["address"] and "10.6" not in c["address"] for c in first["plan"]["changes"])
    assert "route.main.10.60.0.0/16" in first["plan"]["unmanaged"]
    assert foreign_view(netns) == expected
    assert netx.apply(SPEC).json["result"] == "no-changes"
    assert foreign_view(netns) == expected
    emptied = netx.apply("apiVersion: netx/v1\n").json
    assert {c["action"] for c in emptied["plan"]["changes"]} == {"delete"}
    assert foreign_view(netns) == expected
    names = {link["ifname"] for link in ip_json(netns, "link", "show")}
    assert "br0" not in names and "up0" not in names


def test_show_marks_ownership(netx, netns):
    foreign_objects(netns)
    netx.apply(SPEC)
    shown = {r["address"]: r["owned"] for r in json.loads(netx("show", "-o", "json").out)}
    assert shown["link.br0"] is True and shown["link.foreign0"] is False
    assert shown["route.main.198.51.100.0/24"] is True and shown["route.main.10.60.0.0/16"] is False
    assert shown["address.foreign0.10.50.0.1/24"] is False and shown["address.br0.10.0.0.1/24"] is True
    table = netx("show").out
    assert any(line.startswith("link.foreign0") and "unmanaged" in line for line in table.splitlines())
    adopted = assert_adopts(netx)  # netx's objects and the foreign ones, in one spec
    assert "02:00:00:00:00:09" in adopted and "10.61.0.0/16" in adopted


def test_adopted_object_is_updated_but_kept_when_it_leaves_the_spec(netx, netns):
    foreign_objects(netns)
    adopt = SPEC + "  - {priority: 500, from: 10.50.0.0/24, table: 100}\n"
    assert {c["action"] for c in netx.plan(adopt)["changes"]} == {"create"}
    netx.apply(adopt)
    with_device = adopt.replace("interfaces:\n", "interfaces:\n  - {name: foreign0, type: device, mtu: 1400}\n")
    changes = {c["address"]: c["action"] for c in netx.plan(with_device)["changes"]}
    assert changes == {"link.foreign0": "update"}
    netx.apply(with_device)
    assert ip_json(netns, "link", "show", "dev", "foreign0")[0]["mtu"] == 1400
    netx.apply("apiVersion: netx/v1\n")
    assert ip_json(netns, "link", "show", "dev", "foreign0")  # netx did not create it: it stays


def test_adoption_round_trip(netx, netns, other_netns):
    for command in (
        ("link", "add", "br9", "type", "bridge"),
        ("link", "add", "v9", "type", "veth", "peer", "name", "v9p", "netns", other_netns),
        ("link", "set", "v9", "master", "br9", "up"),
        ("link", "set", "br9", "up"),
        ("link", "add", "u9", "type", "veth", "peer", "name", "u9p"),
        ("link", "set", "u9", "up", "mtu", "9000"),
        ("link", "set", "u9p", "up"),
        ("link", "add", "vx9", "type", "vxlan", "id", "99", "local", "192.0.2.9", "dev", "u9", "dstport", "8472"),
        ("link", "add", "mv9", "link", "u9", "type", "macvlan", "mode", "private"),
        ("addr", "add", "10.9.0.1/24", "dev", "br9"),
        ("addr", "add", "fd09::1/64", "dev", "br9"),
        ("addr", "add", "192.0.2.9/24", "dev", "u9"),
        ("addr", "add", "192.0.2.99/24", "dev", "u9p"),
        ("route", "add", "198.51.100.0/24", "via", "192.0.2.1", "metric", "50"),
        ("route", "add", "203.0.113.0/24", "nexthop", "via", "192.0.2.1", "weight", "3", "nexthop", "via",
         "10.9.0.254"),
        ("route", "add", "blackhole", "10.99.0.0/16", "table", "7"),
        ("rule", "add", "priority", "300", "fwmark", "0x4", "table", "7"),
        ("link", "add", "vxe", "type", "vxlan", "external", "dstport", "4789"),
        ("link", "set", "vxe", "up"),
        ("route", "add", "10.250.0.0/24", "encap", "ip", "id", "5", "dst", "192.0.2.50", "dev", "vxe"),
        ("neigh", "add", "10.9.0.7", "lladdr", "02:00:00:00:09:07", "dev", "br9", "nud", "permanent"),
        ("neigh", "add", "fd09::7", "lladdr", "02:00:00:00:09:07", "dev", "br9", "nud", "permanent"),
    ):
        ip("-n", netns, *command)
    adopted = netx("show", "-o", "yaml")
    assert adopted.code == 0, adopted.err
    assert adopted.out.startswith("# yaml-language-server: $schema=")
    path = netx.write(adopted.out, "adopted.yaml")
    validated = netx("validate", str(path), netns=False)
    assert validated.code == 0, validated.err + adopted.out
    result = netx("plan", str(path), "--detailed-exitcode")
    assert result.code == 0, result.out + result.err + adopted.out
    assert "No changes" in result.out
    assert "encap: {type: ip, id: 5, dst: 192.0.2.50}" in adopted.out
    assert '- dev: br9\n  ip: 10.9.0.7\n  lladdr: "02:00:00:00:09:07"\n' in adopted.out

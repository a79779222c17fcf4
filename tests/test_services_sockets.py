"""Socket-level load balancing: the cgroup programs on a cgroup the test makes, real TCP and UDP sockets of
both families from processes the test puts in it, observed with bpftool (BPF_PROG_QUERY, links, maps)."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from netplanx.features.services.lbmaps import SOCKET_HOOKS
from netplanx.lab.cluster import Lab, lab_spec
from netplanx.system.bpf.cgroup import cgroup_id
from netplanx.system.bpf.loader import PIN_ROOT
from tests.conftest import assert_adopts, lab_of
from tests.services_observe import (
    bpftool,
    maglev_inner,
    map_dir,
    netx_with,
    new_build,
    outside_client,
    plan_change,
    raw,
    u32,
)
from tests.services_traffic import HeldConnection, connect_many, probe, servers

VIP, VIP6 = "10.96.0.10", "fd00:96::10"
ENDPOINTS = {"client": "node-a", "web-1": "node-a", "web-2": "node-a", "web-3": "node-a"}
CLIENT = {VIP: "10.244.1.11", VIP6: "fd00:244:0:1::b"}  # lab_spec: the client's addresses
ATTACH_TYPES = {"cgroup_inet4_connect", "cgroup_inet6_connect", "cgroup_udp4_sendmsg", "cgroup_udp6_sendmsg",
                "cgroup_udp4_recvmsg", "cgroup_udp6_recvmsg", "cgroup_inet4_getpeername",
                "cgroup_inet6_getpeername", "cgroup_inet_sock_release"}


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_of(1, tmp_path)


def dual(name: str, port: int, protocol: str = "tcp", backends: tuple[str, ...] = ("web-1", "web-2"),
         extra: str = "") -> str:
    """A dual-stack service over endpoints (each gives its IPv4 and IPv6 address)."""
    listed = ", ".join(f"{{endpoint: {b}, port: 8080}}" for b in backends)
    return (f'  - {{name: {name}, vip: {VIP}, vip6: "{VIP6}", port: {port}, protocol: {protocol}, '
            f"backends: [{listed}]{extra}}}\n")


def spec_of(lab: Lab, cgroup: Path | None, *services: str) -> str:
    text = lab_spec(lab.name, lab.nodes, "tunnel", ENDPOINTS) + "services:\n" + "".join(services)
    return text + (f"socketLB: {{cgroup: {cgroup.name}}}\n" if cgroup else "")


def backends_up(lab: Lab, proto: str = "tcp", names: tuple[str, ...] = ("web-1", "web-2", "web-3")):
    return servers({lab.endpoint_netns(n): n for n in names}, 8080, proto)


def attached(cgroup: Path) -> dict[str, str]:
    """Attach type -> program name on the cgroup itself, read with bpftool (BPF_PROG_QUERY)."""
    return {p["attach_type"]: p["name"] for p in bpftool("cgroup", "show", str(cgroup))}


def links(cgroup: Path) -> dict[str, tuple[int, int]]:
    """Attach type -> (link id, program id) of the BPF links on the cgroup, read with bpftool."""
    wanted = cgroup_id(cgroup)
    return {link["attach_type"]: (link["id"], link["prog_id"]) for link in bpftool("link", "show")
            if link.get("type") == "cgroup" and link.get("cgroup_id") == wanted}


def conntrack(lab: Lab) -> list[dict]:
    return bpftool("map", "dump", "pinned", str(map_dir(lab) / "lb_ct"))


def counters(lab: Lab) -> dict[str, dict[str, int]]:
    """Per service: the packets the tc/XDP programs and the sockets the socket programs sent to its backends."""
    shown = json.loads(lab.netx("node-a", "show", "services", "-o", "json").stdout)
    return {s["name"]: {key: sum(b[key] for b in s["backends"]) for key in ("packets", "sockets")} for s in shown}


def names(answers: list[dict]) -> set[str]:
    return {a["answer"].split()[0] if "answer" in a else a["error"] for a in answers}


def test_sockets_of_the_cgroup_reach_backends_directly_in_both_families(lab, cgroup):
    """TCP and UDP of both families from a process in the cgroup: the backend sees the client itself,
    getpeername() and a datagram's source say VIP, and the tc load balancer neither tracks nor counts them;
    the same client outside the cgroup goes through tc. Removing socketLB leaves nothing attached."""
    spec = spec_of(lab, cgroup, dual("web", 80), dual("dns", 53, "udp"))
    lab.apply(spec)
    assert lab.plan(spec, "node-a")["changes"] == []
    assert set(attached(cgroup)) == ATTACH_TYPES and set(attached(cgroup).values()) == set(SOCKET_HOOKS.values())
    client = lab.endpoint_netns("client")
    with backends_up(lab), backends_up(lab, "udp"):
        for vip in (VIP, VIP6):
            tcp = probe(client, vip, 80, 10, cgroup=cgroup)
            assert all(a.get("peer") == [vip, 80] for a in tcp), tcp
            assert {a["answer"].split()[1] for a in tcp} == {CLIENT[vip]}  # no NAT: the backend sees the client
            assert names(tcp) <= {"web-1", "web-2"}
            udp = probe(client, vip, 53, 5, "udp", cgroup=cgroup)
            assert all(a.get("source") == [vip, 53] for a in udp), udp  # recvfrom(): the VIP
            assert len(names(udp)) == 1  # one socket, one backend
            connected = probe(client, vip, 53, 1, "udp-connected", cgroup=cgroup)
            assert connected[0].get("peer") == [vip, 53], connected
        assert conntrack(lab) == []  # the packets carried backend addresses: nothing for tc to translate
        assert counters(lab) == {"web": {"packets": 0, "sockets": 20}, "dns": {"packets": 0, "sockets": 12}}
        outside = probe(client, VIP6, 80, 2)  # the same namespace, outside the cgroup: the tc path
        assert all(a.get("peer") == [VIP6, 80] for a in outside), outside
        assert len(conntrack(lab)) == 4 and counters(lab)["web"]["packets"] > 0
    table = lab.netx("node-a", "show", "services").stdout
    assert "SOCKETS" in table and "[fd00:96::10]:80/tcp" in table
    adopted = assert_adopts(lab, "node-a")
    assert f"socketLB: {{cgroup: {cgroup.name}}}" in adopted and 'vip6: "fd00:96::10"' in adopted

    lab.apply(spec_of(lab, None, dual("web", 80), dual("dns", 53, "udp")))
    assert attached(cgroup) == {} and links(cgroup) == {}
    assert not (PIN_ROOT / lab.netns("node-a") / "lb" / "links").exists()
    with backends_up(lab):  # the cgroup's sockets now go through the packet path
        assert all(a.get("peer") == [VIP, 80] for a in probe(client, VIP, 80, 2, cgroup=cgroup))
    assert counters(lab)["web"]["sockets"] == 20


def test_client_ip_affinity_picks_the_packet_paths_backend(lab, cgroup):
    """With clientIP affinity a client's sockets and its packets through tc go to one backend, in both
    families (the endpoint's addresses are registered for its namespace); two services with rows of
    different sizes make four independent draws."""
    three = ("web-1", "web-2", "web-3")
    spec = spec_of(lab, cgroup, dual("sticky", 81, backends=three, extra=", affinity: clientIP"),
                   dual("small", 82, backends=three, extra=", affinity: clientIP, maglevTableSize: 251"))
    lab.apply(spec)
    assert lab.plan(spec, "node-a")["changes"] == []
    registered = bpftool("map", "dump", "pinned", str(map_dir(lab) / "lb_sk_client"))
    assert len(registered) == len(ENDPOINTS)
    client = lab.endpoint_netns("client")
    with backends_up(lab):
        for vip in (VIP, VIP6):
            for port in (81, 82):
                sockets, packets = names(probe(client, vip, port, 5, cgroup=cgroup)), names(probe(client, vip, port, 5))
                assert len(sockets) == 1 and sockets == packets, (vip, port, sockets, packets)


def test_a_connected_socket_keeps_its_backend_when_the_backend_is_removed(lab, cgroup):
    spec = spec_of(lab, cgroup, dual("web", 80))
    lab.apply(spec)
    client = lab.endpoint_netns("client")
    with backends_up(lab):
        held = {vip: HeldConnection(client, vip, 80, cgroup) for vip in (VIP, VIP6)}
        try:
            gone = held[VIP].first
            kept = "web-2" if gone == "web-1" else "web-1"
            change = plan_change(lab.plan(spec_of(lab, cgroup, dual("web", 80, backends=(kept,))), "node-a"),
                                 "service.web")
            assert "removed" in change["disruption"] and "IPv6 Maglev slots move" in change["disruption"]
            lab.apply(spec_of(lab, cgroup, dual("web", 80, backends=(kept,))))
            assert held[VIP].ask() == gone and held[VIP6].ask() == held[VIP6].first
            for vip in (VIP, VIP6):
                assert connect_many(client, vip, 80, 20, cgroup=cgroup) == Counter({kept: 20})
        finally:
            for connection in held.values():
                connection.close()


def test_a_detached_or_unpinned_link_is_drift_and_apply_attaches_it_again(lab, cgroup):
    spec = spec_of(lab, cgroup, dual("web", 80))
    lab.apply(spec)
    before = links(cgroup)
    assert set(before) == ATTACH_TYPES
    # a link detached by hand: its pin stays, the program is off the cgroup at once
    bpftool("link", "detach", "id", str(before["cgroup_inet4_connect"][0]))
    assert set(attached(cgroup)) == ATTACH_TYPES - {"cgroup_inet4_connect"}
    # and a link whose pin was removed: nothing holds it any more (the kernel frees it from a work queue)
    (PIN_ROOT / lab.netns("node-a") / "lb" / "links" / "recvmsg6").unlink()
    change = plan_change(lab.plan(spec, "node-a"), "socklb.cgroup")
    assert (change["action"], change["disruption"]) == (
        "update", "hitless: socket hooks attached again (connect4, recvmsg6)")
    lab.apply(spec)
    assert set(attached(cgroup)) == ATTACH_TYPES
    assert lab.plan(spec, "node-a")["changes"] == []
    with backends_up(lab):
        assert all(a.get("peer") == [VIP, 80] for a in probe(lab.endpoint_netns("client"), VIP, 80, 3,
                                                            cgroup=cgroup))
    assert counters(lab)["web"] == {"packets": 0, "sockets": 3}


def test_a_new_program_version_is_swapped_into_the_links_in_place(lab, cgroup, tmp_path):
    """An upgrade updates each link's program (BPF_LINK_UPDATE: the same links, new programs) while a
    socket-balanced connection stays up; not confirmed, the previous programs go back into the links."""
    spec = spec_of(lab, cgroup, dual("web", 80))
    lab.apply(spec)
    old = links(cgroup)
    env = {"NETX_BPF_DIR": str(new_build(tmp_path))}
    path = lab.write(spec)
    plan = json.loads(netx_with(lab, env, "plan", str(path), "--json").stdout)
    change = plan_change(plan, "socklb.cgroup")
    assert (change["action"], change["disruption"]) == ("update", "hitless (in-place program replace: BPF_LINK_UPDATE)")
    with backends_up(lab):
        held = HeldConnection(lab.endpoint_netns("client"), VIP6, 80, cgroup)
        try:
            done = netx_with(lab, env, "apply", str(path), "--auto-approve", "--confirm-timeout", "1")
            assert done.returncode == 1 and "not confirmed within 1s: reverted" in done.stderr, done.stderr
            assert links(cgroup) == old
            done = netx_with(lab, env, "apply", str(path), "--auto-approve")
            assert done.returncode == 0, done.stderr
            new = links(cgroup)
            assert {k: v[0] for k, v in new.items()} == {k: v[0] for k, v in old.items()}  # the same links
            assert not {v[1] for v in new.values()} & {v[1] for v in old.values()}  # with new programs
            assert held.ask() == held.first
            assert all(a.get("peer") == [VIP6, 80] for a in probe(lab.endpoint_netns("client"), VIP6, 80, 3,
                                                                 cgroup=cgroup))
        finally:
            held.close()
    assert json.loads(netx_with(lab, env, "plan", str(path), "--json").stdout)["changes"] == []


def test_the_cgroup_is_found_below_the_cgroup2_mount_and_must_exist(lab, cgroup):
    spec = spec_of(lab, cgroup, dual("web", 80))

    def plan(path: str) -> subprocess.CompletedProcess[str]:
        return lab.netx("node-a", "plan", str(lab.write(spec.replace(f"cgroup: {cgroup.name}", f"cgroup: {path}"))))

    absolute = spec.replace(f"cgroup: {cgroup.name}", f"cgroup: {cgroup}")
    change = plan_change(lab.plan(absolute, "node-a"), "socklb.cgroup")
    assert change["after"]["attrs"]["cgroup"] == cgroup.name  # made relative to the mount found in /proc/mounts
    missing = plan(f"{cgroup.name}/nothing")
    assert missing.returncode != 0
    assert f"socklb.cgroup: cgroup {cgroup.name}/nothing does not exist below the cgroup v2 mount" in missing.stderr
    outside = plan("/tmp/x")
    assert outside.returncode != 0 and "cgroup /tmp/x is not below the cgroup v2 mount" in outside.stderr
    root = plan(str(cgroup.parent))  # nothing is ever attached to the root: the plan refuses it
    assert root.returncode != 0 and "is the root of the cgroup v2 hierarchy" in root.stderr


@pytest.fixture
def lab3(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_of(3, tmp_path)


def test_dual_stack_across_nodes_with_the_same_maglev_rows_sockets_and_masquerade(lab3, cgroup):
    """Backends on three nodes over the overlay, both families: every node has the same Maglev rows (IPv4 and
    IPv6); a process in node-a's workloads cgroup reaches them all through the socket programs; clients
    outside reach them through node-a's XDP, masqueraded to node-a's IPv4 and IPv6 addresses."""
    for node in lab3.nodes:
        (cgroup / node).mkdir()
    endpoints = {"client": "node-a", "web-a": "node-a", "web-b": "node-b", "web-c": "node-c"}
    text = lab_spec(lab3.name, lab3.nodes, "tunnel", endpoints).replace(
        "prefixLength6: 64}", "prefixLength6: 64, loadBalancer: xdp}")
    for node in lab3.nodes:  # each node's own workloads cgroup
        text = text.replace(f'podCIDR6: "fd00:244:0:{lab3.nodes.index(node) + 1}::/64"}}',
                            f'podCIDR6: "fd00:244:0:{lab3.nodes.index(node) + 1}::/64", '
                            f"socketLB: {{cgroup: {cgroup.name}/{node}}}}}")
    text += "services:\n" + dual("web", 80, backends=("web-a", "web-b", "web-c"))
    lab3.apply(text)
    for node in lab3.nodes:
        assert lab3.plan(text, node)["changes"] == []
        assert set(attached(cgroup / node)) == ATTACH_TYPES
    for family in (4, 6):
        rows = [_resolved_row(lab3, node, family) for node in lab3.nodes]
        assert rows[0] == rows[1] == rows[2] and len(set(rows[0])) == 3
    outside = outside_client(lab3)
    with servers({lab3.endpoint_netns(n): n for n in ("web-a", "web-b", "web-c")}, 8080):
        for vip in (VIP, VIP6):
            answers = probe(lab3.endpoint_netns("client"), vip, 80, 30, cgroup=cgroup / "node-a")
            assert names(answers) == {"web-a", "web-b", "web-c"} and all(a["peer"] == [vip, 80] for a in answers)
            masqueraded = probe(outside, vip, 80, 30)
            assert names(masqueraded) == {"web-a", "web-b", "web-c"}, masqueraded
            seen = {a["answer"].split()[1] for a in masqueraded}
            assert seen == {"192.0.2.11" if vip == VIP else "2001:db8::11"}  # node-a's address
            assert all(61000 <= int(a["answer"].split()[2]) <= 65535 for a in masqueraded)
    assert conntrack_on(lab3, "node-a", DIR_FORWARD) == 60  # the outside flows; none of the sockets'


DIR_FORWARD = 0


def conntrack_on(lab: Lab, node: str, direction: int) -> int:
    """lb_ct entries of one direction on a node (the direction byte follows the two addresses and ports)."""
    return sum(raw(e, "key")[37] == direction for e in bpftool("map", "dump", "pinned",
                                                                  str(map_dir(lab, node) / "lb_ct")))


def _resolved_row(lab: Lab, node: str, family: int) -> tuple[str, ...]:
    """A node's Maglev row of the web service's ``family`` frontend with backend ids resolved to addresses
    (ids may differ between nodes)."""
    backends = {u32(raw(e, "key")): raw(e, "value")[:18].hex()
                for e in bpftool("map", "dump", "pinned", str(map_dir(lab, node) / "lb_be"))}
    slots = bpftool("map", "dump", "id", str(maglev_inner(lab, "web", family, node)))
    return tuple(backends[u32(raw(e, "value"))] for e in sorted(slots, key=lambda e: u32(raw(e, "key"))))

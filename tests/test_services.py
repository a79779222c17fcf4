"""The eBPF load balancer with real packets: a one-node lab (client and backends as endpoints), services
applied with netx, traffic from the client to the VIP, maps observed with bpftool."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from netplanx.features.services.lbmaps import MASQ_PORTS, RESERVED_PORTS
from netplanx.lab.cluster import Lab, lab_spec
from netplanx.system.bpf.loader import PIN_ROOT
from tests.conftest import assert_adopts, lab_of, sysctl
from tests.services_observe import (
    address_bytes,
    backend_names,
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
from tests.services_observe import maglev_row as row_of
from tests.services_traffic import (
    HeldConnection,
    OpenConnections,
    connect_many,
    nsenter,
    peer_server,
    servers,
    tx_checksum_off,
)

VIP = "10.96.0.10"
NODE_ADDRESS = "192.0.2.11"  # lab_spec: node-a, the masquerade address of flows from outside
ENDPOINTS = {"client": "node-a", "web-1": "node-a", "web-2": "node-a", "web-3": "node-a"}
ADDRESS = {"web-1": "10.244.1.12", "web-2": "10.244.1.13", "web-3": "10.244.1.14"}  # lab_spec: .11 is client


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """One node: the client and the backends are its endpoints."""
    yield from lab_of(1, tmp_path)


def services(*blocks: str) -> str:
    return "services:\n" + "".join(blocks)


def web(backends: dict[str, int], *, port: int = 80, protocol: str = "tcp", name: str = "web", vip: str = VIP,
        size: int = 16381, extra: str = "") -> str:
    listed = ", ".join(f"{{endpoint: {e}, port: 8080, weight: {w}}}" for e, w in backends.items())
    return (f"  - {{name: {name}, vip: {vip}, port: {port}, protocol: {protocol}, maglevTableSize: {size}, "
            f"backends: [{listed}]{extra}}}\n")


def spec_of(lab: Lab, *blocks: str, underlay_lb: str = "none") -> str:
    text = lab_spec(lab.name, lab.nodes, "tunnel", ENDPOINTS)
    if underlay_lb != "none":
        text = text.replace("prefixLength6: 64}", f"prefixLength6: 64, loadBalancer: {underlay_lb}}}")
    return text + (services(*blocks) if blocks else "")


NAMES = {address: name for name, address in ADDRESS.items()}


def maglev_row(lab: Lab) -> list[str]:
    """The web service's IPv4 Maglev row as endpoint names."""
    return row_of(lab, names=NAMES)


def backend_servers(lab: Lab, names: tuple[str, ...] = ("web-1", "web-2", "web-3"), proto: str = "tcp"):
    return servers({lab.endpoint_netns(n): n for n in names}, 8080, proto)


def test_traffic_is_balanced_by_weight_with_checksum_offload_off_and_cleanup_leaves_nothing(lab):
    spec = spec_of(lab, web({"web-1": 1, "web-2": 2, "web-3": 1}),
                   web({"web-1": 1, "web-2": 1}, name="dns", port=53, protocol="udp"),
                   web({"web-1": 1, "web-2": 1, "web-3": 1}, name="sticky", port=81, extra=", affinity: clientIP"))
    lab.apply(spec)
    assert lab.plan(spec, "node-a")["changes"] == []  # idempotent
    adopted = assert_adopts(lab, "node-a")
    assert "affinity: clientIP" in adopted and "{address: 10.244.1.13, port: 8080, weight: 2}" in adopted
    node = lab.netns("node-a")
    for endpoint in ENDPOINTS:
        tx_checksum_off(lab.endpoint_netns(endpoint))
        tx_checksum_off(node, f"ep-{endpoint}")
    row = Counter(maglev_row(lab))
    assert abs(row["web-2"] / 16381 - 0.5) < 0.01 and abs(row["web-1"] / 16381 - 0.25) < 0.01, row
    with backend_servers(lab):
        answers = connect_many(lab.endpoint_netns("client"), VIP, 80, 400)
    # 400 connections over shares 1/4, 1/2, 1/4: each count within 35% of its expectation (> 4 sigma)
    assert set(answers) == {"web-1", "web-2", "web-3"}, answers
    for name, share in (("web-1", 0.25), ("web-2", 0.5), ("web-3", 0.25)):
        assert abs(answers[name] - 400 * share) < 0.35 * 400 * share, answers
    with backend_servers(lab):
        sticky = connect_many(lab.endpoint_netns("client"), VIP, 81, 20)
    assert len(sticky) == 1 and sum(sticky.values()) == 20 and "error" not in next(iter(sticky)), sticky
    with backend_servers(lab, ("web-1", "web-2"), "udp"):
        udp = connect_many(lab.endpoint_netns("client"), VIP, 53, 60, "udp")
    assert set(udp) == {"web-1", "web-2"}, udp
    shown = json.loads(lab.netx("node-a", "show", "services", "-o", "json").stdout)
    counters = {b["backend"]: b["packets"] for s in shown if s["name"] == "web" for b in s["backends"]}
    assert all(counters[f"{ADDRESS[n]}:8080"] >= answers[n] * 3 for n in answers), (counters, answers)
    table = lab.netx("node-a", "show", "services").stdout
    assert "10.96.0.10:80/tcp" in table and "10.96.0.10:53/udp" in table

    lab.apply(spec_of(lab))
    assert not (PIN_ROOT / node).exists()
    filters = subprocess.run([*nsenter(node), "tc", "filter", "show", "dev", "ep-client", "ingress"],
                             capture_output=True, text=True).stdout
    assert "netx-lb" not in filters


def test_backend_changes_move_only_their_slots_and_established_flows_stay(lab):
    lab.apply(spec_of(lab, web({"web-1": 1, "web-2": 1})))
    client = lab.endpoint_netns("client")
    with backend_servers(lab):
        held = HeldConnection(client, VIP, 80)
        try:
            kept = held.first
            gone = "web-2" if kept == "web-1" else "web-1"
            before = maglev_row(lab)
            plan = lab.plan(spec_of(lab, web({kept: 1})), "node-a")
            change = plan_change(plan, "service.web")
            assert f"backend {ADDRESS[gone]}:8080 removed" in change["disruption"]
            lab.apply(spec_of(lab, web({kept: 1})))
            after = maglev_row(lab)
            moved = sum(b != a for b, a in zip(before, after, strict=True))
            assert f"{moved} of 16381 Maglev slots move" in change["disruption"]
            assert set(after) == {kept}
            assert held.ask() == kept  # the established connection keeps going
            assert connect_many(client, VIP, 80, 40) == Counter({kept: 40})

            both = spec_of(lab, web({kept: 1, "web-3": 1}))
            change = plan_change(lab.plan(both, "node-a"), "service.web")
            lab.apply(both)
            row = maglev_row(lab)
            moved = sum(b != a for b, a in zip(after, row, strict=True))
            assert f"{moved} of 16381 Maglev slots move" in change["disruption"]
            assert abs(moved - 16381 / 2) < 0.01 * 16381  # adding the 2nd backend moves about 1/2
            three = spec_of(lab, web({kept: 1, "web-3": 1, gone: 1}))
            change = plan_change(lab.plan(three, "node-a"), "service.web")
            lab.apply(three)
            moved = sum(b != a for b, a in zip(row, maglev_row(lab), strict=True))
            assert f"{moved} of 16381 Maglev slots move" in change["disruption"]
            assert abs(moved - 16381 / 3) < 0.01 * 16381  # ... and a 3rd about 1/3
            assert held.ask() == kept
        finally:
            held.close()


def test_a_hand_corrupted_entry_is_drift_and_apply_repairs_it(lab):
    spec = spec_of(lab, web({"web-1": 1, "web-2": 1}))
    lab.apply(spec)
    folder = map_dir(lab)
    # backend 1 (web-1, 10.244.1.12:8080) rewritten by hand to port 8081
    subprocess.run(["bpftool", "map", "update", "pinned", str(folder / "lb_be"), "key", "1", "0", "0", "0",
                    "value", *address_bytes("10.244.1.12"), "0x1f", "0x91", "1", "0", "1", "0", "0", "0"], check=True)
    change = plan_change(lab.plan(spec, "node-a"), "service.web")
    assert change["action"] == "update"
    assert change["before"]["attrs"]["backends"] == {"10.244.1.12:8081": 1, "10.244.1.13:8080": 1}
    lab.apply(spec)
    assert lab.plan(spec, "node-a")["changes"] == []
    # a Maglev slot pointed at a backend id that does not exist
    subprocess.run(["bpftool", "map", "update", "id", str(maglev_inner(lab)), "key", "7", "0", "0", "0",
                    "value", "99", "0", "0", "0"], check=True)
    change = plan_change(lab.plan(spec, "node-a"), "service.web")
    assert "maglev" in change["changed"]
    assert "Maglev table repaired" in change["disruption"] and "1 of 16381 Maglev slots move" in change["disruption"]
    lab.apply(spec)
    assert lab.plan(spec, "node-a")["changes"] == []
    assert "?" not in maglev_row(lab)
    # the frontend entry deleted by hand: the service is missing, apply recreates it with the same id
    subprocess.run(["bpftool", "map", "delete", "pinned", str(folder / "lb_svc"), "key", *address_bytes(VIP), "0",
                    "80", "6", "0"], check=True)
    assert plan_change(lab.plan(spec, "node-a"), "service.web")["action"] == "create"
    lab.apply(spec)
    assert lab.plan(spec, "node-a")["changes"] == []
    assert sorted(backend_names(lab, names=NAMES).values()) == ["web-1", "web-2"]  # no orphaned backends
    with backend_servers(lab, ("web-1", "web-2")):
        assert set(connect_many(lab.endpoint_netns("client"), VIP, 80, 40)) == {"web-1", "web-2"}


def test_a_new_program_version_replaces_the_attached_one_in_place(lab, tmp_path):
    spec = spec_of(lab, web({"web-1": 1, "web-2": 1}))
    lab.apply(spec)
    sources = tmp_path / "bpf"
    shutil.copytree(Path(__file__).resolve().parents[1] / "bpf", sources)
    with (sources / "lb.c").open("a") as handle:
        handle.write("/* a new build */\n")
    node = lab.netns("node-a")
    env = {"NETX_BPF_DIR": str(sources)}

    def filter_id() -> int:
        done = subprocess.run([*nsenter(node), "tc", "-j", "filter", "show", "dev", "ep-client", "ingress"],
                              capture_output=True, text=True, check=True)
        return next(f["options"]["prog"]["id"] for f in json.loads(done.stdout) if "options" in f)

    old = filter_id()
    with backend_servers(lab, ("web-1", "web-2")):
        held = HeldConnection(lab.endpoint_netns("client"), VIP, 80)
        try:
            path = lab.write(spec)
            plan = json.loads(netx_with(lab, env, "plan", str(path), "--json").stdout)
            updates = {c["address"]: c for c in plan["changes"]}
            assert updates["bpfprog.lb"]["action"] == "update"
            assert updates["datapath.ep-client.ingress"]["disruption"] == "hitless (in-place program replace)"
            assert "service.web" not in updates  # the maps stay: same header
            done = netx_with(lab, env, "apply", str(path), "--auto-approve")
            assert done.returncode == 0, done.stderr
            assert filter_id() != old
            assert held.ask() == held.first  # connection tracking survived the upgrade
            assert json.loads(netx_with(lab, env, "plan", str(path), "--json").stdout)["changes"] == []
            assert len(program_versions(lab)) == 1  # the apply is final: the previous version is gone
        finally:
            held.close()


def program_versions(lab: Lab) -> set[str]:
    """The program versions pinned on node-a."""
    return {p.name for p in (PIN_ROOT / lab.netns("node-a") / "lb").glob("prog-*")}


def attached_ids(lab: Lab) -> dict[str, int]:
    """"DEVICE HOOK" -> id of the netx-lb program attached there, read with tc (independent of netx)."""
    found = {}
    for endpoint in ENDPOINTS:
        for hook in ("ingress", "egress"):
            done = subprocess.run([*nsenter(lab.netns("node-a")), "tc", "-j", "filter", "show", "dev",
                                   f"ep-{endpoint}", hook], capture_output=True, text=True, check=True)
            for entry in json.loads(done.stdout or "[]"):
                if entry.get("options", {}).get("bpf_name", "").startswith("netx-lb-"):
                    found[f"ep-{endpoint} {hook}"] = entry["options"]["prog"]["id"]
    return found


@pytest.mark.parametrize("undo", ["failed-step", "not-confirmed"])
def test_an_upgrade_that_is_undone_attaches_the_previous_program_again(lab, tmp_path, undo):
    """The new version is swapped in, then the apply fails (or is not confirmed): the previous programs are
    attached again in place, a held connection keeps going, and the new version's pins go."""
    spec = spec_of(lab, web({"web-1": 1, "web-2": 1}))
    lab.apply(spec)
    old, versions = attached_ids(lab), program_versions(lab)
    assert len(old) == 8 and len(versions) == 1
    env = {"NETX_BPF_DIR": str(new_build(tmp_path))}
    path = lab.write(spec)
    steps = [s["address"] for s in json.loads(netx_with(lab, env, "plan", str(path), "--json").stdout)["steps"]]
    assert steps[0] == "bpfprog.lb" and len(steps) == 9 and all(s.startswith("datapath.ep-") for s in steps[1:])
    with backend_servers(lab, ("web-1", "web-2")):
        held = HeldConnection(lab.endpoint_netns("client"), VIP, 80)
        try:
            if undo == "failed-step":  # step 1 loads the new version, steps 2-4 swap three attachments to it
                done = netx_with(lab, {**env, "NETX_FAILPOINT_STEP": "5"}, "apply", str(path), "--auto-approve")
                assert done.returncode == 1 and "back where it was (verified)" in done.stderr, done.stderr
            else:  # every attachment swapped, then nobody confirms
                done = netx_with(lab, env, "apply", str(path), "--auto-approve", "--confirm-timeout", "1")
                assert done.returncode == 1 and "not confirmed within 1s: reverted" in done.stderr, done.stderr
            assert attached_ids(lab) == old
            shown = {p["id"]: p["name"] for p in bpftool("prog", "show")}
            assert {shown[i] for i in old.values()} == {"lb_ingress", "lb_egress"}
            assert held.ask() == held.first
            assert program_versions(lab) == versions  # the new version is not needed any more
            assert lab.plan(spec, "node-a")["changes"] == []
        finally:
            held.close()


def test_the_previous_program_stays_pinned_until_the_upgrade_is_confirmed(lab, tmp_path):
    spec = spec_of(lab, web({"web-1": 1}))
    lab.apply(spec)
    old, versions = attached_ids(lab), program_versions(lab)
    env = {**os.environ, "NETX_STATE_DIR": str(lab.state_dir), "NETX_BPF_DIR": str(new_build(tmp_path))}
    command = [sys.executable, "-m", "netplanx", "apply", str(lab.write(spec)), "--auto-approve", "--confirm-timeout",
               "60", "--node", "node-a", "--netns", lab.netns("node-a")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert any("Keep it: press Enter" in line for line in process.stdout), process.stderr.read()
        swapped = attached_ids(lab)
        assert set(swapped.values()).isdisjoint(old.values())
        assert len(program_versions(lab)) == 2 and versions < program_versions(lab)  # held for a revert
        confirmed = subprocess.run([sys.executable, "-m", "netplanx", "confirm", "--netns", lab.netns("node-a")],
                                   capture_output=True, text=True, env=env, timeout=60)
        assert confirmed.returncode == 0, confirmed.stderr
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0 and "Confirmed: the change is kept." in out, err
    assert attached_ids(lab) == swapped
    assert len(program_versions(lab)) == 1 and not versions & program_versions(lab)


@pytest.mark.parametrize("mode", ["xdp", "xdpGeneric", "tc"])
def test_traffic_from_outside_is_balanced_on_the_underlay_device(lab, mode):
    outside = outside_client(lab)
    spec = spec_of(lab, web({"web-1": 1, "web-2": 1}), underlay_lb=mode)
    plan = lab.plan(spec, "node-a")
    if mode == "xdp":
        assert plan_change(plan, "datapath.eth0.xdp")["disruption"] == "hitless; mode xdp-native (driver veth)"
    lab.apply(spec)
    assert lab.plan(spec, "node-a")["changes"] == []
    link = json.loads(subprocess.run(["ip", "-n", lab.netns("node-a"), "-j", "-d", "link", "show", "eth0"],
                                     capture_output=True, text=True, check=True).stdout)[0]
    if mode == "tc":
        assert "xdp" not in link
    else:
        assert link["xdp"]["mode"] == (1 if mode == "xdp" else 2)  # 1 native, 2 generic
    with backend_servers(lab, ("web-1", "web-2")):
        answers = connect_many(outside, VIP, 80, 60)
    assert set(answers) == {"web-1", "web-2"}, answers
    adopted = assert_adopts(lab, "node-a")  # the underlay device as one of the host's loadBalancerDevices
    written = {"xdp": "xdpNative", "xdpGeneric": "xdpGeneric", "tc": "tc"}[mode]
    assert (f'loadBalancerDevices:\n- name: eth0\n  mode: {written}\n  masquerade: 192.0.2.11\n'
            f'  masquerade6: "2001:db8::11"\n') in adopted  # the node's IPv6 address masquerades IPv6 flows


def xdp_mode_of(lab: Lab) -> str:
    """The XDP mode of node-a's eth0, read with ip (1 native, 2 generic; "none" without a program)."""
    link = json.loads(subprocess.run(["ip", "-n", lab.netns("node-a"), "-j", "-d", "link", "show", "eth0"],
                                     capture_output=True, text=True, check=True).stdout)[0]
    return {1: "native", 2: "generic"}.get(link.get("xdp", {}).get("mode"), "none")


def test_the_xdp_mode_follows_the_spec_whatever_came_before(lab):
    """xdp means native on veth whether the device had generic XDP or tc before; a mode change is labelled
    with the loss it causes."""
    generic, native = (spec_of(lab, web({"web-1": 1}), underlay_lb=mode) for mode in ("xdpGeneric", "xdp"))
    lab.apply(generic)
    assert xdp_mode_of(lab) == "generic"
    change = plan_change(lab.plan(native, "node-a"), "datapath.eth0.xdp")
    assert (change["action"], change["before"]["attrs"]["mode"], change["after"]["attrs"]["mode"]) == (
        "update", "xdp-generic", "xdp-native")
    assert change["disruption"] == ("traffic loss: the XDP program is detached, then attached in the new mode; "
                                    "packets arriving in between are not balanced; mode xdp-generic -> xdp-native "
                                    "(driver veth)")
    lab.apply(native)
    assert xdp_mode_of(lab) == "native"
    assert lab.plan(native, "node-a")["changes"] == []
    lab.apply(spec_of(lab, web({"web-1": 1}), underlay_lb="tc"))
    assert xdp_mode_of(lab) == "none"
    change = plan_change(lab.plan(native, "node-a"), "datapath.eth0.xdp")
    assert (change["action"], change["after"]["attrs"]["mode"], change["disruption"]) == (
        "create", "xdp-native", "hitless; mode xdp-native (driver veth)")
    lab.apply(native)
    assert xdp_mode_of(lab) == "native"
    change = plan_change(lab.plan(generic, "node-a"), "datapath.eth0.xdp")
    assert change["disruption"].endswith("mode xdp-native -> xdp-generic (driver veth)")
    lab.apply(generic)
    assert xdp_mode_of(lab) == "generic"


def test_masqueraded_flows_never_share_a_five_tuple_with_the_nodes_own_connections(lab):
    """Clients outside, masqueraded to the node's address, and the node's own connections to the same
    backend, all open at once: the backend never sees one source port twice; the masquerade uses the
    reserved range, which the node does not hand out even when its ephemeral range covers it."""
    outside = outside_client(lab)
    spec = spec_of(lab, web({"web-1": 1}), underlay_lb="tc")
    reserved = plan_change(lab.plan(spec, "node-a"), f"sysctl.{RESERVED_PORTS}")
    assert reserved["after"]["attrs"]["value"] == f"{MASQ_PORTS[0]}-{MASQ_PORTS[1]}" == "61000-65535"
    lab.apply(spec)
    node = lab.netns("node-a")
    assert sysctl(node, RESERVED_PORTS) == "61000-65535"
    subprocess.run([*nsenter(node), "sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535"], check=True)
    for endpoint in ENDPOINTS:
        tx_checksum_off(lab.endpoint_netns(endpoint))
        tx_checksum_off(node, f"ep-{endpoint}")
    with peer_server(lab.endpoint_netns("web-1"), 8080) as peers:
        masqueraded = OpenConnections(outside, VIP, 80, 300)
        local = OpenConnections(node, ADDRESS["web-1"], 8080, 300, source=NODE_ADDRESS)
        try:
            local_ports = set(local.ports())
            assert len(masqueraded.ports()) == 300
        finally:
            masqueraded.close()
            local.close()
    ports = [int(peer.rsplit(":", 1)[1]) for peer in peers if peer.startswith(f"{NODE_ADDRESS}:")]
    assert len(ports) == 600 and len(set(ports)) == 600  # no (node, port, backend, 8080, tcp) twice
    masquerade = set(ports) - local_ports
    assert len(masquerade) == 300 and all(MASQ_PORTS[0] <= p <= MASQ_PORTS[1] for p in masquerade)
    assert not [p for p in local_ports if MASQ_PORTS[0] <= p <= MASQ_PORTS[1]]


@pytest.fixture
def lab3(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_of(3, tmp_path)


def test_backends_on_other_nodes_over_the_overlay_with_masquerade_from_outside(lab3):
    """Pods reach backends on other nodes through the VXLAN overlay; a host outside reaches them through
    node-a, which masquerades (the replies come back through node-a, translated back)."""
    endpoints = {"client": "node-a", "web-a": "node-a", "web-b": "node-b", "web-c": "node-c"}
    text = lab_spec(lab3.name, lab3.nodes, "tunnel", endpoints).replace(
        "prefixLength6: 64}", "prefixLength6: 64, loadBalancer: xdp}")
    text += services("  - {name: web, vip: 10.96.0.10, port: 80, backends: [{endpoint: web-b, port: 8080}, "
                     "{endpoint: web-c, port: 8080}, {endpoint: web-a, port: 8080}]}\n")
    lab3.apply(text)
    outside = outside_client(lab3)
    named = {lab3.endpoint_netns(n): n for n in ("web-a", "web-b", "web-c")}
    with servers(named, 8080):
        assert set(connect_many(lab3.endpoint_netns("client"), VIP, 80, 60)) == {"web-a", "web-b", "web-c"}
        assert set(connect_many(outside, VIP, 80, 60)) == {"web-a", "web-b", "web-c"}
    for node in lab3.nodes:  # the same Maglev table on every node
        assert lab3.plan(text, node)["changes"] == []
    rows = {node: bpftool("map", "dump", "id", str(_inner_of(lab3, node))) for node in lab3.nodes}
    assert _same_backends(lab3, rows)
    lab3.down()  # the lab's teardown removes the nodes' pins too (bpffs outlives the namespaces)
    assert list(PIN_ROOT.glob(f"{lab3.name}-*")) == []


def _inner_of(lab: Lab, node: str) -> int:
    outer = bpftool("map", "dump", "pinned", str(map_dir(lab, node) / "lb_maglev"))
    return u32(raw(outer[0], "value"))


def _same_backends(lab: Lab, rows: dict[str, list[dict]]) -> bool:
    """Rows equal once backend ids are resolved to addresses (ids may differ between nodes)."""
    resolved = []
    for node, row in rows.items():
        ids = {u32(raw(e, "key")): bytes(raw(e, "value")[:18])
               for e in bpftool("map", "dump", "pinned", str(map_dir(lab, node) / "lb_be"))}
        resolved.append([ids[u32(raw(e, "value"))] for e in sorted(row, key=lambda e: u32(raw(e, "key")))])
    return all(r == resolved[0] for r in resolved)

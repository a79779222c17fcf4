"""The packet path's connection tracking ends with its flows: a TCP flow closed with FIN or RST, or a UDP
flow idle for its lifetime, leaves no entry that rewrites the replies of a later connection from the same
client port (straight to the backend, or through the socket programs), and the masquerade port of a
finished flow is free again. Real packets; the entries are read with bpftool; the passage of time is the
entries' last-seen time set back, as the datapath's clock would see it."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netplanx.features.services.conntrack import NS, now
from netplanx.features.services.lbmaps import (
    CT_CLOSING,
    CT_LIFETIMES,
    DIR_MASQ_REPLY,
    MASQ_PORTS,
    PROTOCOLS,
    CtKey,
    CtVal,
    LbMaps,
    addr_in,
    port_in,
    port_out,
)
from netplanx.lab.cluster import Lab, lab_spec
from tests.conftest import lab_of
from tests.services_observe import address_of, bpftool, map_dir, outside_client, raw
from tests.services_traffic import probe, servers, tx_checksum_off

VIP, BACKEND, NODE = "10.96.0.10", "10.244.1.12", "192.0.2.11"
ENDPOINTS = {"client": "node-a", "web-1": "node-a"}
FLAGS = 48  # offset of lb_ct_val.flags: addr, nat_addr (16 each), seen (8), port, nat_port (2 each), backend (4)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_of(1, tmp_path)


def spec_of(lab: Lab, cgroup: Path | None = None, underlay_lb: str = "none") -> str:
    text = lab_spec(lab.name, lab.nodes, "tunnel", ENDPOINTS)
    if underlay_lb != "none":
        text = text.replace("prefixLength6: 64}", f"prefixLength6: 64, loadBalancer: {underlay_lb}}}")
    text += ("services:\n  - {name: web, vip: 10.96.0.10, port: 80, backends: [{endpoint: web-1, port: 8080}]}\n"
             "  - {name: dns, vip: 10.96.0.10, port: 53, protocol: udp, backends: [{endpoint: web-1, port: 8080}]}\n")
    return text + (f"socketLB: {{cgroup: {cgroup.name}}}\n" if cgroup else "")


def entries(lab: Lab, port: int) -> list[dict]:
    """The lb_ct entries of the flows from (or, masqueraded, to) client port ``port``, with bpftool."""
    found = []
    for entry in bpftool("map", "dump", "pinned", str(map_dir(lab) / "lb_ct")):
        key = raw(entry, "key")
        if port in (int.from_bytes(key[32:34], "big"), int.from_bytes(key[34:36], "big")):
            found.append(entry)
    return found


def age(lab: Lab, port: int, seconds: float) -> None:
    """Set the last-seen time of the flows of client port ``port`` ``seconds`` back (as if no packet had
    passed for that long)."""
    maps = LbMaps.open(lab.netns("node-a"))
    try:
        for key, value in maps.ct.items():
            if port in (port_out(key.sport), port_out(key.dport)):
                value.seen -= int(seconds * NS)
                maps.ct.update(key, value)
    finally:
        maps.close()


def client_port() -> int:
    """A source port below the ephemeral range, not taken by this run's other tests."""
    return random.randrange(20000, 32000)


@pytest.mark.parametrize("close", ["tcp", "tcp-rst"])
@pytest.mark.parametrize("then", ["direct", "socket"])
def test_a_closed_flow_leaves_no_entry_that_captures_a_new_connection_from_its_port(lab, cgroup, close, then):
    """A connection to the VIP through tc, closed (FIN, or RST), then a new one from the same client port
    to the backend itself (or through the socket programs, which connect to it too): its replies keep the
    backend's address, and it is answered. (bpf/lb.c before the fix rewrote them to the VIP: it hung.)"""
    lab.apply(spec_of(lab, cgroup))
    client, port = lab.endpoint_netns("client"), client_port()
    with servers({lab.endpoint_netns("web-1"): "web-1"}, 8080):
        first = probe(client, VIP, 80, 1, close, source_port=port)
        assert first[0].get("peer") == [VIP, 80], first
        flow = {raw(e, "key")[37]: raw(e, "value") for e in entries(lab, port)}
        assert set(flow) == {0, 1} and flow[0][FLAGS] & CT_CLOSING  # forward and reply; the FIN or RST seen
        if then == "direct":
            second = probe(client, BACKEND, 8080, 1, source_port=port)
            assert second[0].get("peer") == [BACKEND, 8080], second
        else:
            second = probe(client, VIP, 80, 1, source_port=port, cgroup=cgroup)
            assert second[0].get("peer") == [VIP, 80], second
        assert second[0]["answer"] == f"web-1 10.244.1.11 {port}"


def test_an_idle_udp_flow_expires_and_traffic_keeps_a_flow_alive(lab):
    """A UDP flow through tc, then idle for its lifetime: a datagram from the same port straight to the backend
    gets its reply from the backend's address, not the VIP's. A flow that keeps sending stays."""
    lab.apply(spec_of(lab))
    client, port = lab.endpoint_netns("client"), client_port()
    with servers({lab.endpoint_netns("web-1"): "web-1"}, 8080, "udp"):
        assert probe(client, VIP, 53, 1, "udp", source_port=port)[0].get("source") == [VIP, 53]
        age(lab, port, CT_LIFETIMES["udp"] - 5)  # still alive: the next datagram refreshes it
        assert probe(client, VIP, 53, 1, "udp", source_port=port)[0].get("source") == [VIP, 53]
        assert all(now() - _seen(entry) < 5 * NS for entry in entries(lab, port))
        age(lab, port, CT_LIFETIMES["udp"] + 1)
        direct = probe(client, BACKEND, 8080, 1, "udp", source_port=port)
        assert direct[0].get("source") == [BACKEND, 8080], direct
        assert direct[0]["answer"] == f"web-1 10.244.1.11 {port}"


def _seen(entry: dict) -> int:
    return int.from_bytes(raw(entry, "value")[32:40], "little")


def test_the_masquerade_port_of_a_finished_flow_is_free_again(lab):
    """Outside clients are masqueraded to ports 61000-65535. With every port held by flows that ended longer
    ago than the close lifetime, new flows get one of them (before the fix: dropped until LRU eviction);
    held by live flows, a new flow finds none and is dropped."""
    outside = outside_client(lab)
    lab.apply(spec_of(lab, underlay_lb="tc"))
    for netns, device in ((lab.netns("node-a"), "ep-web-1"), (lab.endpoint_netns("web-1"), "eth0")):
        tx_checksum_off(netns, device)
    with servers({lab.endpoint_netns("web-1"): "web-1"}, 8080):
        first = probe(outside, VIP, 80, 1)
        answer = first[0]["answer"].split()
        assert answer[1] == NODE and MASQ_PORTS[0] <= int(answer[2]) <= MASQ_PORTS[1], first
        flow = entries(lab, first[0]["local"][1]) + entries(lab, int(answer[2]))
        assert sorted(raw(e, "key")[37] for e in flow) == [0, DIR_MASQ_REPLY]  # forward, masquerade reply
        assert all(raw(e, "value")[FLAGS] & CT_CLOSING for e in flow), flow  # both FINs were seen
        fill_masquerade_ports(lab, ended=True)
        again = probe(outside, VIP, 80, 5)
        assert all("answer" in a and a["answer"].split()[1] == NODE for a in again), again
        fill_masquerade_ports(lab, ended=False)
        assert "error" in probe(outside, VIP, 80, 1)[0]


@pytest.mark.parametrize("mode", ["xdp", "tc"])
def test_a_retransmitted_syn_stays_in_its_flow(lab, mode):
    """The backend's first answer to an outside client is lost (nftables in web-1 drops its first SYN-ACK), so
    the client sends its SYN again a second later: that retransmission is the same flow (one masquerade port)
    and the connection completes. (bpf/lb.c before the fix made every SYN a new flow: the retransmission got
    a second masquerade port, and when the first answer came late the client's ACK of it reached the second
    connection, which reset it.)"""
    outside = outside_client(lab)
    lab.apply(spec_of(lab, underlay_lb=mode))
    for netns, device in ((lab.netns("node-a"), "ep-web-1"), (lab.endpoint_netns("web-1"), "eth0")):
        tx_checksum_off(netns, device)
    web = lab.endpoint_netns("web-1")
    for rule in ("add table inet lossy", "add chain inet lossy out { type filter hook output priority 0; }",
                 "add rule inet lossy out tcp flags & (syn | ack) == syn | ack quota until 100 bytes drop"):
        subprocess.run(["ip", "netns", "exec", web, "nft", rule], check=True)  # the first SYN-ACK (60 bytes)
    with servers({web: "web-1"}, 8080):
        answers = probe(outside, VIP, 80, 1)
    assert "answer" in answers[0], answers
    client = answers[0]["local"][1]
    masquerade = [e for e in bpftool("map", "dump", "pinned", str(map_dir(lab) / "lb_ct"))
                  if raw(e, "key")[37] == DIR_MASQ_REPLY and int.from_bytes(raw(e, "value")[42:44], "big") == client]
    assert len(masquerade) == 1, masquerade  # one masquerade port for the client's connection


def fill_masquerade_ports(lab: Lab, ended: bool) -> None:
    """A masqueraded flow from a client far away on every masquerade port of node-a towards web-1: ended
    (closed, last seen longer ago than the close lifetime) or alive."""
    maps = LbMaps.open(lab.netns("node-a"))
    try:
        backend = next(bid for bid, value in maps.be.items() if address_of(bytes(value.addr)) == BACKEND)
        seen = now() - (CT_LIFETIMES["close"] + 1) * NS if ended else now()
        for port in range(MASQ_PORTS[0], MASQ_PORTS[1] + 1):
            key = CtKey(addr_in(BACKEND), addr_in(NODE), port_in(8080), port_in(port), PROTOCOLS["tcp"],
                        DIR_MASQ_REPLY)
            maps.ct.update(key, CtVal(addr_in(VIP), addr_in("192.0.2.200"), seen, port_in(80), port_in(port),
                                      backend, CT_CLOSING if ended else 0))
    finally:
        maps.close()

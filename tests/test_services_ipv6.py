"""IPv6 through the packet path: DNAT and reverse NAT at tc from pods, XDP and tc on the underlay with
outside clients masqueraded to the node's IPv6 address; checksums checked by tcpdump at the receivers (TX
checksum offload off on every sender, so a wrong checksum reaches them)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from netplanx.features.services.lbmaps import MASQ_PORTS
from netplanx.lab.cluster import Lab, lab_spec
from tests.conftest import assert_adopts, lab_of
from tests.services_observe import outside_client
from tests.services_traffic import nsenter, probe, servers, tx_checksum_off

VIP6 = "fd00:96::10"
NODE6 = "2001:db8::11"  # lab_spec: node-a's underlay address
ENDPOINTS = {"client": "node-a", "web-1": "node-a", "web-2": "node-a"}
CLIENT6 = "fd00:244:0:1::b"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_of(1, tmp_path)


def spec_of(lab: Lab, underlay_lb: str = "none") -> str:
    text = lab_spec(lab.name, lab.nodes, "tunnel", ENDPOINTS)
    if underlay_lb != "none":
        text = text.replace("prefixLength6: 64}", f"prefixLength6: 64, loadBalancer: {underlay_lb}}}")
    backends = "[{endpoint: web-1, port: 8080}, {endpoint: web-2, port: 8080}]"
    return text + (f'services:\n  - {{name: web, vip: "{VIP6}", port: 80, backends: {backends}}}\n'
                   f'  - {{name: dns, vip: "{VIP6}", port: 53, protocol: udp, backends: {backends}}}\n')


def offload_off(lab: Lab) -> None:
    for endpoint in ENDPOINTS:
        tx_checksum_off(lab.endpoint_netns(endpoint))
        tx_checksum_off(lab.netns("node-a"), f"ep-{endpoint}")


@contextmanager
def checksums(netns: list[str]) -> Iterator[list[str]]:
    """tcpdump -vv (it verifies TCP and UDP checksums) on eth0 of each namespace, listening before the block
    runs; the list fills with what each printed about the IPv6 packets it saw when the block ends."""
    started = []
    lines: list[str] = []
    try:
        for name in netns:
            process = subprocess.Popen([*nsenter(name), "tcpdump", "-l", "-n", "-vv", "-i", "eth0",
                                        "ip6 and (tcp or udp)"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True)
            started.append(process)
            assert "listening on" in process.stderr.readline()
        yield lines
    finally:
        for process in started:
            process.terminate()
            lines += process.communicate(timeout=30)[0].splitlines()


def verdicts(lines: list[str]) -> tuple[int, int]:
    """(checksums tcpdump found correct, found wrong)."""
    good = sum("(correct)" in line or "udp sum ok" in line for line in lines)
    bad = sum("incorrect" in line or "bad udp cksum" in line for line in lines)
    return good, bad


def test_ipv6_through_tc_with_the_checksums_right_at_both_ends(lab):
    lab.apply(spec_of(lab))
    assert lab.plan(spec_of(lab), "node-a")["changes"] == []
    offload_off(lab)
    client = lab.endpoint_netns("client")
    watched = [lab.endpoint_netns(n) for n in ENDPOINTS]
    with servers({lab.endpoint_netns(n): n for n in ("web-1", "web-2")}, 8080), \
            servers({lab.endpoint_netns(n): n for n in ("web-1", "web-2")}, 8080, "udp"), checksums(watched) as lines:
        tcp = probe(client, VIP6, 80, 20)
        udp = probe(client, VIP6, 53, 10, "udp")
    assert all(a.get("peer") == [VIP6, 80] and a["answer"].split()[1] == CLIENT6 for a in tcp), tcp
    assert {a["answer"].split()[0] for a in tcp} == {"web-1", "web-2"}
    assert all(a.get("source") == [VIP6, 53] for a in udp), udp  # the reply's source is translated back
    good, bad = verdicts(lines)
    assert bad == 0 and good >= 2 * (20 + 10), (good, bad)  # each exchange seen by the client and a backend
    shown = {s["name"]: s for s in json.loads(lab.netx("node-a", "show", "services", "-o", "json").stdout)}
    # per IPv6 backend: the flows tracked (20 TCP connections, closed ones count while closing; one UDP socket)
    # and the packets counted
    for name, flows, packets in (("web", 20, 20), ("dns", 1, 10)):
        backends = shown[name]["backends"]
        assert shown[name]["vip"] == VIP6 and all(b["backend"].startswith("[fd00:244:0:1::") for b in backends)
        assert sum(b["flows"] for b in backends) == flows, backends
        assert sum(b["packets"] for b in backends) >= packets and sum(b["sockets"] for b in backends) == 0
    table = lab.netx("node-a", "show", "services").stdout
    assert "[fd00:96::10]:80/tcp" in table and "[fd00:96::10]:53/udp" in table
    adopted = assert_adopts(lab, "node-a")
    assert 'vip: "fd00:96::10"' in adopted or "vip: fd00:96::10" in adopted


@pytest.mark.parametrize("mode", ["xdp", "xdpGeneric", "tc"])
def test_ipv6_from_outside_is_masqueraded_through_xdp_and_tc(lab, mode):
    outside = outside_client(lab)
    spec = spec_of(lab, mode)
    lab.apply(spec)
    assert lab.plan(spec, "node-a")["changes"] == []
    offload_off(lab)
    watched = [outside, lab.endpoint_netns("web-1"), lab.endpoint_netns("web-2")]
    with servers({lab.endpoint_netns(n): n for n in ("web-1", "web-2")}, 8080), \
            servers({lab.endpoint_netns(n): n for n in ("web-1", "web-2")}, 8080, "udp"), checksums(watched) as lines:
        tcp = probe(outside, VIP6, 80, 20)
        udp = probe(outside, VIP6, 53, 5, "udp")
    assert all(a.get("peer") == [VIP6, 80] for a in tcp), tcp
    assert {a["answer"].split()[0] for a in tcp} == {"web-1", "web-2"}
    for answer in tcp + udp:  # the backends see node-a, from a masquerade port
        _name, source, port = answer["answer"].split()
        assert source == NODE6 and MASQ_PORTS[0] <= int(port) <= MASQ_PORTS[1], answer
    assert all(a.get("source") == [VIP6, 53] for a in udp), udp
    good, bad = verdicts(lines)
    assert bad == 0 and good >= 2 * (20 + 5), (good, bad)

"""Benchmark: the eBPF load balancer (bpf/lb.c) against kube-proxy-style iptables DNAT, in one run.

Usage (root): python benchmarks/services.py [--quick]

1. Per-packet cost with BPF_PROG_TEST_RUN (kernel-measured ns per run) at 10, 1,000 and 10,000 services:
   a new connection (TCP SYN: service lookup, Maglev slot, backend, two conntrack writes, DNAT) and an
   established one (conntrack hit, DNAT). Each service's backends are its own VIP and port, so the DNAT
   rewrites the packet to itself and every repeat takes the same path (see shared/PLATFORM.md).
2. Real packets through veths, client ns -> router ns -> backend ns, UDP flows (60,000 distinct, each to a
   random service, sent round robin): tc LB and XDP LB on the router's ingress veth against an iptables
   ruleset built as kube-proxy builds it (KUBE-SERVICES -> KUBE-SVC-* per service -> KUBE-SEP-* with
   statistic mode random), at 10 and 5,000 services. One small C sender (raw socket, sendmmsg, compiled
   with gcc at run time) for all three; packets per second delivered are counted at the backend veth. The
   sender's CPU also runs the forwarding softirq, so the ratios understate the datapath gap.
Everything runs in namespaces this script creates and removes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netplanx.providers.bpf.lbmaps import LB, BackendVal, LbMaps, SvcKey, SvcVal, addr_in, port_in, u32
from netplanx.providers.bpf.loader import PIN_ROOT, load, prog_test_run, tc_attach, xdp_attach
from netplanx.providers.bpf.maglev import maglev_table
from netplanx.providers.bpf.maps import BPF_F_INNER_MAP, BpfMap, create_map
from netplanx.providers.kernel import netns as namespaces

TABLE = 251  # Maglev size for the benchmark's services (memory: 10,000 rows)
BACKENDS = 4


def sh(*args: str, stdin: str | None = None) -> None:
    subprocess.run(args, input=stdin, text=True, check=True, stdout=subprocess.DEVNULL)


def vip(index: int) -> str:
    return f"10.96.{index >> 8}.{index & 0xFF}"


def populate(maps: LbMaps, count: int, backend_of: callable, protocol: int) -> None:
    """``count`` services (VIP i, port 80) with BACKENDS backends each, written in batches."""
    slots = maglev_table([(f"b{j}", 1) for j in range(BACKENDS)], TABLE)
    services, backends = [], []
    for i in range(count):
        services.append((SvcKey(addr_in(vip(i)), port_in(80), protocol), SvcVal(i + 1, BACKENDS, TABLE, 0)))
        for j in range(BACKENDS):
            address, port = backend_of(i, j)
            backends.append((i * BACKENDS + j + 1, BackendVal(addr_in(address), port_in(port), 1, i + 1)))
    maps.be.update_batch(backends)
    for i in range(count):
        with BpfMap(create_map("array", 4, 4, TABLE, BPF_F_INNER_MAP, "lb_row"), u32, u32) as row:
            row.update_batch([(slot, i * BACKENDS + j + 1) for slot, j in enumerate(slots)])
            maps.maglev.update(i + 1, row.fd)
    maps.svc.update_batch(services)


def packet(destination: str, flags: int, source_port: int = 40000) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0x4000, 64, 6, 0, socket.inet_aton("10.1.0.1"),
                     socket.inet_aton(destination))
    tcp = struct.pack("!HHIIBBHHH", source_port, 80, 1, 1, 5 << 4, flags, 65535, 0, 0)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + tcp


@contextmanager
def scratch(prefix: str) -> Iterator[str]:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    sh("ip", "netns", "add", name)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
        shutil.rmtree(PIN_ROOT / name, ignore_errors=True)


def test_run_costs(counts: list[int], repeat: int, probes: int) -> dict[int, dict[str, float]]:
    results = {}
    for count in counts:
        with scratch("netx-bench-lb") as name, namespaces.inside(name):
            loaded = load(LB, name)
            maps = LbMaps.open(name)
            populate(maps, count, lambda i, j: (vip(i), 80), socket.IPPROTO_TCP)
            fd = loaded.fd("lb_ingress")
            chosen = random.Random(1).sample(range(count), min(probes, count))
            figures = {}
            for label, flags in (("new", 0x02), ("established", 0x10)):
                runs = [prog_test_run(fd, packet(vip(i), flags), repeat) for i in chosen]
                assert all(r.retval == -1 for r in runs), "lb_ingress must hand packets on (TC_ACT_UNSPEC)"
                figures[label] = sum(r.duration_ns for r in runs) / len(runs)
            figures["no service"] = prog_test_run(fd, packet("10.200.0.1", 0x10), repeat).duration_ns
            maps.close()
            loaded.close()
        results[count] = figures
    return results


SENDER_C = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
/* sender FLOWS SERVICES TOTAL: TOTAL raw IPv4/UDP packets, FLOWS distinct (source address and port) to
 * random services 10.96.i/16 port 80, sent with sendmmsg in batches of 64; prints "sent seconds". */
#define BATCH 64
int main(int argc, char **argv) {
    int flows = atoi(argv[1]), services = atoi(argv[2]);
    long total = atol(argv[3]);
    int sock = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
    if (sock < 0) { perror("socket"); return 1; }
    unsigned char (*packets)[46] = calloc(flows, 46);
    struct sockaddr_in *to = calloc(flows, sizeof(*to));
    srand(7);
    for (int n = 0; n < flows; n++) {
        unsigned char *p = packets[n];
        int i = rand() % services;
        p[0] = 0x45; p[3] = 46; p[6] = 0x40; p[8] = 64; p[9] = 17;
        p[12] = 10; p[13] = 1; p[14] = (n >> 8) & 0xff; p[15] = n & 0xff;
        p[16] = 10; p[17] = 96; p[18] = (i >> 8) & 0xff; p[19] = i & 0xff;
        unsigned short sport = htons(1024 + (n >> 16)), dport = htons(80), len = htons(26);
        memcpy(p + 20, &sport, 2); memcpy(p + 22, &dport, 2); memcpy(p + 24, &len, 2);
        to[n].sin_family = AF_INET;
        memcpy(&to[n].sin_addr, p + 16, 4);
    }
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    long sent = 0;
    int n = 0;
    while (sent < total) {
        for (int k = 0; k < BATCH; k++, n = (n + 1) % flows) {
            iov[k].iov_base = packets[n]; iov[k].iov_len = 46;
            memset(&msgs[k], 0, sizeof(msgs[k]));
            msgs[k].msg_hdr.msg_iov = &iov[k]; msgs[k].msg_hdr.msg_iovlen = 1;
            msgs[k].msg_hdr.msg_name = &to[n]; msgs[k].msg_hdr.msg_namelen = sizeof(to[n]);
        }
        int done = sendmmsg(sock, msgs, BATCH, 0);
        if (done < 0) { perror("sendmmsg"); return 1; }
        sent += done;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%ld %f\n", sent, (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
    return 0;
}
"""


def build_sender(folder: Path) -> Path:
    """The packet sender, compiled once (the same binary drives every datapath)."""
    source, binary = folder / "sender.c", folder / "sender"
    source.write_text(SENDER_C)
    sh("gcc", "-O2", "-o", str(binary), str(source))
    return binary


def rx_packets(netns: str, device: str) -> int:
    out = subprocess.run(["ip", "-n", netns, "-s", "-j", "link", "show", device], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)[0]["stats64"]["rx"]["packets"]


def topology(prefix: str) -> tuple[str, str, str]:
    """client (10.1.0.0/16 sources) -- router (LB / iptables) -- backend (10.2.0.2 and friends)."""
    client, router, backend = (f"{prefix}-{role}" for role in ("cl", "rt", "be"))
    for name in (client, router, backend):
        sh("ip", "netns", "add", name)
    sh("ip", "-n", client, "link", "add", "eth0", "type", "veth", "peer", "name", "in0", "netns", router)
    sh("ip", "-n", backend, "link", "add", "eth0", "type", "veth", "peer", "name", "out0", "netns", router)
    for ns, dev, address in ((client, "eth0", "10.0.1.2/24"), (router, "in0", "10.0.1.1/24"),
                             (router, "out0", "10.0.2.1/24"), (backend, "eth0", "10.0.2.2/24")):
        sh("ip", "-n", ns, "addr", "add", address, "dev", dev)
        sh("ip", "-n", ns, "link", "set", dev, "up")
    sh("ip", "-n", backend, "addr", "add", "10.2.0.0/16", "dev", "eth0")  # every backend address is local
    sh("ip", "-n", client, "route", "add", "10.96.0.0/16", "via", "10.0.1.1")
    sh("ip", "-n", router, "route", "add", "10.2.0.0/16", "via", "10.0.2.2")
    sh("ip", "-n", router, "neigh", "replace", "10.0.2.2", "lladdr", _mac(backend), "dev", "out0", "nud", "permanent")
    sh("ip", "-n", client, "neigh", "replace", "10.0.1.1", "lladdr", _mac(router, "in0"), "dev", "eth0",
       "nud", "permanent")
    for key in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.in0.rp_filter=0"):
        sh("ip", "netns", "exec", router, "sysctl", "-qw", key)
    sh("ip", "netns", "exec", backend, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=1000000")
    return client, router, backend


def _mac(netns: str, device: str = "eth0") -> str:
    out = subprocess.run(["ip", "-n", netns, "-j", "link", "show", device], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)[0]["address"]


def backend_address(i: int, j: int) -> tuple[str, int]:
    return f"10.2.{(i * BACKENDS + j) >> 8 & 0xFF}.{(i * BACKENDS + j) & 0xFF}", 8080


def kube_proxy_rules(count: int) -> str:
    """The nat table kube-proxy (iptables mode) writes for ``count`` UDP services of BACKENDS endpoints."""
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":KUBE-SERVICES - [0:0]"]
    rules = ["-A PREROUTING -m comment --comment kubernetes-service-portals -j KUBE-SERVICES"]
    for i in range(count):
        svc = f"KUBE-SVC-{i:012d}"
        lines.append(f":{svc} - [0:0]")
        rules.append(f"-A KUBE-SERVICES -d {vip(i)}/32 -p udp -m comment --comment svc{i} -m udp --dport 80 -j {svc}")
        for j in range(BACKENDS):
            sep = f"KUBE-SEP-{i:08d}{j:04d}"
            lines.append(f":{sep} - [0:0]")
            chance = "" if j == BACKENDS - 1 else (f"-m statistic --mode random --probability "
                                                    f"{1 / (BACKENDS - j):.11f} ")
            rules.append(f"-A {svc} -m comment --comment svc{i}/ep{j} {chance}-j {sep}")
            address, port = backend_address(i, j)
            rules.append(f"-A {sep} -p udp -m comment --comment svc{i}/ep{j} -m udp -j DNAT "
                         f"--to-destination {address}:{port}")
    return "\n".join(lines + rules + ["COMMIT", ""])


def iptables_flavour(netns: str) -> str:
    for command in ("iptables-legacy-restore", "iptables-nft-restore"):
        done = subprocess.run(["ip", "netns", "exec", netns, command], input="*nat\nCOMMIT\n", text=True,
                              capture_output=True)
        if done.returncode == 0:
            return command
    raise RuntimeError("neither iptables-legacy nor iptables-nft works here")


def traffic(count: int, mode: str, packets: int, sender: Path) -> float:
    """Delivered packets per second with ``mode`` (tc, xdp, iptables) doing the DNAT on the router."""
    prefix = f"nxb{uuid.uuid4().hex[:5]}"
    client, router, backend = topology(prefix)
    try:
        if mode == "iptables":
            flavour = iptables_flavour(router)
            subprocess.run(["ip", "netns", "exec", router, flavour], input=kube_proxy_rules(count), text=True,
                           check=True)
        else:
            with namespaces.inside(router):
                loaded = load(LB, router)
                maps = LbMaps.open(router)
                populate(maps, count, backend_address, socket.IPPROTO_UDP)
                if mode == "tc":
                    tc_attach("in0", "ingress", loaded.fd("lb_ingress"), prio=100, name="netx-lb-ingress")
                else:
                    xdp_attach("in0", loaded.fd("lb_xdp"), "native")
                maps.close()
                loaded.close()
        flows = min(packets, 60000)
        run = ["nsenter", f"--net=/run/netns/{client}", str(sender)]
        subprocess.run([*run, "2000", str(count), "2000"], capture_output=True, text=True, check=True)  # warm-up
        before = rx_packets(backend, "eth0")
        done = subprocess.run([*run, str(flows), str(count), str(packets)], capture_output=True, text=True,
                              check=True)
        sent, seconds = done.stdout.split()
        delivered = rx_packets(backend, "eth0") - before
        if delivered < 0.5 * int(sent):
            raise RuntimeError(f"{mode} at {count} services delivered only {delivered} of {sent} packets")
        return delivered / float(seconds)
    finally:
        for name in (client, router, backend):
            subprocess.run(["ip", "netns", "del", name], check=False)
        shutil.rmtree(PIN_ROOT / router, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and packets (a smoke run)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (namespaces, BPF)", file=sys.stderr)
        return 1
    repeat, probes, packets, rounds = (2000, 8, 20000, 1) if args.quick else (20000, 32, 120000, 3)

    print("1. BPF_PROG_TEST_RUN, lb_ingress, ns per packet (mean over "
          f"{probes} services x {repeat} runs; Maglev size {TABLE}, {BACKENDS} backends each)")
    costs = test_run_costs([10, 1000, 10000], repeat, probes)
    print(f"   {'services':>8} {'new flow':>10} {'established':>12} {'no service':>11}")
    for count, figures in costs.items():
        print(f"   {count:>8} {figures['new']:>10.0f} {figures['established']:>12.0f} {figures['no service']:>11.0f}")
    flat = costs[10000]["established"] / costs[10]["established"]
    print(f"   established 10,000 vs 10 services: {flat:.2f}x (target: flat)")

    print(f"\n2. Real packets, UDP flows to random services ({packets} packets per run, best of {rounds})")
    print(f"   {'services':>8} {'iptables':>10} {'tc LB':>10} {'XDP LB':>10} {'tc/ipt':>7} {'XDP/ipt':>8}")
    with tempfile.TemporaryDirectory() as folder:
        sender = build_sender(Path(folder))
        rows: dict[int, dict[str, float]] = {}
        for count in (10, 5000):  # modes interleaved, best of ``rounds``: the machine is shared and noisy
            for _ in range(rounds):
                for mode in ("iptables", "tc", "xdp"):
                    pps = traffic(count, mode, packets, sender)
                    rows.setdefault(count, {})[mode] = max(rows[count].get(mode, 0.0), pps)
    for count, pps in rows.items():
        print(f"   {count:>8} {pps['iptables']:>10.0f} {pps['tc']:>10.0f} {pps['xdp']:>10.0f} "
              f"{pps['tc'] / pps['iptables']:>7.2f} {pps['xdp'] / pps['iptables']:>8.2f}")
    print("   (targets, from Cilium at one service: tc >= 1.7x, XDP >= 4.8x, the gap widening with services)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

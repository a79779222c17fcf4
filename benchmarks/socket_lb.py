"""Benchmark: socket-level load balancing against the tc load balancer and kube-proxy-style iptables, and
the per-packet cost of the dual-stack map layout, in one run.

Usage (root): python benchmarks/socket_lb.py [--seconds 2] [--rounds 5] [--repeat 20000]

1. BPF_PROG_TEST_RUN, lb_ingress, ns per packet: bpf/lb.c with the IPv4 map layout (4-byte addresses, as of
   commit IPV4_LAYOUT, read with git) against this tree's dual-stack layout (16-byte addresses, conntrack
   expiry), 1,000 services, on the same packets: a new flow (SYN: service, Maglev, backend, two conntrack
   writes, DNAT), an established one (conntrack hit, DNAT; the dual-stack program also checks and refreshes
   the entry's time), and traffic that is no service's (ACK and SYN: the SYN also drops a stale reply entry).
   Each service's backend is its own VIP and port, so every repeat takes the same path.
2. Short connections (socket, connect, read the server's 1 byte, close with a reset) from one
   single-threaded C client in a one-node lab (netplanx.lab, services applied with netx), to C servers on two
   backend endpoints, both families, modes interleaved round by round: the backend's address (direct: no
   load balancer), the VIP from a process in the workloads cgroup (socket LB), the VIP from outside the cgroup
   (tc LB on the client's veth), and another VIP DNATed by iptables-legacy rules as kube-proxy writes them
   (statistic random) in the node. Phase a has no netfilter rule in the node; phase b loads the iptables
   rules (netfilter conntrack then tracks every mode's flows). Every packet passes the tc hook of the
   client's veth in every mode (the load balancer runs there; for direct, socket LB and iptables traffic it
   finds no service). Connections per second and the latency of one connection (socket() to the first byte
   read: p50 and p99), median of the rounds; ratios against iptables; the programs' own time per run
   (BPF_ENABLE_STATS) over the whole run.
Everything runs in namespaces and a cgroup this script creates and removes.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netplanx.features.services.lbmaps import LB, BackendVal, SvcKey, SvcVal, addr_in, port_in, u32
from netplanx.features.services.maglev import maglev_table
from netplanx.lab.cluster import Lab, lab_spec
from netplanx.system import netns as namespaces
from netplanx.system.bpf.cgroup import cgroup2_root
from netplanx.system.bpf.loader import PIN_ROOT, BpfSource, load
from netplanx.system.bpf.maps import BPF_F_INNER_MAP, BpfMap, create_map, obj_get, prog_info
from netplanx.system.bpf.testrun import ipv4_packet, ipv6_packet, prog_test_run

IPV4_LAYOUT = "f9356ac"  # main before dual stack: 4-byte addresses
ROOT = Path(__file__).resolve().parents[1]
SERVICES, TABLE = 1000, 251

# ---- 1. per-packet cost of the two layouts ----


class OldSvcKey(ctypes.Structure):
    _fields_ = [("vip", ctypes.c_uint32), ("port", ctypes.c_uint16), ("proto", ctypes.c_uint8),
                ("pad", ctypes.c_uint8)]


class OldBackendVal(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint32), ("port", ctypes.c_uint16), ("weight", ctypes.c_uint16),
                ("svc", ctypes.c_uint32)]


def vip(index: int, family: int = 4) -> str:
    """The VIP of service ``index``, of either family."""
    return f"10.96.{index >> 8}.{index & 0xFF}" if family == 4 else f"fd00:96::{index:x}"


def old_source(folder: Path) -> BpfSource:
    """bpf/lb.c and its header as of IPV4_LAYOUT, with the flags the loader gave them."""
    for name in ("lb.c", "lb_maps.h"):
        (folder / name).write_text(subprocess.run(["git", "-C", str(ROOT), "show", f"{IPV4_LAYOUT}:bpf/{name}"],
                                                  capture_output=True, text=True, check=True).stdout)
    return BpfSource("lb", folder / "lb.c", folder / "lb_maps.h", {"lb_ingress": "tc"},
                     cflags=("-DLB_MASQ_PORT_MIN=61000", "-DLB_MASQ_PORT_MAX=65535"))


def populate(folder: Path, old: bool) -> None:
    """SERVICES TCP services per family (one in the IPv4 layout), each balanced to itself."""
    key_type, backend_type = (OldSvcKey, OldBackendVal) if old else (SvcKey, BackendVal)
    families = (4,) if old else (4, 6)

    def address(text: str) -> object:
        return int.from_bytes(socket.inet_aton(text), "little") if old else addr_in(text)

    with BpfMap.open(folder / "lb_svc", key_type, SvcVal) as services, \
            BpfMap.open(folder / "lb_be", u32, backend_type) as backends, \
            BpfMap.open(folder / "lb_maglev", u32, u32) as maglev:
        slots = maglev_table([("b", 1)], TABLE)
        for family in families:
            for i in range(SERVICES):
                svc_id = i + 1 + (SERVICES if family == 6 else 0)
                backends.update(svc_id, backend_type(address(vip(i, family)), port_in(80), 1, svc_id))
                with BpfMap(create_map("array", 4, 4, TABLE, BPF_F_INNER_MAP, "lb_row"), u32, u32) as row:
                    row.update_batch([(slot, svc_id) for slot in range(len(slots))])
                    maglev.update(svc_id, row.fd)
                services.update(key_type(address(vip(i, family)), port_in(80), socket.IPPROTO_TCP),
                                SvcVal(svc_id, 1, TABLE, 0))


def ack(packet: bytes, v6: bool) -> bytes:
    """The SYN the packet builders make, as an ACK."""
    offset = 14 + (40 if v6 else 20) + 13
    return packet[:offset] + b"\x10" + packet[offset + 1:]


def layout_costs(repeat: int) -> dict[str, dict[str, float]]:
    """ns per packet of lb_ingress for each case, per layout (median over probes of ``repeat`` runs)."""
    cases: dict[str, Callable[[int], bytes]] = {
        "IPv4 new flow (SYN)": lambda i: ipv4_packet("10.1.0.1", vip(i), "tcp", 40000, 80),
        "IPv4 established (ACK)": lambda i: ack(ipv4_packet("10.1.0.1", vip(i), "tcp", 40000, 80), False),
        "IPv4 no service (ACK)": lambda i: ack(ipv4_packet("10.1.0.1", "10.200.0.1", "tcp", 40000, 80), False),
        "IPv4 no service (SYN)": lambda i: ipv4_packet("10.1.0.1", "10.200.0.1", "tcp", 40000, 80),
        "IPv6 new flow (SYN)": lambda i: ipv6_packet("fd00:1::1", vip(i, 6), "tcp", 40000, 80),
        "IPv6 established (ACK)": lambda i: ack(ipv6_packet("fd00:1::1", vip(i, 6), "tcp", 40000, 80), True),
        "IPv6 no service (ACK)": lambda i: ack(ipv6_packet("fd00:1::1", "fd00:200::1", "tcp", 40000, 80), True)}
    found: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for label, source in (("IPv4 layout", old_source(Path(folder))), ("dual-stack", LB)):
            scope = f"nxb-layout-{uuid.uuid4().hex[:6]}"
            subprocess.run(["ip", "netns", "add", scope], check=True)
            try:
                with namespaces.inside(scope):
                    loaded = load(source, scope)
                    populate(source.map_dir(scope), old=source is not LB)
                    fd = loaded.fd("lb_ingress")
                    for case, build in cases.items():
                        if case.startswith("IPv6") and source is not LB:
                            continue
                        runs = [prog_test_run(fd, build(i), repeat) for i in range(0, SERVICES, SERVICES // 16)]
                        assert all(r.retval == -1 for r in runs), f"{label} {case}: not handed on"
                        found.setdefault(case, {})[label] = statistics.median(r.duration_ns for r in runs)
                    loaded.close()
            finally:
                subprocess.run(["ip", "netns", "del", scope], check=False)
                shutil.rmtree(PIN_ROOT / scope, ignore_errors=True)
    return found


# ---- 2. short connections ----

CLIENT_C = r"""
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
/* client ADDR PORT SECONDS: short connections (socket, connect, read 1 byte, close with a reset: no TIME_WAIT)
 * for SECONDS; prints "connections errors seconds p50_us p99_us" (latency: socket() to the byte read). */
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static int cmp(const void *a, const void *b) { float x = *(float *)a, y = *(float *)b; return (x > y) - (x < y); }
int main(int argc, char **argv) {
    struct sockaddr_storage ss = {0};
    socklen_t len;
    int family;
    if (strchr(argv[1], ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = family = AF_INET6; a->sin6_port = htons(atoi(argv[2]));
        inet_pton(AF_INET6, argv[1], &a->sin6_addr); len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = family = AF_INET; a->sin_port = htons(atoi(argv[2]));
        inet_pton(AF_INET, argv[1], &a->sin_addr); len = sizeof(*a);
    }
    double end = now() + atof(argv[3]), start = now();
    long done = 0, errors = 0, cap = 1 << 22;
    float *lat = malloc(cap * sizeof(float));
    struct linger lg = {1, 0};
    struct timeval tv = {1, 0};
    while (now() < end && errors <= 100) {
        double t0 = now();
        int fd = socket(family, SOCK_STREAM, 0);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        char byte;
        if (connect(fd, (struct sockaddr *)&ss, len) == 0 && read(fd, &byte, 1) == 1) {
            if (done < cap) lat[done] = (now() - t0) * 1e6;
            done++;
        } else {
            errors++;
        }
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(fd);
    }
    long n = done < cap ? done : cap;
    qsort(lat, n, sizeof(float), cmp);
    printf("%ld %ld %.3f %.1f %.1f\n", done, errors, now() - start, n ? lat[n / 2] : 0, n ? lat[n * 99 / 100] : 0);
    return 0;
}
"""

SERVER_C = r"""
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
/* server PORT: accepts on [::]:PORT (both families), writes one byte, closes. */
int main(int argc, char **argv) {
    int s = socket(AF_INET6, SOCK_STREAM, 0), zero = 0, one = 1;
    setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(atoi(argv[1]))};
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 4096) < 0) { perror("bind/listen"); return 1; }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        (void)!write(c, "x", 1);
        close(c);
    }
}
"""

ENDPOINTS = {"client": "node-a", "web-1": "node-a", "web-2": "node-a"}
BACKENDS = {"web-1": ("10.244.1.12", "fd00:244:0:1::c"), "web-2": ("10.244.1.13", "fd00:244:0:1::d")}
LB_VIPS, IPTABLES_VIPS = ("10.96.0.30", "fd00:96::30"), ("10.96.0.40", "fd00:96::40")
PORT = 9090


def modes(family: int) -> dict[str, tuple[str, int, bool]]:
    """Mode -> (address, port, in the cgroup)."""
    index = 0 if family == 4 else 1
    return {f"direct{family}": (BACKENDS["web-1"][index], PORT, False), f"sock{family}": (LB_VIPS[index], 90, True),
            f"tc{family}": (LB_VIPS[index], 90, False), f"ipt{family}": (IPTABLES_VIPS[index], 90, False)}


def build(folder: Path) -> tuple[Path, Path]:
    """The C client and server, compiled into ``folder``."""
    made = []
    for name, text in (("client", CLIENT_C), ("server", SERVER_C)):
        (folder / f"{name}.c").write_text(text)
        subprocess.run(["gcc", "-O2", "-o", str(folder / name), str(folder / f"{name}.c")], check=True)
        made.append(folder / name)
    return made[0], made[1]


def iptables(node: str) -> None:
    """kube-proxy's DNAT for the iptables VIPs: one rule per backend, the first taken with probability 1/2."""
    for command, index in (("iptables-legacy", 0), ("ip6tables-legacy", 1)):
        first, second = (f"{BACKENDS[b][index]}" if index == 0 else f"[{BACKENDS[b][index]}]" for b in BACKENDS)
        base = ["ip", "netns", "exec", node, command, "-t", "nat", "-A", "PREROUTING", "-d", IPTABLES_VIPS[index],
                "-p", "tcp", "--dport", "90"]
        subprocess.run([*base, "-m", "statistic", "--mode", "random", "--probability", "0.5", "-j", "DNAT",
                        "--to-destination", f"{first}:{PORT}"], check=True)
        subprocess.run([*base, "-j", "DNAT", "--to-destination", f"{second}:{PORT}"], check=True)


def run(client: Path, lab: Lab, cgroup: Path, address: str, port: int, in_cgroup: bool,
        seconds: float) -> tuple[float, float, float]:
    """(connections per second, p50 us, p99 us) of one run."""
    def join() -> None:
        (cgroup / "cgroup.procs").write_text(str(os.getpid()))
    done = subprocess.run(["nsenter", f"--net=/run/netns/{lab.endpoint_netns('client')}", str(client), address,
                           str(port), str(seconds)], capture_output=True, text=True, check=True, timeout=seconds + 60,
                          preexec_fn=join if in_cgroup else None)
    connections, errors, elapsed, p50, p99 = done.stdout.split()
    if int(errors):
        raise RuntimeError(f"{address}:{port}: {errors} failed connections")
    return int(connections) / float(elapsed), float(p50), float(p99)


def enable_stats() -> int:
    """BPF_ENABLE_STATS(BPF_STATS_RUN_TIME): programs count their runs and time while the fd is open."""
    attr = (ctypes.c_uint32 * 32)()
    fd = ctypes.CDLL(None, use_errno=True).syscall(321, 32, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd < 0:
        raise OSError(ctypes.get_errno(), "BPF_ENABLE_STATS")
    return fd


def program_costs(scope: str) -> dict[str, tuple[int, float]]:
    """Program -> (runs, mean ns per run), read with bpftool."""
    folder = LB.prog_dir(scope)
    found = {}
    for function in ("lb_connect4", "lb_connect6", "lb_sock_release", "lb_ingress", "lb_egress"):
        fd = obj_get(folder / function)
        try:
            prog_id = prog_info(fd).id
        finally:
            os.close(fd)
        shown = json.loads(subprocess.run(["bpftool", "-j", "prog", "show", "id", str(prog_id)], capture_output=True,
                                          text=True, check=True).stdout)
        runs = shown.get("run_cnt", 0)
        found[function] = (runs, shown.get("run_time_ns", 0) / runs if runs else 0.0)
    return found


def connections(seconds: float, rounds: int) -> None:
    """Part 2: short connections through every mode, interleaved round by round, in a lab it makes."""
    with tempfile.TemporaryDirectory() as folder:
        client, server = build(Path(folder))
        lab = Lab(f"nxs{uuid.uuid4().hex[:5]}", ["node-a"], Path(folder))
        cgroup = cgroup2_root() / f"netx-bench-{uuid.uuid4().hex[:6]}"
        cgroup.mkdir()
        servers: list[subprocess.Popen[str]] = []
        stats = -1
        try:
            lab.up()
            backends = ", ".join(f"{{endpoint: {b}, port: {PORT}}}" for b in BACKENDS)
            lab.apply(lab_spec(lab.name, lab.nodes, "tunnel", ENDPOINTS) +
                      f'services:\n  - {{name: bench, vip: {LB_VIPS[0]}, vip6: "{LB_VIPS[1]}", port: 90, '
                      f"backends: [{backends}]}}\nsocketLB: {{cgroup: {cgroup.name}}}\n")
            for backend in BACKENDS:
                servers.append(subprocess.Popen(["nsenter", f"--net=/run/netns/{lab.endpoint_netns(backend)}",
                                                 str(server), str(PORT)], stdout=subprocess.PIPE, text=True))
                assert servers[-1].stdout.readline().strip() == "ready"
            stats = enable_stats()
            print(f"\n2. Short connections, {seconds} s per run, median of {rounds} rounds (load average "
                  f"{os.getloadavg()[0]:.1f} at the start, {os.cpu_count()} CPUs)")
            results = {}
            for phase in ("a", "b"):
                if phase == "b":
                    iptables(lab.netns("node-a"))
                wanted = {m: v for family in (4, 6) for m, v in modes(family).items()
                          if phase == "b" or not m.startswith("ipt")}
                figures: dict[str, list[tuple[float, float, float]]] = {m: [] for m in wanted}
                for _ in range(rounds):
                    for mode, (address, port, in_cgroup) in wanted.items():
                        figures[mode].append(run(client, lab, cgroup, address, port, in_cgroup, seconds))
                results[phase] = {m: tuple(statistics.median(f[i] for f in runs) for i in range(3))
                                  for m, runs in figures.items()}
            report(results)
            print("   programs' own time over the whole run (BPF_ENABLE_STATS): runs, mean ns per run")
            for function, (count, mean) in program_costs(lab.netns("node-a")).items():
                print(f"   {function:16} {count:>10} {mean:>8.0f}")
            print(f"   (load average {os.getloadavg()[0]:.1f} at the end)")
        finally:
            if stats >= 0:
                os.close(stats)
            for process in servers:
                process.kill()
                process.wait()
            lab.down()
            cgroup.rmdir()


def report(results: dict[str, dict[str, tuple[float, float, float]]]) -> None:
    """Print part 2's table (median of the rounds) and the ratios against iptables."""
    print("   a) no netfilter rule in the node; b) iptables DNAT rules loaded (conntrack active)")
    print(f"   {'mode':<9}{'conn/s a':>10}{'p50 us a':>10}{'p99 us a':>10}{'conn/s b':>10}{'p50 us b':>10}"
          f"{'p99 us b':>10}")
    for family in (4, 6):
        for mode in modes(family):
            a = results["a"].get(mode)
            cells = (f"{a[0]:>10.0f}{a[1]:>10.0f}{a[2]:>10.0f}" if a else f"{'-':>10}" * 3)
            b = results["b"][mode]
            print(f"   {mode:<9}{cells}{b[0]:>10.0f}{b[1]:>10.0f}{b[2]:>10.0f}")
    print("   ratios against iptables (b), connections per second and p50 latency (< 1: faster):")
    for family in (4, 6):
        ipt = results["b"][f"ipt{family}"]
        for mode in (f"sock{family}", f"tc{family}"):
            a, b = results["a"][mode], results["b"][mode]
            print(f"   {mode:<6} rate a/ipt {a[0] / ipt[0]:5.2f}  b/ipt {b[0] / ipt[0]:5.2f}   "
                  f"p50 a/ipt {a[1] / ipt[1]:5.2f}  b/ipt {b[1] / ipt[1]:5.2f}")


def main() -> int:
    """Both parts, in one run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one run of one mode")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every mode, interleaved")
    parser.add_argument("--repeat", type=int, default=20000, help="BPF_PROG_TEST_RUN repeats per probe")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (namespaces, cgroups, BPF)", file=sys.stderr)
        return 1
    print(f"1. BPF_PROG_TEST_RUN, lb_ingress, ns per packet (median over 16 of {SERVICES} services x {args.repeat} "
          f"runs): the IPv4 layout ({IPV4_LAYOUT}) against the dual-stack layout")
    print(f"   {'case':<26}{'IPv4 layout':>12}{'dual-stack':>12}{'ratio':>8}")
    for case, figures in layout_costs(args.repeat).items():
        old, new = figures.get("IPv4 layout"), figures["dual-stack"]
        before = f"{old:.0f}" if old else "-"
        print(f"   {case:<26}{before:>12}{new:>12.0f}{f'{new / old:.2f}' if old else '-':>8}")
    connections(args.seconds, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

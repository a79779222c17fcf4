"""Benchmark: what a change of the load balancer's XDP mode loses, against an in-place program replace.

Usage (root): python benchmarks/xdp_mode.py [--rate 10000] [--repeat 3]

A one-node lab (netplanx.lab): a UDP service on the underlay device (``cluster.underlay.loadBalancer``)
with one backend endpoint, and a client outside the cluster on the underlay sending one UDP flow to the
VIP at ``--rate`` packets per second, each carrying its sequence number. While it sends, ``netx apply``
(the real command) changes the attachment: xdpGeneric -> xdp (native on veth), xdp -> xdpGeneric, a new
program version in the same mode (a copy of bpf/ with a changed lb.c: an atomic replace), and nothing (a
no-op apply). The backend counts the sequence numbers it receives: the packets lost, and the longest run of
consecutive lost ones, timed with the sender's clock, are what the change cost. Checksum offload is off on
the sender. Everything runs in namespaces this script creates and removes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netplanx.lab.cluster import Lab, lab_spec

VIP, PORT, OUTSIDE = "10.96.0.10", 5000, "192.0.2.100"
MODES = {"xdpGeneric": 2, "xdp": 1}  # ip -d link: 1 native, 2 generic

RECEIVER = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
sock.bind(("0.0.0.0", int(sys.argv[1])))
sock.settimeout(1.0)
print("ready", flush=True)
seen = bytearray(int(sys.argv[2]))
started = False
while True:
    try:
        data = sock.recv(64)
    except socket.timeout:
        if started:
            break
        continue
    started = True
    seen[int.from_bytes(data[:8], "big")] = 1
print(seen.hex(), flush=True)
"""

SENDER = """
import select, socket, sys, time
from array import array
address, port, rate, times = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent = array("d")
start = time.perf_counter()
print("sending", flush=True)
sequence = 0
while sequence % 1000 or not select.select([sys.stdin], [], [], 0)[0]:  # until told to stop
    due = start + sequence / rate
    while time.perf_counter() < due:
        pass
    sock.sendto(sequence.to_bytes(8, "big") + bytes(24), (address, port))
    sent.append(time.perf_counter())
    sequence += 1
with open(times, "wb") as handle:
    sent.tofile(handle)
"""


def nsenter(netns: str) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{netns}"]


def spec(lab: Lab, mode: str) -> str:
    text = lab_spec(lab.name, lab.nodes, "tunnel", {"web": "node-a"}).replace(
        "prefixLength6: 64}", f"prefixLength6: 64, loadBalancer: {mode}}}")
    return text + (f"services:\n  - {{name: stream, vip: {VIP}, port: {PORT}, protocol: udp, "
                   f"backends: [{{endpoint: web}}]}}\n")


def outside(lab: Lab) -> str:
    """A client on the underlay that reaches the service network through node-a."""
    name = f"{lab.name}-out"
    for command in (["netns", "add", name],
                    ["-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "ul-out", "netns",
                     lab.underlay],
                    ["-n", lab.underlay, "link", "set", "ul-out", "master", "ul0", "up"],
                    ["-n", name, "addr", "add", f"{OUTSIDE}/24", "dev", "eth0"],
                    ["-n", name, "link", "set", "eth0", "up"],
                    ["-n", name, "route", "add", "10.96.0.0/16", "via", "192.0.2.11"]):
        subprocess.run(["ip", *command], check=True)
    subprocess.run([*nsenter(name), "ethtool", "-K", "eth0", "tx", "off"], check=True, capture_output=True)
    return name


def xdp_mode(lab: Lab) -> int:
    link = json.loads(subprocess.run(["ip", "-n", lab.netns("node-a"), "-j", "-d", "link", "show", "eth0"],
                                     capture_output=True, text=True, check=True).stdout)[0]
    return link.get("xdp", {}).get("mode", 0)


def apply(lab: Lab, text: str, env: dict[str, str] | None = None) -> None:
    path = lab.write(text)
    done = subprocess.run([sys.executable, "-m", "netplanx", "apply", str(path), "--auto-approve", "--node", "node-a",
                           "--netns", lab.netns("node-a")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NETX_STATE_DIR": str(lab.state_dir), **(env or {})})
    if done.returncode != 0:
        raise RuntimeError(done.stderr)


def stream_during(lab: Lab, client: str, rate: float, change: Callable[[], None]) -> tuple[int, int, float]:
    """A stream for 2 s, the change, 1 s more; (packets sent, lost, longest run of lost packets in ms: from the
    last one received before it to the first one after, on the sender's clock)."""
    with tempfile.NamedTemporaryFile(suffix=".times") as times:
        receiver = subprocess.Popen([*nsenter(lab.endpoint_netns("web")), sys.executable, "-c", RECEIVER, str(PORT),
                                     str(int(rate * 600))], stdout=subprocess.PIPE, text=True)
        assert receiver.stdout.readline().strip() == "ready"
        sender = subprocess.Popen([*nsenter(client), sys.executable, "-c", SENDER, VIP, str(PORT), str(rate),
                                   times.name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert sender.stdout.readline().strip() == "sending"
        time.sleep(2)  # a fixed schedule around the change: this is a measurement, not a test
        change()
        time.sleep(1)
        sender.communicate("stop\n", timeout=120)
        seen = bytes.fromhex(receiver.communicate(timeout=60)[0].strip())
        sent = array("d")
        sent.frombytes(Path(times.name).read_bytes())
    lost = [sequence for sequence in range(len(sent)) if not seen[sequence]]
    longest, first = 0.0, 0
    for index, sequence in enumerate(lost):
        if index == 0 or sequence != lost[index - 1] + 1:
            first = sequence
        before, after = sent[max(first - 1, 0)], sent[min(sequence + 1, len(sent) - 1)]
        longest = max(longest, (after - before) * 1000)
    return len(sent), len(lost), longest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=10000.0, help="packets per second (default 10000)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="netx-xdp-mode-"))
    lab = Lab(f"bx{os.getpid() % 100000}", ["node-a"], workdir)
    sources = workdir / "bpf"
    shutil.copytree(Path(__file__).resolve().parents[1] / "bpf", sources)
    with (sources / "lb.c").open("a") as handle:
        handle.write("/* another build */\n")
    try:
        lab.up()
        client = outside(lab)
        generic, native = spec(lab, "xdpGeneric"), spec(lab, "xdp")
        results: dict[str, list[tuple[int, int, float]]] = {}
        cases = {
            "xdp-generic -> xdp-native (mode change)": (generic, lambda: apply(lab, native), 1),
            "xdp-native -> xdp-generic (mode change)": (native, lambda: apply(lab, generic), 2),
            "new program version, xdp-native (in-place replace)": (
                native, lambda: apply(lab, native, {"NETX_BPF_DIR": str(sources)}), 1),
            "no change (apply with nothing to do)": (native, lambda: apply(lab, native), 1),
        }
        for name, (start, change, mode) in cases.items():
            for _ in range(args.repeat):
                apply(lab, start)
                results.setdefault(name, []).append(stream_during(lab, client, args.rate, change))
                assert xdp_mode(lab) == mode, (name, xdp_mode(lab))
        print(f"UDP stream at {args.rate:.0f} packets/s from outside to a VIP balanced on the underlay device "
              f"(veth), one flow; {args.repeat} runs each")
        print(f"  {'change during the stream':<52} {'sent':>8} {'lost packets':>14} {'longest gap (ms)':>18}")
        for name, runs in results.items():
            sent = min(run[0] for run in runs)
            lost = "/".join(str(run[1]) for run in runs)
            gap = "/".join(f"{run[2]:.2f}" for run in runs)
            print(f"  {name:<52} {sent:>8} {lost:>14} {gap:>18}")
    finally:
        lab.down()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Real traffic between namespaces: ping, a TCP exchange, and tcpdump captures (all event-driven)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

SERVER = """
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
server = socket.socket(family, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(1)
server.settimeout(float(sys.argv[4]))
print("ready", flush=True)
connection, peer = server.accept()
connection.sendall(("hello " + peer[0] + " from " + sys.argv[3]).encode())
connection.close()
"""
CLIENT = """
import socket, sys
print(socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).recv(200).decode())
"""
# wall-clock limits: an emulated guest on a busy host (tests/vm) runs a new interpreter 10-20x slower
SLOW = 10 if os.environ.get("NETX_IN_VM") == "1" else 1


def inside(netns: str, *command: str) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{netns}", *command]


REKEY_WAIT = 12.0  # seconds: WireGuard retries a handshake every 5 s (REKEY_TIMEOUT, plus jitter): twice, and slack


def ping(netns: str, address: str, count: int = 3, within: float | None = None) -> bool:
    """Whether any of ``count`` echo requests is answered (the first may wait on IPv6 neighbour discovery
    while a brand-new veth's link-local address is still tentative). ``within``: instead, whether a reply
    comes within that many seconds, asking every 0.2 s and returning at the first (a path that must come back,
    such as a WireGuard session, which retries its handshake every 5 s)."""
    limit = ("-c", "1", "-w", f"{within:g}") if within else ("-c", str(count), "-W", "2")
    done = subprocess.run(inside(netns, "ping", *limit, "-i", "0.2", address), capture_output=True, text=True)
    return done.returncode == 0


def tcp_exchange(server_ns: str, address: str, client_ns: str, port: int = 8080) -> str:
    """Open a TCP connection from ``client_ns`` to ``address`` in ``server_ns``; the greeting received."""
    server = subprocess.Popen(inside(server_ns, sys.executable, "-c", SERVER, address, str(port), server_ns,
                                     str(10 * SLOW)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        ready = server.stdout.readline()
        assert ready.strip() == "ready", server.stderr.read() if server.stderr else ready
        client = subprocess.run(inside(client_ns, sys.executable, "-c", CLIENT, address, str(port), str(5 * SLOW)),
                                capture_output=True, text=True, timeout=15 * SLOW)
        return client.stdout.strip() or client.stderr.strip()
    finally:
        server.kill()
        server.wait()


@contextmanager
def capture(netns: str, interface: str, expression: str) -> Iterator[list[str]]:
    """tcpdump on an interface while the block runs; the list fills with one line per packet."""
    process = subprocess.Popen(inside(netns, "tcpdump", "-l", "-n", "--immediate-mode", "-i", interface,
                                      expression), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    seen = []
    while not seen or "listening on" not in seen[-1]:  # printed once the filter is in place
        line = process.stderr.readline()
        if not line:
            process.wait()
            raise AssertionError(f"tcpdump did not start: {''.join(seen)}")
        seen.append(line)
    packets: list[str] = []
    try:
        yield packets
    finally:
        process.send_signal(signal.SIGINT)
        out, _err = process.communicate(timeout=10)
        packets += [line for line in out.splitlines() if line[:1].isdigit()]  # not the decoded inner packets



class Flow:
    """The output of a ``ping_flow``: ``lost`` counts the requests never answered between the first and
    the last answered one (the one in flight when the flow stops is not lost)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    @property
    def answered(self) -> list[int]:
        return [int(line.split("icmp_seq=")[1].split()[0]) for line in self.lines if "icmp_seq=" in line
                and "bytes from" in line]

    @property
    def lost(self) -> list[int]:
        seen = self.answered
        return sorted(set(range(min(seen), max(seen) + 1)) - set(seen)) if seen else []


@contextmanager
def ping_flow(netns: str, address: str, interval: float = 0.01) -> Iterator[Flow]:
    """Ping ``address`` from ``netns`` every ``interval`` seconds while the block runs (it starts once a first
    reply is in); the flow holds every line once the block ends."""
    process = subprocess.Popen(inside(netns, "ping", "-n", "-i", str(interval), "-W", "1", address),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    flow = Flow()
    while not flow.answered:  # the first reply: the path works
        line = process.stdout.readline()
        if not line:
            process.wait()
            raise AssertionError(f"ping {address} from {netns} got no reply: {''.join(flow.lines)}")
        flow.lines.append(line)
    try:
        yield flow
    finally:
        process.send_signal(signal.SIGINT)
        flow.lines += process.stdout.read().splitlines()  # not communicate(): it skips what readline buffered
        process.wait(timeout=10)

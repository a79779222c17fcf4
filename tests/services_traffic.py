"""Traffic for the load balancer tests: TCP/UDP servers that answer their own name, and clients that count
which backend answered (all run inside namespaces with nsenter, so pins and bpffs stay visible)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

SERVER = """
import ipaddress, socket, sys, threading
name, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def answer(data, peer):  # b"peer": also who asked, as the server sees it
    address = ipaddress.ip_address(peer[0])
    address = getattr(address, "ipv4_mapped", None) or address
    return (f"{name} {address} {peer[1]}" if data.startswith(b"peer") else name).encode()
def listener(kind):  # IPv4 and IPv6 on one socket
    sock = socket.socket(socket.AF_INET6, kind)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("::", port))
    return sock
if proto == "udp":
    sock = listener(socket.SOCK_DGRAM)
    print("ready", flush=True)
    while True:
        data, peer = sock.recvfrom(2048)
        sock.sendto(answer(data, peer), peer)
server = listener(socket.SOCK_STREAM)
server.listen(128)
print("ready", flush=True)
def serve(conn, peer):
    with conn:
        try:
            while data := conn.recv(2048):
                conn.sendall(answer(data, peer))
        except ConnectionResetError:  # a client that closes with a reset
            pass
while True:
    conn, peer = server.accept()
    threading.Thread(target=serve, args=(conn, peer), daemon=True).start()
"""

CLIENT = """
import json, socket, sys
address, port, count, proto = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
family = socket.AF_INET6 if ":" in address else socket.AF_INET
answers = {}
errors = 0
for _ in range(count):
    if errors >= 3:
        break
    try:
        if proto == "udp":
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.settimeout(2)
            sock.sendto(b"who", (address, port))
            name = sock.recv(200).decode()
        else:
            sock = socket.create_connection((address, port), timeout=2)
            sock.sendall(b"who")
            name = sock.recv(200).decode()
        sock.close()
    except OSError as exc:
        name = "error: " + type(exc).__name__
        errors += 1
    answers[name] = answers.get(name, 0) + 1
print(json.dumps(answers))
"""

HOLD = """
import socket, sys
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
sock.sendall(b"who")
print(sock.recv(200).decode(), flush=True)
for line in sys.stdin:
    sock.sendall(b"who")
    print(sock.recv(200).decode(), flush=True)
"""


PROBE = """
import json, socket, struct, sys
address, port, count, mode, source_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
family = socket.AF_INET6 if ":" in address else socket.AF_INET
kind = socket.SOCK_STREAM if mode.startswith("tcp") else socket.SOCK_DGRAM
def pair(value):
    return [value[0], value[1]]
udp = None
for _ in range(count):
    sock = udp or socket.socket(family, kind)
    result = {"cookie": struct.unpack("Q", sock.getsockopt(socket.SOL_SOCKET, 57, 8))[0]}  # SO_COOKIE
    sock.settimeout(5)
    try:
        if source_port and sock is not udp:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("", source_port))
        if mode == "udp":  # one unconnected socket: sendto, recvfrom
            udp = sock
            sock.sendto(b"peer", (address, port))
            data, source = sock.recvfrom(200)
            result["source"] = pair(source)
        else:
            sock.connect((address, port))
            sock.send(b"peer")
            data = sock.recv(200)
            result["peer"] = pair(sock.getpeername())
        result["answer"] = data.decode()
        result["local"] = pair(sock.getsockname())
        if mode == "tcp":  # a graceful close, done when the server's FIN is in too
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(200):
                pass
    except OSError as exc:
        result["error"] = type(exc).__name__ + ": " + str(exc.strerror or exc)
    if mode == "tcp-rst":  # closed with a reset: no TIME_WAIT on either side
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if sock is not udp:
        sock.close()
    print(json.dumps(result), flush=True)
"""


PEERS = """
import socket, sys, threading
server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", int(sys.argv[1])))
server.listen(1024)
print("ready", flush=True)
def serve(conn):
    with conn:
        while conn.recv(2048):
            conn.sendall(b"here")
while True:
    conn, peer = server.accept()
    print(f"{peer[0]}:{peer[1]}", flush=True)
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""

OPEN_MANY = """
import json, socket, sys
address, port, count, source = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
held = []
for _ in range(count):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if source:
        sock.bind((source, 0))  # the kernel picks the port, as for any connection of the node's own
    sock.settimeout(5)
    sock.connect((address, port))
    sock.sendall(b"who")
    assert sock.recv(200) == b"here"
    held.append(sock)
print(json.dumps([s.getsockname()[1] for s in held]), flush=True)
sys.stdin.read()
"""


def nsenter(netns: str) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{netns}"]


def joining(cgroup: Path | None) -> Callable[[], None] | None:
    """A preexec function that moves the child into ``cgroup`` before it runs anything (None: stay)."""
    if cgroup is None:
        return None

    def join() -> None:
        (cgroup / "cgroup.procs").write_text(str(os.getpid()))
    return join


def probe(netns: str, address: str, port: int, count: int = 1, mode: str = "tcp", *, source_port: int = 0,
          cgroup: Path | None = None) -> list[dict]:
    """``count`` exchanges from ``netns`` (in ``cgroup`` when given): each answer ("NAME CLIENT PORT" as the
    backend saw the client), the peer (getpeername, TCP and connected UDP) or a datagram's source (mode udp:
    one unconnected socket), the local address, the socket cookie, or the error. Modes: tcp (closed after the
    server closed its side too), tcp-rst (closed with a reset), udp, udp-connected. ``source_port``: bind to
    it first."""
    done = subprocess.run([*nsenter(netns), sys.executable, "-c", PROBE, address, str(port), str(count), mode,
                           str(source_port)], capture_output=True, text=True, timeout=120, check=True,
                          preexec_fn=joining(cgroup))
    return [json.loads(line) for line in done.stdout.splitlines()]


@contextmanager
def servers(backends: dict[str, str], port: int, proto: str = "tcp") -> Iterator[None]:
    """A server in each namespace (netns -> name it answers), stopped by PID afterwards."""
    started = []
    try:
        for netns, name in backends.items():
            process = subprocess.Popen([*nsenter(netns), sys.executable, "-c", SERVER, name, str(port), proto],
                                       stdout=subprocess.PIPE, text=True)
            started.append(process)
            assert process.stdout.readline().strip() == "ready"
        yield
    finally:
        for process in started:
            process.kill()
            process.wait()


def connect_many(netns: str, address: str, port: int, count: int, proto: str = "tcp",
                 cgroup: Path | None = None) -> Counter[str]:
    """``count`` connections (each from a new source port; in ``cgroup`` when given): how many each backend
    answered."""
    done = subprocess.run([*nsenter(netns), sys.executable, "-c", CLIENT, address, str(port), str(count), proto],
                          capture_output=True, text=True, timeout=120, check=True, preexec_fn=joining(cgroup))
    return Counter(json.loads(done.stdout))


class HeldConnection:
    """One TCP connection kept open; ``ask()`` sends a request on it and returns who answered."""

    def __init__(self, netns: str, address: str, port: int, cgroup: Path | None = None):
        self.process = subprocess.Popen([*nsenter(netns), sys.executable, "-c", HOLD, address, str(port)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        preexec_fn=joining(cgroup))
        self.first = self.process.stdout.readline().strip()

    def ask(self) -> str:
        self.process.stdin.write("again\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


@contextmanager
def peer_server(netns: str, port: int) -> Iterator[list[str]]:
    """A TCP server that answers every request; the list fills with each connection's peer ("ADDR:PORT")
    when the block ends (the server is stopped by PID)."""
    process = subprocess.Popen([*nsenter(netns), sys.executable, "-c", PEERS, str(port)], stdout=subprocess.PIPE,
                               text=True)
    peers: list[str] = []
    try:
        assert process.stdout.readline().strip() == "ready"
        yield peers
    finally:
        process.kill()
        out, _err = process.communicate()
        peers += out.split()


class OpenConnections:
    """``count`` TCP connections from ``netns`` kept open until ``close()``; ``ports`` are their source ports.
    ``source``: bind to this address first (the kernel still picks the port)."""

    def __init__(self, netns: str, address: str, port: int, count: int, source: str = ""):
        self.process = subprocess.Popen([*nsenter(netns), sys.executable, "-c", OPEN_MANY, address, str(port),
                                         str(count), source], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)

    def ports(self) -> list[int]:
        """Once every connection is open and answered."""
        line = self.process.stdout.readline()
        assert line, self.process.stderr.read()
        return json.loads(line)

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


def tx_checksum_off(netns: str, device: str = "eth0") -> None:
    """Make the sender compute full checksums itself: NAT checksum bugs then reach the receiver."""
    subprocess.run([*nsenter(netns), "ethtool", "-K", device, "tx", "off"], check=True, capture_output=True)

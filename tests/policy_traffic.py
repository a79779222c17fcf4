"""Probes for the policy tests: echo servers on many TCP/UDP ports, and short concurrent probes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from tests.traffic import inside

ECHO_SERVER = """
import socket, sys, threading
address = sys.argv[1]
family = socket.AF_INET6 if ":" in address else socket.AF_INET
def tcp(port):
    server = socket.socket(family); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((address, port)); server.listen(64)
    while True:
        connection, _peer = server.accept()
        threading.Thread(target=serve, args=(connection,), daemon=True).start()
def serve(connection):
    while data := connection.recv(200):
        connection.sendall(data)
def udp(port):
    server = socket.socket(family, socket.SOCK_DGRAM); server.bind((address, port))
    while True:
        data, peer = server.recvfrom(200); server.sendto(data, peer)
threads = [threading.Thread(target=tcp, args=(int(p),), daemon=True) for p in sys.argv[2].split(",") if p]
threads += [threading.Thread(target=udp, args=(int(p),), daemon=True) for p in sys.argv[3].split(",") if p]
for t in threads: t.start()
print("ready", flush=True)
sys.stdin.read()
"""

PROBE = """
import socket, sys
address, port, protocol, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
try:
    if protocol == "tcp":
        s = socket.create_connection((address, port), timeout=timeout); s.sendall(b"hi"); ok = s.recv(10) == b"hi"
    else:
        s = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        s.sendto(b"hi", (address, port)); ok = s.recvfrom(10)[0] == b"hi"
except OSError:
    ok = False
print("allow" if ok else "deny")
"""


@contextmanager
def echo_servers(servers: Iterable[tuple[str, str, list[int], list[int]]]) -> Iterator[None]:
    """Echo servers: (namespace, address, tcp ports, udp ports); killed by PID afterwards."""
    started = []
    try:
        for netns, address, tcp, udp in servers:
            process = subprocess.Popen(inside(netns, sys.executable, "-c", ECHO_SERVER, address,
                                              ",".join(map(str, tcp)), ",".join(map(str, udp))),
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True)
            started.append(process)
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.strip() == "ready", process.stderr.read() if process.stderr else line
        yield
    finally:
        for process in started:
            process.kill()
            process.wait()


def probe(netns: str, address: str, port: int, protocol: str, timeout: float = 1.0) -> str:
    """'allow' when the exchange (TCP echo, UDP echo or ping) completes, else 'deny'."""
    if protocol == "icmp":
        done = subprocess.run(inside(netns, "ping", "-c", "2", "-i", "0.2", "-W", str(timeout), address),
                              capture_output=True, text=True)
        return "allow" if done.returncode == 0 else "deny"
    done = subprocess.run(inside(netns, sys.executable, "-c", PROBE, address, str(port), protocol, str(timeout)),
                          capture_output=True, text=True, timeout=30)
    return done.stdout.strip() or done.stderr.strip()


def probe_all(cases: list[tuple[str, str, int, str]]) -> list[str]:
    """Every probe at once (expected drops each wait their timeout, in parallel)."""
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        return list(pool.map(lambda case: probe(*case), cases))

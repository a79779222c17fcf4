"""HTTP for the L7 tests: servers in endpoint namespaces that say whom they see, and curl requests."""

from __future__ import annotations

import http.client
import subprocess
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import NamedTuple

from netplanx.system import netns as namespaces
from tests.traffic import inside

HTTP_SERVER = """
import socket, socketserver, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
address = sys.argv[1]
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self):
        body = f"peer {self.client_address[0]} {self.command} {self.path}\\n".encode()
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = answer
    def log_message(self, *args):
        pass
class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
    daemon_threads = True
    def server_bind(self):  # without the name lookup HTTPServer makes (no DNS traffic in the flows)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
for port in sys.argv[2].split(","):
    threading.Thread(target=Server((address, int(port)), Handler).serve_forever, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


class Answer(NamedTuple):
    status: int  # 0: no HTTP answer (refused, reset, timed out)
    body: str


@contextmanager
def http_servers(servers: Iterable[tuple[str, str, list[int]]]) -> Iterator[None]:
    """HTTP servers: (namespace, address, ports); each answers ``peer ADDRESS METHOD PATH``; killed by PID."""
    started = []
    try:
        for netns, address, ports in servers:
            process = subprocess.Popen(inside(netns, sys.executable, "-c", HTTP_SERVER, address,
                                              ",".join(map(str, ports))),
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            started.append(process)
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.strip() == "ready", process.stderr.read() if process.stderr else line
        yield
    finally:
        for process in started:
            process.kill()
            process.wait()


def url(address: str, port: int, path: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}{path}"


def curl(netns: str, address: str, port: int, method: str = "GET", path: str = "/", headers: Iterable[str] = (),
         timeout: float = 5.0) -> Answer:
    """One request with curl from ``netns``, on a new connection."""
    command = ["curl", "-s", "-g", "--path-as-is", "--max-time", str(timeout), "-o", "-", "-w", "\n%{http_code}"]
    command += ["--head"] if method == "HEAD" else ["-X", method]
    for header in headers:
        command += ["-H", header]
    done = subprocess.run(inside(netns, *command, url(address, port, path)), capture_output=True, text=True,
                          timeout=timeout + 20)
    body, _newline, code = done.stdout.rpartition("\n")
    return Answer(int(code) if code.isdigit() else 0, body)


def curl_all(cases: list[tuple]) -> list[Answer]:
    """Every request at once (the ones that must time out wait in parallel)."""
    with ThreadPoolExecutor(max_workers=max(1, len(cases))) as pool:
        return list(pool.map(lambda case: curl(*case), cases))


def keep_alive(netns: str, address: str, port: int) -> http.client.HTTPConnection:
    """An HTTP/1.1 connection opened from ``netns`` (its socket stays in that namespace)."""
    connection = http.client.HTTPConnection(address, port, timeout=10)
    namespaces.call_inside(netns, connection.connect)
    return connection


def ask(connection: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str] | None = None
        ) -> tuple[int, str, str]:
    """A request on an open connection: status, body, and its Connection header."""
    connection.request(method, path, headers=headers or {})
    response = connection.getresponse()
    return response.status, response.read().decode(), response.getheader("Connection", "")

"""The BGP test topology: namespace ROUTER runs BIRD (AS 65000, 192.0.2.1), NODE runs gobgpd (AS 65001,
192.0.2.11) and, when a test starts it, ``netx bgp sync``; a veth joins them. BIRD dials (gobgpd's peers are
passive), so sessions come up in about a second instead of gobgpd's 5-9 s dial delay.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from netplanx.lab.bgp import Bird, BirdNeighbour, Daemon, bird_config, start_gobgpd, start_sync, wait_until
from tests.conftest import Netx, ip, ip_json, new_netns

ROUTER_ADDRESS, NODE_ADDRESS = "192.0.2.1", "192.0.2.11"
ANNOUNCED = "203.0.113.0/24"  # what BIRD announces


@dataclass
class Topology:
    router: str
    node: str
    folder: Path
    netx: Netx
    bird: Bird
    gobgpd: Daemon

    def established(self) -> bool:
        return self.bird.established("node")

    def converged(self, spec: str | None = None) -> None:
        """The spec (default: ``node_spec()``) applied, the session up and BIRD holding the advertised prefixes."""
        self.netx.apply(spec or node_spec())
        wait_until(self.established, 20, "BIRD's session with gobgpd")
        wait_until(lambda: {"198.51.100.0/24", "198.51.100.128/25"} <= self.bird.routes(), 10, "BIRD learning")

    def restart_gobgpd(self, how: signal.Signals = signal.SIGTERM) -> None:
        """Stop gobgpd with ``how`` (SIGTERM: what it gets by default; SIGKILL: what examples/systemd's unit
        sends) and start an empty one: it has forgotten its configuration until netx applies it again."""
        self.gobgpd.stop(how)
        self.gobgpd = start_gobgpd(self.node, self.folder)

    def start_sync(self) -> Daemon:
        return start_sync(self.node, self.folder, self.netx.state_dir)

    def sync_log(self) -> str:
        return (self.folder / f"netx-bgp-sync-{self.node}.log").read_text(errors="replace")

    def synced_routes(self) -> dict[str, str]:
        """The routes of the sync's protocol in the node's main table: destination -> gateway."""
        return {r["dst"]: r.get("gateway", "") for r in ip_json(self.node, "route", "show", "proto", "79")}

    def route(self, prefix: str) -> dict | None:
        """The node's route to exactly ``prefix`` (None without one)."""
        found = ip_json(self.node, "route", "show", "exact", prefix)
        return found[0] if found else None


def router_config(password: str | None = None, announce: Sequence[str] = (ANNOUNCED,)) -> str:
    """BIRD on the router: AS 65000, the node as neighbour (graceful restart on), ``announce`` announced."""
    return bird_config(ROUTER_ADDRESS, 65000, [BirdNeighbour("node", NODE_ADDRESS, 65001, password)],
                       announce=announce)


def node_spec(peers: str = "[{address: 192.0.2.1, asn: 65000, passive: true, description: router}]",
              prefixes: str = '[{prefix: 198.51.100.0/24, communities: ["65001:7"]}, {prefix: 198.51.100.128/25}]',
              port: int = 50051, extra: str = "") -> str:
    """The node's spec; ``extra``: more keys of the bgp section (one line, indented as the others)."""
    more = f"\n          {extra}" if extra else ""
    return f"""\
        apiVersion: netx/v1
        bgp:
          api: 127.0.0.1:{port}
          asn: 65001
          routerId: {NODE_ADDRESS}{more}
          peers: {peers}
          advertise: {{prefixes: {prefixes}}}
        """


def topology(folder: Path) -> Iterator[Topology]:
    """A topology for a fixture to yield; every daemon and namespace goes afterwards, whatever happened."""
    from netplanx.lab.bgp import stop_recorded

    router, node = new_netns("netx-r"), new_netns("netx-n")
    try:
        ip("-n", node, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", router)
        for netns, address in ((router, ROUTER_ADDRESS), (node, NODE_ADDRESS)):
            ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", netns, "link", "set", "eth0", "up")
            ip("-n", netns, "link", "set", "lo", "up")
        gobgpd = start_gobgpd(node, folder)
        bird = Bird(router, folder, router_config())
        yield Topology(router, node, folder, Netx(node, folder / "state", folder), bird, gobgpd)
    finally:
        stop_recorded(folder)  # every daemon of the test, a restarted gobgpd or a sync included
        ip("netns", "del", router, check=False)
        ip("netns", "del", node, check=False)


@contextmanager
def route_events(netns: str) -> Iterator[list[str]]:
    """``ip monitor route`` in ``netns`` while the block runs: the list fills with one line per route event
    (``Deleted ...`` for a removal), from the moment the monitor has seen a marker route go."""
    process = subprocess.Popen(["ip", "-n", netns, "monitor", "route"], stdout=subprocess.PIPE, text=True)
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    def marker_seen(address: str = "192.0.2.254") -> bool:
        ip("-n", netns, "route", "add", f"{address}/32", "dev", "eth0", "proto", "static")
        ip("-n", netns, "route", "del", f"{address}/32", "dev", "eth0")
        return any(line.startswith(f"Deleted {address} ") for line in lines)

    try:
        wait_until(marker_seen, 10, "ip monitor listening", interval=0.1)  # it subscribes a moment after it starts
        marker_seen("192.0.2.253")  # a last marker: once its removal is in, every earlier event is too
        wait_until(lambda: any(line.startswith("Deleted 192.0.2.253 ") for line in lines), 5, "the last marker")
        lines.clear()
        yield lines
    finally:
        process.terminate()
        process.wait()
        reader.join(5)

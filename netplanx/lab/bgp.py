"""BGP daemons for the lab and the tests: BIRD 2 (an independent BGP speaker), gobgpd, and
``netx bgp sync``, each started inside a namespace and recorded by PID so they can be stopped by PID.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from netplanx.system.processes import command_line, kill, terminate

GOBGP_API_PORT = 50051
T = TypeVar("T")


def in_netns(netns: str, *argv: str) -> list[str]:
    """A command line that runs ``argv`` in ``netns`` (setns; /sys/fs/bpf stays visible, unlike ip netns exec)."""
    return ["nsenter", f"--net=/run/netns/{netns}", "--", *argv]


@dataclass
class Daemon:
    """A process started in a namespace; its PID file lets another process stop it after a crash."""

    process: subprocess.Popen
    pidfile: Path

    def stop(self, how: signal.Signals = signal.SIGTERM) -> None:
        """Stop it with ``how`` (SIGTERM by default; SIGKILL after 10 s) and wait until it has exited."""
        if self.process.poll() is None:
            self.process.send_signal(how)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.pidfile.unlink(missing_ok=True)


def spawn(netns: str, argv: Sequence[str], folder: Path, name: str) -> Daemon:
    """Start ``argv`` in ``netns``, output to ``folder/name.log``, PID in ``folder/name.pid``."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(in_netns(netns, *argv), stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    pidfile = folder / f"{name}.pid"
    pidfile.write_text(json.dumps({"pid": process.pid, "program": Path(argv[0]).name}))
    return Daemon(process, pidfile)


def stop_recorded(folder: Path, timeout: float = 10) -> None:
    """Stop every daemon recorded in ``folder`` whose PID still runs the program recorded with it, and
    wait until each has exited."""
    for pidfile in folder.glob("*.pid"):
        record = json.loads(pidfile.read_text())
        if any(Path(part.decode(errors="replace")).name == record["program"] for part in command_line(record["pid"])):
            terminate(record["pid"], timeout, on_timeout=kill)
        pidfile.unlink(missing_ok=True)


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``condition`` until it returns something true (returned) or ``timeout`` passes (an error)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(interval)


def gobgp(netns: str, *args: str, port: int = GOBGP_API_PORT) -> subprocess.CompletedProcess[str]:
    """The gobgp command line tool against the gobgpd of ``netns`` (an observer independent of netx)."""
    return subprocess.run(in_netns(netns, "gobgp", "-p", str(port), *args), capture_output=True, text=True,
                          timeout=30)


def start_gobgpd(netns: str, folder: Path, port: int = GOBGP_API_PORT) -> Daemon:
    daemon = spawn(netns, ["gobgpd", "--api-hosts", f"127.0.0.1:{port}", "--pprof-disable", "--log-level",
                           "warn"], folder, f"gobgpd-{netns}")
    return _ready(daemon, lambda: gobgp(netns, "global", port=port).returncode == 0, f"gobgpd in {netns}")


def _ready(daemon: Daemon, condition: Callable[[], object], what: str, timeout: float = 30) -> Daemon:
    """``daemon`` once ``condition`` holds; stopped (never left behind) when it does not in time."""
    try:
        wait_until(condition, timeout, what)
    except BaseException:
        daemon.stop()
        raise
    return daemon


def start_sync(netns: str, folder: Path, state_dir: Path, port: int = GOBGP_API_PORT) -> Daemon:
    """``netx bgp sync`` for the gobgpd of ``netns``; returns once it has reconciled the kernel."""
    name = f"netx-bgp-sync-{netns}"
    env_python = [sys.executable, "-m", "netplanx", "bgp", "sync", "--api", f"127.0.0.1:{port}",
                  "--state-dir", str(state_dir), "--netns", netns]  # --netns: its records are the namespace's
    log = folder / f"{name}.log"
    before = log.read_text(errors="replace").count("synced:") if log.exists() else 0
    daemon = spawn(netns, env_python, folder, name)
    return _ready(daemon, lambda: log.read_text(errors="replace").count("synced:") > before,
                  f"netx bgp sync in {netns}")


@dataclass(frozen=True)
class BirdNeighbour:
    name: str
    address: str
    asn: int
    password: str | None = None
    reflector_client: bool = False


def bird_config(router_id: str, asn: int, neighbours: Sequence[BirdNeighbour], announce: Sequence[str] = ()) -> str:
    """A BIRD 2 configuration: every neighbour dialled at once and retried fast (tests must not wait on
    BGP's usual timers), with graceful restart (BIRD keeps a neighbour's routes while it restarts, when its
    session ends without a NOTIFICATION), learned routes exported to the namespace's kernel, ``announce``
    (IPv4 and IPv6 prefixes, blackholed here) in a static protocol named ``announced`` that tests can disable."""
    lines = ["log stderr all;", f"router id {router_id};", "protocol device { scan time 1; }",
             "protocol kernel { ipv4 { import none; export all; }; }",
             "protocol kernel { ipv6 { import none; export all; }; }"]
    v4 = [p for p in announce if ":" not in p]
    v6 = [p for p in announce if ":" in p]
    if v4:
        lines.append("protocol static announced { ipv4; " + " ".join(f"route {p} blackhole;" for p in v4) + " }")
    if v6:
        lines.append("protocol static announced6 { ipv6; " + " ".join(f"route {p} blackhole;" for p in v6) + " }")
    for peer in neighbours:
        family = "ipv6" if ":" in peer.address else "ipv4"
        body = [f"local as {asn};", f"neighbor {peer.address} as {peer.asn};", "hold time 9;", "keepalive time 3;",
                "connect delay time 1;", "connect retry time 1;", "error wait time 1, 2;", "graceful restart on;",
                f"{family} {{ import all; export all; next hop keep; }};"]
        if peer.reflector_client:
            body.append("rr client;")
        if peer.password:
            body.append(f'password "{peer.password}";')
        lines.append(f"protocol bgp {peer.name} {{ " + " ".join(body) + " }")
    return "\n".join(lines) + "\n"


class Bird:
    """BIRD 2 running in a namespace, driven through its own control socket."""

    def __init__(self, netns: str, folder: Path, config: str, name: str = "bird"):
        self.netns = netns
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.config_path = folder / f"{name}-{netns}.conf"
        self.socket = folder / f"{name}-{netns}.ctl"
        self.config_path.write_text(config)
        self.daemon = _ready(spawn(netns, ["bird", "-f", "-c", str(self.config_path), "-s", str(self.socket)], folder,
                                   f"{name}-{netns}"),
                             lambda: self.socket.exists() and self._birdc("show", "status").returncode == 0,
                             f"bird in {netns}")

    def _birdc(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["birdc", "-s", str(self.socket), *args], capture_output=True, text=True, timeout=30)

    def birdc(self, *args: str) -> str:
        done = self._birdc(*args)
        if done.returncode != 0:
            raise RuntimeError(f"birdc {' '.join(args)}: {done.stderr}{done.stdout}")
        return done.stdout

    def reconfigure(self, config: str) -> None:
        self.config_path.write_text(config)
        self.birdc("configure")

    def established(self, protocol: str) -> bool:
        return "Established" in self.birdc("show", "protocols", protocol)

    def routes(self) -> set[str]:
        """Prefixes in BIRD's tables that it learned over BGP."""
        out = self.birdc("show", "route", "where", "source = RTS_BGP")
        return {line.split()[0] for line in out.splitlines() if line[:1].isdigit() or ":" in line.split(" ")[0]}

    def stop(self) -> None:
        self.daemon.stop()
        self.socket.unlink(missing_ok=True)

"""Shared fixtures: throwaway network namespaces, the netx command, and independent observers (iproute2)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from netplanx.lab.cluster import NODE_NAMES, Lab

pytest_plugins = ("tests.vm.plugin",)  # tests marked kernel(...) run in a stock-kernel VM where this kernel lacks it

ROOT = Path(__file__).resolve().parents[1]
IS_ROOT = os.geteuid() == 0
IN_VM = os.environ.get("NETX_IN_VM") == "1"  # inside the stock-kernel VM (tests/vm)
needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root: creates network namespaces")


@pytest.hookimpl(optionalhook=True)  # the VM's pytest runs without xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Tests go to workers one by one, but each ``test_fleet_*.py`` file goes to one worker as a whole: its
    scenarios run in order on one fleet, as a fleet lives; and the VM's stand-ins (tests/vm) go to one worker
    together, which waits for the VM while the others run the host's tests. (``--dist loadgroup`` would say
    the same with ``xdist_group`` marks, but it silently stops grouping with pytest 9.2: pytest-xdist issue
    #1386.)"""
    from xdist.scheduler import LoadScopeScheduling

    from tests.vm.plugin import GROUP

    class FleetFiles(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.endswith(GROUP):
                return GROUP
            path = nodeid.split("::", 1)[0]
            return path if Path(path).name.startswith("test_fleet_") else nodeid

    return FleetFiles(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fleet files first (the rest in order): the longest units of work start first."""
    items.sort(key=lambda item: not Path(item.nodeid.split("::", 1)[0]).name.startswith("test_fleet_"))


def ip(*args: str, check: bool = True) -> str:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True).stdout


def ip_json(netns: str, *args: str) -> list[dict]:
    out = ip("-n", netns, "-j", *args)
    return json.loads(out) if out.strip() else []


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict:
        return json.loads(self.out)


class Netx:
    """Runs the real ``netx`` command in a namespace, with a private state directory."""

    def __init__(self, netns: str, state_dir: Path, workdir: Path):
        self.netns = netns
        self.state_dir = state_dir
        self.workdir = workdir

    def __call__(self, *args: str, spec: str | None = None, netns: bool = True, env: dict | None = None,
                 stdin: str | None = None) -> Result:
        command = list(args)
        if spec is not None:
            command.append(str(self.write(spec)))
        if netns:
            command += ["--netns", self.netns]
        environment = {**os.environ, "NETX_STATE_DIR": str(self.state_dir), **(env or {})}
        done = run_netx(command, environment, stdin)
        return Result(done.returncode, done.stdout, done.stderr)

    def write(self, spec: str, name: str | None = None) -> Path:
        path = self.workdir / (name or f"spec-{uuid.uuid4().hex[:6]}.yaml")
        path.write_text(textwrap.dedent(spec))
        return path

    def apply(self, spec: str, *extra: str) -> Result:
        result = self("apply", "--auto-approve", "--json", *extra, spec=spec)
        assert result.code == 0, result.err + result.out
        return result

    def plan(self, spec: str, *extra: str) -> dict:
        result = self("plan", "--json", *extra, spec=spec)
        assert result.code == 0, result.err + result.out
        return result.json


def run_netx(args: Sequence[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The ``netx`` command: a subprocess; in the VM, a fork of this process (tests/vm/forked.py)."""
    if IN_VM:
        from tests.vm import forked

        return forked.run(args, env, ROOT, stdin)
    return subprocess.run([sys.executable, "-m", "netplanx", *args], capture_output=True, text=True, env=env,
                          input=stdin, cwd=ROOT, timeout=120)


def fast_in_vm(made: Lab) -> Lab:
    """A lab whose netx commands run as run_netx runs them (forked in the VM)."""
    if IN_VM:
        def netx(node: str, *args: str) -> subprocess.CompletedProcess[str]:
            env = {**os.environ, "NETX_STATE_DIR": str(made.state_dir)}
            return run_netx([*args, "--node", node, "--netns", made.netns(node)], env)

        made.netx = netx  # type: ignore[method-assign]
    return made


def new_netns(prefix: str = "netx-t") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    ip("netns", "add", name)
    return name


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh, empty network namespace, deleted after the test whatever happens."""
    if not IS_ROOT:
        pytest.skip("needs root: creates network namespaces")
    name = new_netns()
    try:
        yield name
    finally:
        ip("netns", "del", name, check=False)


@pytest.fixture
def other_netns() -> Iterator[str]:
    if not IS_ROOT:
        pytest.skip("needs root: creates network namespaces")
    name = new_netns("netx-p")
    try:
        yield name
    finally:
        ip("netns", "del", name, check=False)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """Three nodes on an underlay bridge; everything is removed afterwards, whatever happened."""
    yield from lab_of(3, tmp_path)


def lab_of(nodes: int, folder: Path) -> Iterator[Lab]:
    """A lab of ``nodes`` nodes for a fixture to yield; removed afterwards, whatever happened."""
    if not IS_ROOT:
        pytest.skip("needs root: creates network namespaces")
    made = fast_in_vm(Lab(f"lx{uuid.uuid4().hex[:6]}", list(NODE_NAMES[:nodes]), folder))
    try:
        yield made.up()
    finally:
        made.down()


@pytest.fixture
def cgroup() -> Iterator[Path]:
    """A cgroup v2 directory of the test's own (never the host's): the processes the test starts join it or
    cgroups the test makes below it. Removed afterwards, with every cgroup below it; a process of the test's
    still in one is killed by its PID first (only the test's processes are ever put there)."""
    if not IS_ROOT:
        pytest.skip("needs root: creates a cgroup")
    from netplanx.system.bpf.cgroup import cgroup2_root

    made = cgroup2_root() / f"netx-t-{uuid.uuid4().hex[:8]}"
    made.mkdir()
    try:
        yield made
    finally:
        for folder in sorted((p for p in made.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            _empty_cgroup(folder)
        _empty_cgroup(made)


def _empty_cgroup(folder: Path) -> None:
    """Kill what is left in a test's cgroup (by PID), wait for it to be empty (cgroup.events), remove it."""
    for pid in (folder / "cgroup.procs").read_text().split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    with (folder / "cgroup.events").open() as events:
        poller = select.poll()
        poller.register(events, select.POLLPRI)
        while "populated 1" in events.read():
            poller.poll(10_000)  # the kernel signals every change of the file
            events.seek(0)
    folder.rmdir()


@pytest.fixture
def topo(tmp_path: Path) -> Iterator[Any]:
    """BIRD on a router and gobgpd on a node (tests/bgp_topology.py); removed afterwards, whatever happened."""
    if not IS_ROOT:
        pytest.skip("needs root: creates network namespaces")
    from tests.bgp_topology import topology

    yield from topology(tmp_path)


@pytest.fixture
def netx(netns: str, tmp_path: Path) -> Netx:
    return Netx(netns, tmp_path / "state", tmp_path)


def assert_adopts(target: Netx | Lab, node: str = "", show: Sequence[str] = ()) -> str:
    """Adoption round trip on a namespace (a Netx's, or a lab node's): ``netx show -o yaml`` writes a spec
    that validates and plans to no changes against the namespace it was read from. Returns the spec."""
    if isinstance(target, Lab):
        def run(*args: str) -> Result:  # not the lab's own netx: a fixture may record its outputs
            env = {**os.environ, "NETX_STATE_DIR": str(target.state_dir)}
            done = run_netx([*args, "--node", node, "--netns", target.netns(node)], env)
            return Result(done.returncode, done.stdout, done.stderr)
        folder = target.workdir
    else:
        run, folder = target, target.workdir
    shown = run("show", "-o", "yaml", *show)
    assert shown.code == 0, shown.err
    path = folder / f"adopted-{node or 'host'}-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(shown.out)
    validated = run("validate", str(path))
    assert validated.code == 0, validated.err + shown.out
    planned = run("plan", str(path), "--detailed-exitcode")
    assert planned.code == 0, planned.out + planned.err + shown.out
    return shown.out


def pytest_assertrepr_compare(op: str, left: object, right: object) -> list[str] | None:
    """Two ``snapshot``s that differ: which part, and for links which link and which of its fields (pytest's
    own diff of the nested lists is cut short, and a flaky failure under load must say what differed)."""
    if op != "==" or not (isinstance(left, dict) and isinstance(right, dict) and "links" in left and "links" in right):
        return None
    lines = ["snapshots differ:"]
    for part in sorted(set(left) | set(right)):
        mine, theirs = left.get(part), right.get(part)
        if mine == theirs:
            continue
        if part != "links":
            lines.append(f"  {part}: {mine!r:.400} != {theirs!r:.400}")
            continue
        ours, others = ({link["ifname"]: link for link in links} for links in (mine, theirs))
        for name in sorted(set(ours) | set(others)):
            a, b = ours.get(name), others.get(name)
            if a is None or b is None:
                lines.append(f"  link {name}: only on the {'left' if b is None else 'right'}")
            elif a != b:
                lines += [f"  link {name}.{key}: {a.get(key)!r} != {b.get(key)!r}"
                          for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]
    return lines


def snapshot(netns: str) -> dict:
    """Everything observable about a namespace, read with iproute2 and /proc (independent of netx)."""
    links = ip_json(netns, "-d", "link", "show")
    for link in links:
        for volatile in ("operstate", "linkmode", "stats64", "promiscuity", "allmulti", "linkinfo_slave"):
            link.pop(volatile, None)
        link.get("linkinfo", {}).pop("info_slave_data", None)
        (link.get("linkinfo", {}).get("info_data") or {}).pop("hello_timer", None)
        for timer in ("tcn_timer", "topology_change_timer", "gc_timer", "hello_timer"):
            (link.get("linkinfo", {}).get("info_data") or {}).pop(timer, None)
    state = {
        "links": sorted(links, key=lambda link: link["ifname"]),
        "addresses": sorted((a["ifname"], i["local"], i["prefixlen"]) for a in ip_json(netns, "addr", "show")
                            for i in a.get("addr_info", []) if i.get("scope") != "link"),
        "routes": sorted(json.dumps(r, sort_keys=True) for family in ("-4", "-6")
                         for r in ip_json(netns, family, "route", "show", "table", "all")
                         if not r.get("dst", "").startswith("fe80") and r.get("type") not in ("local", "multicast")),
        "rules": sorted(json.dumps(r, sort_keys=True) for family in ("-4", "-6")
                        for r in ip_json(netns, family, "rule", "show")),
        "neighbours": sorted(json.dumps(n, sort_keys=True)
                             for n in ip_json(netns, "neigh", "show", "nud", "permanent")),
        "sysctl": {key: _sysctl(netns, key) for key in (
            "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding", "net.ipv4.conf.all.rp_filter")},
    }
    return state


def _sysctl(netns: str, key: str) -> str:
    return subprocess.run(["nsenter", f"--net=/run/netns/{netns}", "cat", "/proc/sys/" + key.replace(".", "/")],
                          capture_output=True, text=True, check=True).stdout.strip()


def sysctl(netns: str, key: str) -> str:
    return _sysctl(netns, key)


RTNL_GROUPS = (1, 5, 7, 8, 9, 11, 19)  # link, ipv4 addr/route/rule, ipv6 addr/route/rule


class NetlinkEvents:
    """Subscribes to rtnetlink change notifications inside a namespace (an observer independent of netx)."""

    def __init__(self, netns: str):
        import socket

        from netplanx.system import netns as namespaces

        def open_socket() -> socket.socket:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            sock.bind((0, 0))
            for group in RTNL_GROUPS:
                sock.setsockopt(270, 1, group)  # SOL_NETLINK, NETLINK_ADD_MEMBERSHIP
            return sock

        self.sock = namespaces.call_inside(netns, open_socket)

    def pending(self) -> int:
        """Notification datagrams received so far (does not wait)."""
        import socket

        count = 0
        while True:
            try:
                self.sock.recv(1 << 16, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return count
            count += 1

    def close(self) -> None:
        self.sock.close()

"""A lab of N nodes on one machine: each node a network namespace on a shared underlay bridge.

Used by the tests and by people: ``python -m netplanx.lab up --nodes 3`` builds one, writes its cluster
spec and applies it on every node; ``python -m netplanx.lab down`` removes every namespace it made.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

LAB_ASN = 65000
REFLECTOR = ("192.0.2.1", "2001:db8::1")  # BIRD on the underlay bridge, in mode bgp
NODE_NAMES = tuple(f"node-{letter}" for letter in "abcdefghijklmnopqrstuvwxyz")
UNDERLAY_BRIDGE = "ul0"

if TYPE_CHECKING:
    from netplanx.lab.bgp import Daemon


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def lab_spec(name: str, nodes: Sequence[str], mode: str = "tunnel", endpoints: dict[str, str] | None = None,
             protocol: str = "vxlan", port: int | None = None, keys: dict[str, tuple[str, Path]] | None = None,
             checks: Sequence[str] = ()) -> str:
    """A cluster spec for the lab: node i has 192.0.2.1i/24, 2001:db8::1i/64, pods 10.244.i.0/24 and
    fd00:244:0:i::/64; ``endpoints`` maps endpoint name -> node (endpoint k of a node gets host .1k);
    ``keys`` (node -> public key, private key file) turns WireGuard encryption on; ``checks`` are
    post-conditions in flow style (``{ping: 10.244.1.11}``). Mode ``bgp`` is native routing with the routes
    learned over iBGP (AS 65000) through the route reflector on the underlay. ``port`` defaults to the
    protocol's own (8472 vxlan, 6081 geneve)."""
    tunnel = f"protocol: {protocol}, vni: 42" + (f", port: {port}" if port is not None else "")
    routing = "{mode: native, routes: bgp}" if mode == "bgp" else f"{{mode: {mode}, tunnel: {{{tunnel}}}}}"
    lines = ["# yaml-language-server: $schema=../../schema/netx.schema.json", "apiVersion: netx/v1", "cluster:",
             f"  name: {name}", "  podCIDR: 10.244.0.0/16", '  podCIDR6: "fd00:244::/48"', f"  routing: {routing}",
             "  underlay: {device: eth0, mtu: 1500, prefixLength: 24, prefixLength6: 64}"]
    if keys:
        lines.append("  encryption: {wireguard: {device: netx-wg, port: 51820}}")
    lines.append("  nodes:")
    for index, node in enumerate(nodes, start=1):
        wireguard = f', wireguard: {{publicKey: "{keys[node][0]}", privateKeyFile: {keys[node][1]}}}' if keys else ""
        lines.append(f'    - {{name: {node}, address: 192.0.2.{10 + index}, address6: "2001:db8::{10 + index}", '
                     f'podCIDR: 10.244.{index}.0/24, podCIDR6: "fd00:244:0:{index}::/64"{wireguard}}}')
    if mode == "bgp":
        lines += ["bgp:", f"  asn: {LAB_ASN}", "  peers:",
                  f"    - {{address: {REFLECTOR[0]}, asn: {LAB_ASN}, passive: true, description: route reflector}}",
                  f'    - {{address: "{REFLECTOR[1]}", asn: {LAB_ASN}, passive: true, description: route reflector}}']
    if endpoints:
        lines.append("endpoints:")
        counts: dict[str, int] = {}
        for endpoint, node in endpoints.items():
            index = nodes.index(node) + 1
            counts[node] = counts.get(node, 0) + 1
            host = 10 + counts[node]
            lines.append(f"  - {{name: {endpoint}, node: {node}, address: 10.244.{index}.{host}, "
                         f'address6: "fd00:244:0:{index}::{host:x}", labels: {{app: {endpoint.split("-")[0]}}}}}')
    if checks:
        lines += ["checks:", *(f"  - {check}" for check in checks)]
    return "\n".join(lines) + "\n"


@dataclass
class Lab:
    """Namespaces ``NAME-ul`` (the underlay bridge) and ``NAME-node-x``; endpoints become ``NAME-EP``."""

    name: str
    nodes: list[str]
    workdir: Path
    state_dir: Path = field(init=False)
    gobgpd: dict[str, Daemon] = field(init=False, default_factory=dict)  # each node's, in mode bgp

    def __post_init__(self) -> None:
        self.state_dir = self.workdir / "state"

    @property
    def underlay(self) -> str:
        return f"{self.name}-ul"

    @property
    def daemons(self) -> Path:
        return self.workdir / "daemons"

    def start_bgp(self) -> None:
        """Mode bgp: BIRD as iBGP route reflector on the underlay; gobgpd and ``netx bgp sync`` on every node
        (each node's spec configures its gobgpd when applied)."""
        from netplanx.lab.bgp import Bird, BirdNeighbour, bird_config, start_gobgpd

        _ip("-n", self.underlay, "addr", "add", f"{REFLECTOR[0]}/24", "dev", UNDERLAY_BRIDGE)
        _ip("-n", self.underlay, "addr", "add", f"{REFLECTOR[1]}/64", "dev", UNDERLAY_BRIDGE, "nodad")
        _ip("-n", self.underlay, "link", "set", "lo", "up")
        clients = [BirdNeighbour(f"{node.replace('-', '_')}{suffix}", address, LAB_ASN, reflector_client=True)
                   for index, node in enumerate(self.nodes, start=1)
                   for suffix, address in (("", f"192.0.2.{10 + index}"), ("_6", f"2001:db8::{10 + index}"))]
        Bird(self.underlay, self.daemons, bird_config(REFLECTOR[0], LAB_ASN, clients))
        for node in self.nodes:
            self.gobgpd[node] = start_gobgpd(self.netns(node), self.daemons)

    def restart_gobgpd(self, node: str, how: signal.Signals = signal.SIGKILL) -> None:
        """Stop ``node``'s gobgpd as systemd does with examples/systemd/gobgpd.service (SIGKILL: no
        NOTIFICATION reaches the peers, so graceful restart keeps the node's paths with them) and start an
        empty one: apply the node's spec again to configure it."""
        from netplanx.lab.bgp import start_gobgpd

        self.gobgpd[node].stop(how)
        self.gobgpd[node] = start_gobgpd(self.netns(node), self.daemons)

    def start_route_sync(self) -> None:
        """``netx bgp sync`` on every node (after the nodes' specs are applied)."""
        from netplanx.lab.bgp import start_sync

        for node in self.nodes:
            start_sync(self.netns(node), self.daemons, self.state_dir)

    def netns(self, node: str) -> str:
        return f"{self.name}-{node}"

    def endpoint_netns(self, endpoint: str) -> str:
        return f"{self.name}-{endpoint}"

    def up(self) -> Lab:
        """Create the underlay and the nodes (each with ``eth0`` on the underlay bridge)."""
        _ip("netns", "add", self.underlay)
        _ip("-n", self.underlay, "link", "add", UNDERLAY_BRIDGE, "type", "bridge")
        _ip("-n", self.underlay, "link", "set", UNDERLAY_BRIDGE, "up")
        for index, node in enumerate(self.nodes):
            self.add_node(node, index)
        return self

    def add_node(self, node: str, index: int) -> None:
        namespace, port = self.netns(node), f"ul-{index}"
        _ip("netns", "add", namespace)
        _ip("-n", namespace, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", self.underlay)
        _ip("-n", self.underlay, "link", "set", port, "master", UNDERLAY_BRIDGE, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")

    def down(self) -> None:
        """Stop the lab's daemons (wireguard-go, BIRD, gobgpd, netx bgp sync, L7 proxies; by PID) and delete every
        namespace of this lab, endpoints included, and their eBPF pins (also after a failed test)."""
        from netplanx.errors import ProviderError
        from netplanx.features.policy.proxy import Proxy
        from netplanx.features.wireguard.drivers import SOCKET_ROOT, UserspaceDriver
        from netplanx.lab.bgp import stop_recorded
        from netplanx.system.processes import kill, terminate

        stop_recorded(self.daemons)
        listed = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True).stdout
        for entry in json.loads(listed or "[]"):
            if entry["name"].startswith(f"{self.name}-"):
                driver = UserspaceDriver(entry["name"])
                for pidfile in (SOCKET_ROOT / entry["name"]).glob("*.pid"):
                    try:
                        driver.stop(pidfile.stem)
                    except ProviderError:  # slow to leave on a busy machine: the lab leaves nothing running
                        terminate(int(pidfile.read_text()), timeout=30, on_timeout=kill)
                        driver.stop(pidfile.stem)
                proxy = Proxy(entry["name"])  # a node's L7 proxy
                proxy.stop()
                proxy.wipe()
                subprocess.run(["ip", "netns", "del", entry["name"]], check=False, capture_output=True)
        from netplanx.system.bpf.loader import PIN_ROOT

        for pins in PIN_ROOT.glob(f"{self.name}-*"):  # bpffs is shared by all namespaces: their pins stay
            shutil.rmtree(pins, ignore_errors=True)

    def netx(self, node: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "NETX_STATE_DIR": str(self.state_dir)}
        return subprocess.run([sys.executable, "-m", "netplanx", *args, "--node", node, "--netns", self.netns(node)],
                              capture_output=True, text=True, env=env, timeout=120)

    def write(self, spec: str, name: str = "cluster.yaml") -> Path:
        path = self.workdir / name
        path.write_text(spec)
        return path

    def apply(self, spec: str, nodes: Sequence[str] | None = None) -> dict[str, dict]:
        """Apply the spec on every node (or the given ones); each node's JSON result."""
        path = self.write(spec)
        results = {}
        for node in nodes or self.nodes:
            done = self.netx(node, "apply", str(path), "--auto-approve", "--json")
            if done.returncode != 0:
                raise RuntimeError(f"apply on {node} failed:\n{done.stderr}{done.stdout}")
            results[node] = json.loads(done.stdout)
        return results

    def keys(self, generation: int = 1) -> dict[str, tuple[str, Path]]:
        """A WireGuard key pair per node (files 0600 in the lab folder); a new generation rotates them."""
        from netplanx.features.wireguard.keys import generate

        made = {}
        for node in self.nodes:
            path = self.workdir / f"{node}.wg{generation}.key"
            made[node] = (generate(path, force=True), path)
        return made

    def plan(self, spec: str, node: str) -> dict:
        path = self.write(spec, "plan.yaml")
        done = self.netx(node, "plan", str(path), "--json")
        if done.returncode != 0:
            raise RuntimeError(f"plan on {node} failed:\n{done.stderr}")
        return json.loads(done.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netplanx.lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--name", default="lab", help="prefix of every namespace (default: lab)")
    parser.add_argument("--nodes", type=int, default=3, choices=range(1, len(NODE_NAMES) + 1))
    parser.add_argument("--mode", choices=("tunnel", "native", "bgp"), default="tunnel",
                        help="bgp: native routing learned over BGP (BIRD route reflector, gobgpd on each node)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/netx-lab"),
                        help="where the spec and netx's state go (default /tmp/netx-lab)")
    args = parser.parse_args(argv)
    nodes = list(NODE_NAMES[:args.nodes])
    args.dir.mkdir(parents=True, exist_ok=True)
    lab = Lab(args.name, nodes, args.dir)
    if args.action == "down":
        lab.down()
        print(f"removed the namespaces of lab {args.name}")
        return 0
    lab.down()
    lab.up()
    spec = lab_spec(args.name, nodes, args.mode, {f"web-{n[-1]}": n for n in nodes})
    if args.mode == "bgp":
        lab.start_bgp()
    lab.apply(spec)
    if args.mode == "bgp":
        lab.start_route_sync()
    print(f"lab {args.name}: {len(nodes)} nodes ({args.mode}); spec {lab.workdir / 'cluster.yaml'}\n"
          f"  nodes:     {', '.join(lab.netns(n) for n in nodes)} (underlay {lab.underlay})\n"
          f"  endpoints: {', '.join(lab.endpoint_netns(f'web-{n[-1]}') for n in nodes)}\n"
          f"  try:       ip netns exec {lab.endpoint_netns('web-a')} ping 10.244.2.11\n"
          f"  plan:      NETX_STATE_DIR={lab.state_dir} netx plan {lab.workdir / 'cluster.yaml'} "
          f"--node node-b --netns {lab.netns('node-b')}\n"
          f"  remove:    python -m netplanx.lab down --name {args.name}")
    return 0



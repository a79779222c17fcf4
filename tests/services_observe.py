"""Observers of the load balancer for the tests, independent of netx (bpftool, tc, ip), and what the tests
share to set it up: the map folder, a new program build, netx with extra environment, a client outside."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from netplanx.lab.cluster import Lab
from netplanx.system.bpf.loader import PIN_ROOT
from tests.services_traffic import tx_checksum_off


def map_dir(lab: Lab, node: str = "node-a") -> Path:
    return next((PIN_ROOT / lab.netns(node) / "lb").glob("maps-*"))


def bpftool(*args: str) -> list[dict]:
    done = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip() or "[]")


def raw(entry: dict, field: str) -> bytes:
    return bytes(int(b, 16) for b in entry[field])


def u32(data: bytes) -> int:
    return int.from_bytes(data[:4], "little")


def address_of(data: bytes) -> str:
    """The 16-byte address the maps store (IPv4 as ::ffff:a.b.c.d) as text."""
    address = ipaddress.IPv6Address(data[:16])
    return str(address.ipv4_mapped or address)


def address_bytes(text: str) -> list[str]:
    """An address as bpftool's key/value bytes, the way the maps store it."""
    address = ipaddress.ip_address(text)
    packed = address.packed if address.version == 6 else bytes(10) + b"\xff\xff" + address.packed
    return [str(b) for b in packed]


def backend_names(lab: Lab, node: str = "node-a", names: Mapping[str, str] | None = None) -> dict[int, str]:
    """Backend id -> its name in ``names`` (address -> name) or its address, read from the pinned lb_be map with
    bpftool (independent of netx)."""
    names = names or {}
    found = {}
    for entry in bpftool("map", "dump", "pinned", str(map_dir(lab, node) / "lb_be")):
        address = address_of(raw(entry, "value"))
        found[u32(raw(entry, "key"))] = names.get(address, address)
    return found


def service_id(lab: Lab, name: str, family: int = 4, node: str = "node-a") -> int:
    """The id of a service's frontend of one family, from lb_names (name, then the family byte)."""
    entries = bpftool("map", "dump", "pinned", str(map_dir(lab, node) / "lb_names"))
    return next(u32(raw(e, "key")) for e in entries
                if raw(e, "value")[:48].rstrip(b"\0").decode() == name and raw(e, "value")[48] == family)


def maglev_inner(lab: Lab, service: str = "web", family: int = 4, node: str = "node-a") -> int:
    service_id_ = service_id(lab, service, family, node)
    outer = bpftool("map", "dump", "pinned", str(map_dir(lab, node) / "lb_maglev"))
    return next(u32(raw(e, "value")) for e in outer if u32(raw(e, "key")) == service_id_)


def maglev_row(lab: Lab, service: str = "web", family: int = 4, node: str = "node-a",
               names: Mapping[str, str] | None = None) -> list[str]:
    """The service's Maglev row as backend names (``backend_names``), through bpftool: outer map -> inner map
    id -> slots."""
    names = backend_names(lab, node, names)
    slots = sorted((u32(raw(e, "key")), u32(raw(e, "value")))
                   for e in bpftool("map", "dump", "id", str(maglev_inner(lab, service, family, node))))
    return [names.get(backend, "?") for _, backend in slots]


def plan_change(plan: dict, address: str) -> dict:
    return next(c for c in plan["changes"] if c["address"] == address)


def new_build(tmp_path: Path) -> Path:
    """A copy of bpf/ with a changed lb.c: another program version, the same maps."""
    sources = tmp_path / "bpf"
    shutil.copytree(Path(__file__).resolve().parents[1] / "bpf", sources)
    with (sources / "lb.c").open("a") as handle:
        handle.write("/* a new build */\n")
    return sources


def netx_with(lab: Lab, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """netx on node-a with extra environment (NETX_BPF_DIR, NETX_FAILPOINT_STEP)."""
    return subprocess.run([sys.executable, "-m", "netplanx", *args, "--node", "node-a", "--netns",
                           lab.netns("node-a")], capture_output=True, text=True, timeout=300,  # a bcc compile
                          env={**os.environ, "NETX_STATE_DIR": str(lab.state_dir), **env})


def outside_client(lab: Lab) -> str:
    """A host on the underlay (192.0.2.100, 2001:db8::100) that reaches the service networks (10.96.0.0/16,
    fd00:96::/64) through node-a."""
    outside = f"{lab.name}-out"
    subprocess.run(["ip", "netns", "add", outside], check=True)
    subprocess.run(["ip", "-n", outside, "link", "add", "eth0", "type", "veth", "peer", "name", "ul-out", "netns",
                    lab.underlay], check=True)
    subprocess.run(["ip", "-n", lab.underlay, "link", "set", "ul-out", "master", "ul0", "up"], check=True)
    for command in (["addr", "add", "192.0.2.100/24", "dev", "eth0"], ["link", "set", "eth0", "up"],
                    ["addr", "add", "2001:db8::100/64", "dev", "eth0", "nodad"],
                    ["route", "add", "10.96.0.0/16", "via", "192.0.2.11"],
                    ["route", "add", "fd00:96::/64", "via", "2001:db8::11"]):
        subprocess.run(["ip", "-n", outside, *command], check=True)
    tx_checksum_off(outside)  # XDP sees what the wire carries: complete checksums
    return outside

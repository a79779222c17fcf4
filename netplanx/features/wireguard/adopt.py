"""Adoption of the WireGuard devices netx started: the ``wireguardDevices`` section.

Full public keys are written (a spec needs them); a private key never is: the device's entry names the
file netx configured it from, or a file to write the key to when netx has no record of one.
"""

from __future__ import annotations

import re
from typing import Any

from netplanx.engine.feature import Adoption
from netplanx.engine.resource import Resource
from netplanx.features.wireguard.devices import SECTION
from netplanx.features.wireguard.model import DEVICE_MTU

PORT = 51820
NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?")


def adopt_wireguard(adoption: Adoption) -> None:
    devices = sorted(adoption.live("wireguard"), key=lambda r: r.address)
    peers = adoption.live("wgpeer")
    entries = []
    for device in devices:
        mine = sorted((p for p in peers if p.attrs["device"] == device.attrs["name"]), key=lambda r: r.address)
        entries.append(_device(device, mine, adoption))
        adoption.describe([device, *mine])
    if entries:
        adoption.spec[SECTION] = entries


def _device(device: Resource, peers: list[Resource], adoption: Adoption) -> dict[str, Any]:
    a = device.attrs
    key_file = device.meta.get("key_file") or f"/etc/netx/wireguard-{a['name']}.key"
    if not device.meta.get("key_file"):
        adoption.notes.append(f"write the private key of WireGuard device {a['name']} to {key_file}: netx has no "
                              "record of its key file\nand never prints a private key; until then plans refuse to "
                              "run")
    entry: dict[str, Any] = {"name": a["name"]}
    if a["port"] != PORT:
        entry["port"] = a["port"]
    entry.update(publicKey=device.meta["_public_key"], privateKeyFile=key_file)
    if a["mtu"] != DEVICE_MTU:
        entry["mtu"] = a["mtu"]
    if peers:
        entry["peers"] = [_peer(p) for p in peers]
    return entry


def _peer(peer: Resource) -> dict[str, Any]:
    a = peer.attrs
    node = peer.meta.get("node", "")
    entry: dict[str, Any] = {"name": node if NAME.fullmatch(node) else f"peer-{a['key'].removeprefix('wg:')}",
                             "publicKey": peer.meta["_public_key"]}
    if a["endpoint"]:
        entry["endpoint"] = a["endpoint"]
    if a["allowed_ips"]:
        entry["allowedIPs"] = list(a["allowed_ips"])
    if a["keepalive"]:
        entry["keepalive"] = a["keepalive"]
    return entry

"""A host's own WireGuard devices (``wireguardDevices``): their resources and their checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from netplanx.document.problems import Problem
from netplanx.engine.resource import Resource
from netplanx.features.wireguard.types import device_resource, peer_resource

SECTION = "wireguardDevices"


def device_resources(spec: Any) -> list[Resource]:
    resources = []
    for device in spec.wireguard_devices:
        resources.append(device_resource(device.name, port=device.port, public=device.public_key,
                                         private_key_file=device.private_key_file, mtu=device.mtu))
        resources += [peer_resource(device.name, peer.name, public=peer.public_key, endpoint=peer.endpoint,
                                    allowed_ips=[str(n) for n in peer.allowed_ips], keepalive=peer.keepalive)
                      for peer in device.peers]
    return resources


def _first(seen: dict[object, int], key: object, index: int) -> int | None:
    """The index that claimed ``key`` before ``index``, or None (and ``index`` claims it)."""
    if key in seen:
        return seen[key]
    seen[key] = index
    return None


def device_problems(spec: Any) -> Iterator[Problem]:
    names: dict[object, int] = {}
    encryption = getattr(spec.cluster, "encryption", None) if getattr(spec, "cluster", None) else None
    for index, device in enumerate(spec.wireguard_devices):
        at = (SECTION, index)
        if (first := _first(names, device.name, index)) is not None:
            yield Problem((*at, "name"), f"WireGuard device '{device.name}' is declared twice (first at "
                          f"{SECTION}[{first}]; allowed: unique names)")
        if encryption is not None and device.name == encryption.wireguard.device:
            yield Problem((*at, "name"), f"'{device.name}' is the cluster's WireGuard device (allowed: another "
                          "name; cluster.encryption configures that one)")
        peers: dict[object, int] = {}
        keys: dict[object, int] = {device.public_key: -1}
        networks: dict[object, int] = {}
        for number, peer in enumerate(device.peers):
            where = (*at, "peers", number)
            if (first := _first(peers, peer.name, number)) is not None:
                yield Problem((*where, "name"), f"peer name '{peer.name}' is used twice (first at peers[{first}]; "
                              "allowed: unique names)")
            if (first := _first(keys, peer.public_key, number)) is not None:
                owner = "the device's own key" if first < 0 else f"the key of peers[{first}]"
                yield Problem((*where, "publicKey"), f"peer {peer.name} has {owner} (allowed: a key pair for "
                              "each peer)")
            for position, network in enumerate(peer.allowed_ips):
                if (first := _first(networks, network, number)) is not None and first != number:
                    yield Problem((*where, "allowedIPs", position), f"{network} is already allowed for peer "
                                  f"{device.peers[first].name} (allowed: each network to one peer)")

"""Adoption of links and addresses: the ``interfaces`` section that describes them."""

from __future__ import annotations

from typing import Any

from netplanx.engine.feature import Adoption
from netplanx.features.interfaces.kinds.catalog import KINDS

# tunnels the kernel makes in every namespace once their module is loaded (they cannot be deleted): like lo,
# adopted only when they carry addresses
FALLBACKS = {"gre0", "gretap0", "erspan0", "tunl0", "sit0", "ip6tnl0", "ip6gre0", "ip_vti0", "ip6_vti0"}


def adopt_interfaces(adoption: Adoption) -> None:
    addresses: dict[str, list[str]] = {}
    for res in adoption.live("address"):
        addresses.setdefault(res.attrs["dev"], []).append(res.attrs["address"])
    links = adoption.live("link")
    adoption.describe([*adoption.live("address"), *links])
    interfaces = []
    named = set()
    pairs: set[str] = set()  # veth ends already written as the pair's primary
    for res in sorted(links, key=lambda r: r.meta.get("index", 0)):
        attrs = dict(res.attrs)
        name = attrs["name"]
        if (name == "lo" or (name in FALLBACKS and not res.owned)) and not addresses.get(name):
            continue
        if attrs["type"] == "veth" and attrs["peer"]["netns"] is None:
            if name in pairs:  # the other end of a pair already written: configure it as a device
                attrs["type"] = "device"
            pairs.add(attrs["peer"]["name"])
        interfaces.append(_interface(attrs, addresses.get(name, [])))
        named.add(name)
    for dev in sorted(set(addresses) - named):  # the folded peer end of a veth pair
        interfaces.append({"name": dev, "type": "device", "addresses": sorted(addresses[dev])})
    if interfaces:
        adoption.spec["interfaces"] = interfaces


def _interface(a: dict[str, Any], addresses: list[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": a["name"], "type": a["type"]}
    kind = KINDS.get(a["type"])
    if kind is not None and kind.created:
        entry.update(kind.adopt(a))
    if a.get("mtu") and a["mtu"] != (kind.default_mtu if kind is not None else 1500):
        entry["mtu"] = a["mtu"]
    if a["state"] != "up":
        entry["state"] = a["state"]
    if a.get("master"):
        entry["master"] = a["master"]
    if addresses:
        entry["addresses"] = sorted(addresses)
    return entry

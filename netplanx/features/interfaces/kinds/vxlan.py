"""``vxlan``: a VXLAN tunnel device, point to point, multicast, or collect-metadata (``external``)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from netplanx.features.interfaces.kinds.base import IndexOf, LinkKind, LinkReading
from netplanx.system.rtnl import Table, be16, ip, u8, u32

DEFAULT_PORT = 4789


def _text(value: object) -> str | None:
    return None if value is None else str(value)


@functools.cache
def _model() -> type:
    """The spec model (pydantic is imported only when a spec is validated)."""
    from pydantic import Field, model_validator

    from netplanx.document.fields import IP, IfName
    from netplanx.features.interfaces.kinds.common import InterfaceBase

    class Vxlan(InterfaceBase):
        """A VXLAN tunnel device."""

        type: Literal["vxlan"]
        vni: int | None = Field(None, ge=0, le=16777215, description="VXLAN network identifier (0-16777215).")
        external: bool = Field(False, description="Collect metadata: the VNI and remote come from each route's encap.")
        port: int = Field(DEFAULT_PORT, ge=1, le=65535, description="UDP destination port.")
        local: IP | None = Field(None, description="Source address of encapsulated packets.")
        remote: IP | None = Field(None, description="Unicast peer (point to point).")
        group: IP | None = Field(None, description="Multicast group (needs device).")
        device: IfName | None = Field(None, description="Underlay device.")
        learning: bool = Field(True, description="Learn remote MAC addresses from traffic.")
        ttl: int | None = Field(None, ge=1, le=255, description="TTL of encapsulated packets (unset: inherit).")

        @model_validator(mode="after")
        def _endpoints(self) -> Vxlan:
            if self.vni is None and not self.external:
                raise ValueError("a vxlan needs vni (allowed: 0-16777215, or external: true)")
            if self.external and (self.vni is not None or self.remote or self.group):
                raise ValueError("an external vxlan takes no vni, remote or group (allowed: port, local, device)")
            if self.remote and self.group:
                raise ValueError("remote and group are exclusive (allowed: one of them)")
            if self.group and not self.group.is_multicast:
                raise ValueError(f"group {self.group} is not a multicast address (allowed: 224.0.0.0/4 or ff00::/8)")
            if self.group and not self.device:
                raise ValueError("a multicast group needs a device (allowed: set device to the underlay interface)")
            families = {a.version for a in (self.local, self.remote, self.group) if a}
            if len(families) > 1:
                raise ValueError("local, remote and group mix IPv4 and IPv6 (allowed: one family)")
            return self

    return Vxlan


class VxlanKind(LinkKind):
    type = "vxlan"
    fix = "a kernel with CONFIG_VXLAN (tunnel mode)"
    replace_on: ClassVar[frozenset[str]] = frozenset(
        {"type", "vni", "port", "local", "remote", "group", "device", "external"})
    disruption: ClassVar[Mapping[str, str]] = {"learning": "hitless", "ttl": "hitless"}
    lower = "device"
    info_data: ClassVar[Table] = {
        1: ("IFLA_VXLAN_ID", u32), 2: ("IFLA_VXLAN_GROUP", ip), 3: ("IFLA_VXLAN_LINK", u32),
        4: ("IFLA_VXLAN_LOCAL", ip), 5: ("IFLA_VXLAN_TTL", u8), 7: ("IFLA_VXLAN_LEARNING", u8),
        15: ("IFLA_VXLAN_PORT", be16), 16: ("IFLA_VXLAN_GROUP6", ip), 17: ("IFLA_VXLAN_LOCAL6", ip),
        25: ("IFLA_VXLAN_COLLECT_METADATA", u8)}

    def model(self) -> type:
        return _model()

    def compile(self, interface: Any) -> dict[str, Any]:
        return {"vni": interface.vni, "port": interface.port, "local": _text(interface.local),
                "remote": _text(interface.remote), "group": _text(interface.group), "device": interface.device,
                "learning": interface.learning, "ttl": interface.ttl, "external": interface.external}

    def decode(self, message: Any, data: Any, reading: LinkReading) -> dict[str, Any]:
        if data is None:
            return {}
        group = data.get_attr("IFLA_VXLAN_GROUP") or data.get_attr("IFLA_VXLAN_GROUP6")
        multicast = group is not None and ipaddress.ip_address(group).is_multicast
        link = data.get_attr("IFLA_VXLAN_LINK")
        external = bool(data.get_attr("IFLA_VXLAN_COLLECT_METADATA"))
        return {
            "vni": None if external else data.get_attr("IFLA_VXLAN_ID"),
            "external": external,
            "port": data.get_attr("IFLA_VXLAN_PORT"),
            "local": data.get_attr("IFLA_VXLAN_LOCAL") or data.get_attr("IFLA_VXLAN_LOCAL6"),
            "remote": None if multicast else group,
            "group": group if multicast else None,
            "device": reading.names.get(link) if link else None,
            "learning": bool(data.get_attr("IFLA_VXLAN_LEARNING")),
            "ttl": data.get_attr("IFLA_VXLAN_TTL") or None,
        }

    def settings(self, attrs: Mapping[str, Any], index_of: IndexOf) -> dict[str, Any]:
        settings: dict[str, Any] = {"vxlan_port": attrs["port"], "vxlan_learning": int(attrs["learning"]),
                                    "vxlan_ttl": attrs.get("ttl") or 0}
        if attrs.get("external"):
            settings["vxlan_collect_metadata"] = 1
        else:
            settings["vxlan_id"] = attrs["vni"]
        for key in ("local", "remote", "group"):
            if attrs.get(key):
                v6 = ipaddress.ip_address(attrs[key]).version == 6
                field = "local" if key == "local" else "group"
                settings[f"vxlan_{field}{'6' if v6 else ''}"] = attrs[key]
        if attrs.get("device"):
            settings["vxlan_link"] = index_of(attrs["device"])
        return settings

    def update_settings(self, attrs: Mapping[str, Any], changed: set[str], index_of: IndexOf) -> dict[str, Any]:
        if not changed & {"learning", "ttl"}:
            return {}
        return {"vxlan_learning": int(attrs["learning"]), "vxlan_ttl": attrs.get("ttl") or 0}

    def adopt(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = {"external": True} if attrs.get("external") else {"vni": attrs["vni"]}
        if attrs["port"] != DEFAULT_PORT:
            entry["port"] = attrs["port"]
        if attrs.get("mac"):
            entry["mac"] = attrs["mac"]  # remote neighbour entries name it: a re-created device keeps it
        entry.update({k: attrs[k] for k in ("local", "remote", "group", "device", "ttl") if attrs.get(k)})
        if not attrs["learning"]:
            entry["learning"] = False
        return entry


KIND = VxlanKind()

"""``geneve``: a Geneve tunnel device, point to point or collect-metadata (``external``)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from netplanx.features.interfaces.kinds.base import IndexOf, LinkKind, LinkReading
from netplanx.system.rtnl import Table, be16, flag, ip, u8, u32

DEFAULT_PORT = 6081


@functools.cache
def _model() -> type:
    """The spec model (pydantic is imported only when a spec is validated)."""
    from pydantic import Field, model_validator

    from netplanx.document.fields import IP
    from netplanx.features.interfaces.kinds.common import InterfaceBase

    class Geneve(InterfaceBase):
        """A Geneve tunnel device (needs a kernel with Geneve)."""

        type: Literal["geneve"]
        vni: int | None = Field(None, ge=0, le=16777215, description="Virtual network identifier (0-16777215).")
        remote: IP | None = Field(None, description="The peer's address.")
        port: int = Field(DEFAULT_PORT, ge=1, le=65535, description="UDP destination port.")
        external: bool = Field(False, description="Collect metadata: the VNI and remote come from each route's encap.")
        ttl: int | None = Field(None, ge=1, le=255, description="TTL of encapsulated packets (unset: inherit).")

        @model_validator(mode="after")
        def _mode(self) -> Geneve:
            if self.external and (self.vni is not None or self.remote):
                raise ValueError("an external geneve takes no vni or remote (allowed: port)")
            if not self.external and (self.vni is None or self.remote is None):
                raise ValueError("a geneve needs vni and remote (allowed: both, or external: true)")
            return self

    return Geneve


class GeneveKind(LinkKind):
    type = "geneve"
    fix = "a kernel with CONFIG_GENEVE, or tunnel protocol vxlan"
    replace_on: ClassVar[frozenset[str]] = frozenset({"type", "vni", "port", "remote", "external"})
    disruption: ClassVar[Mapping[str, str]] = {"ttl": "hitless"}
    info_data: ClassVar[Table] = {
        1: ("IFLA_GENEVE_ID", u32), 2: ("IFLA_GENEVE_REMOTE", ip), 3: ("IFLA_GENEVE_TTL", u8),
        5: ("IFLA_GENEVE_PORT", be16), 6: ("IFLA_GENEVE_COLLECT_METADATA", flag), 7: ("IFLA_GENEVE_REMOTE6", ip)}

    def model(self) -> type:
        return _model()

    def compile(self, interface: Any) -> dict[str, Any]:
        return {"vni": interface.vni, "remote": None if interface.remote is None else str(interface.remote),
                "port": interface.port, "ttl": interface.ttl, "external": interface.external}

    def decode(self, message: Any, data: Any, reading: LinkReading) -> dict[str, Any]:
        if data is None:
            return {}
        external = bool(data.get_attr("IFLA_GENEVE_COLLECT_METADATA"))
        return {
            "vni": None if external else data.get_attr("IFLA_GENEVE_ID"),
            "port": data.get_attr("IFLA_GENEVE_PORT"),
            "remote": data.get_attr("IFLA_GENEVE_REMOTE") or data.get_attr("IFLA_GENEVE_REMOTE6"),
            "external": external,
            "ttl": data.get_attr("IFLA_GENEVE_TTL") or None,
        }

    def settings(self, attrs: Mapping[str, Any], index_of: IndexOf) -> dict[str, Any]:
        settings = {"geneve_port": attrs["port"], "geneve_ttl": attrs.get("ttl") or 0}
        if attrs.get("external"):
            settings["geneve_collect_metadata"] = True
        else:
            settings.update(geneve_id=attrs["vni"], geneve_remote=attrs["remote"])
        return settings

    def adopt(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = {"external": True} if attrs.get("external") else {"vni": attrs["vni"],
                                                                                   "remote": attrs["remote"]}
        if attrs["port"] != DEFAULT_PORT:
            entry["port"] = attrs["port"]
        if attrs.get("mac"):
            entry["mac"] = attrs["mac"]  # remote neighbour entries name it: a re-created device keeps it
        if attrs.get("ttl"):
            entry["ttl"] = attrs["ttl"]
        return entry


KIND = GeneveKind()

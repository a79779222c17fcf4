"""What the IP tunnel kinds share (gre, gretap, ipip, sit, ip6tnl, ip6gre): endpoints, TTL and a GRE key.

Not a kind itself: each tunnel kind is a module of its own, a TunnelKind with its names and IP version.
The kernel changes a tunnel's endpoints, TTL and key in place (every parameter in one request: one left out
is reset), but not between point to point and any remote: setting or clearing ``remote`` re-creates it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar

from netplanx.features.interfaces.kinds.base import IndexOf, LinkKind, LinkReading
from netplanx.system.rtnl import Table, be16, be32, ip, u8

GRE_KEY = 0x2000  # GRE_KEY in IFLA_GRE_IFLAGS/OFLAGS (big-endian)
IPTUN: Table = {2: ("local", ip), 3: ("remote", ip), 4: ("ttl", u8)}  # IFLA_IPTUN_*: ipip, sit, ip6tnl
GRE: Table = {2: ("iflags", be16), 4: ("ikey", be32), 6: ("local", ip), 7: ("remote", ip), 8: ("ttl", u8)}  # IFLA_GRE_*


@functools.cache
def _bases() -> dict[tuple[int, bool], type]:
    """The models' common parts: (IP version of the endpoints, with a key) -> base model."""
    from pydantic import Field, model_validator

    from netplanx.document.fields import IP4, IP6
    from netplanx.features.interfaces.kinds.common import InterfaceBase

    class Tunnel4(InterfaceBase):
        local: IP4 | None = Field(None, description="Source address of encapsulated packets (IPv4).")
        remote: IP4 | None = Field(None, description="The peer's address (IPv4); unset: any (NBMA).")
        ttl: int | None = Field(None, ge=1, le=255, description="TTL of encapsulated packets (unset: inherit).")

        @model_validator(mode="after")
        def _endpoint(self) -> Any:
            if self.local is None and self.remote is None:
                raise ValueError(f"a {self.type} needs local or remote (allowed: either or both; one with neither "
                                 "is the kernel's fallback device)")
            return self

    class Tunnel6(Tunnel4):
        local: IP6 | None = Field(None, description="Source address of encapsulated packets (IPv6).")
        remote: IP6 | None = Field(None, description="The peer's address (IPv6); unset: any.")

    class Keyed4(Tunnel4):
        key: int | None = Field(None, ge=0, le=4294967295, description="GRE key of both directions (unset: none).")

    class Keyed6(Tunnel6):
        key: int | None = Field(None, ge=0, le=4294967295, description="GRE key of both directions (unset: none).")

    return {(4, False): Tunnel4, (6, False): Tunnel6, (4, True): Keyed4, (6, True): Keyed6}


@functools.cache
def tunnel_model(name: str, kind: str, version: int, keyed: bool, doc: str) -> type:
    """The spec model of tunnel kind ``kind``: class ``name`` with endpoints of IP ``version``."""
    from typing import Literal

    from pydantic import create_model

    return create_model(name, __base__=_bases()[(version, keyed)], __doc__=doc, type=(Literal[kind], ...))


class TunnelKind(LinkKind):
    """An IP tunnel; ``prefix`` names its pyroute2 attributes, ``keyed`` says whether it has a GRE key. A kind's
    docstring is its spec model's."""

    prefix: ClassVar[str] = ""
    version: ClassVar[int] = 4  # the IP version of its endpoints
    keyed: ClassVar[bool] = False
    disruption: ClassVar[Mapping[str, str]] = {"ttl": "hitless", "local": "re-pointed", "remote": "re-pointed",
                                               "key": "re-pointed"}

    def model(self) -> type:
        return tunnel_model(type(self).__name__.removesuffix("Kind"), self.type, self.version, self.keyed,
                            self.__doc__ or "")

    def compile(self, interface: Any) -> dict[str, Any]:
        attrs = {"local": _text(interface.local), "remote": _text(interface.remote), "ttl": interface.ttl}
        if self.keyed:
            attrs["key"] = interface.key
        return attrs

    def decode(self, message: Any, data: Any, reading: LinkReading) -> dict[str, Any]:
        if data is None:
            return {}
        attrs = {"local": _address(data.get_attr("local")), "remote": _address(data.get_attr("remote")),
                 "ttl": data.get_attr("ttl") or None}
        if self.keyed:
            attrs["key"] = data.get_attr("ikey") if (data.get_attr("iflags") or 0) & GRE_KEY else None
        return attrs

    def settings(self, attrs: Mapping[str, Any], index_of: IndexOf) -> dict[str, Any]:
        settings = {f"{self.prefix}_{key}": attrs[key] for key in ("local", "remote") if attrs.get(key)}
        settings[f"{self.prefix}_ttl"] = attrs.get("ttl") or 0
        if attrs.get("key") is not None:
            flags = self.key_flags()
            settings.update({f"{self.prefix}_ikey": attrs["key"], f"{self.prefix}_okey": attrs["key"],
                             f"{self.prefix}_iflags": flags, f"{self.prefix}_oflags": flags})
        return settings

    def key_flags(self) -> int:
        """IFLA_GRE_IFLAGS/OFLAGS with GRE_KEY, as pyroute2 encodes this kind's flags."""
        return GRE_KEY

    def update_settings(self, attrs: Mapping[str, Any], changed: set[str], index_of: IndexOf) -> dict[str, Any]:
        return self.settings(attrs, index_of) if changed & {"local", "remote", "ttl", "key"} else {}

    def replaces(self, desired: Mapping[str, Any], live: Mapping[str, Any], changed: Any) -> list[str]:
        forced = super().replaces(desired, live, changed)
        if "remote" in changed and (desired.get("remote") is None) != (live.get("remote") is None):
            forced.append("remote")  # point to point <-> any remote: the kernel refuses it in place
        return forced

    def adopt(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return {key: attrs[key] for key in ("local", "remote", "ttl", "key") if attrs.get(key) is not None}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _address(value: str | None) -> str | None:
    """An endpoint as read: the kernel reports 'any' as 0.0.0.0 or ::."""
    return None if value in (None, "0.0.0.0", "::") else value

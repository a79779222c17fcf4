"""The spec fields every interface has, whatever its kind."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from netplanx.document.fields import IfName, InterfaceAddress, Mac, SpecModel


class InterfaceBase(SpecModel):
    name: IfName
    mtu: int | None = Field(None, ge=68, le=65535, description="MTU in bytes (68-65535); unset leaves it alone.")
    state: Literal["up", "down"] = Field("up", description="Administrative state.")
    mac: Mac | None = Field(None, description="MAC address; unset leaves it alone.")
    master: IfName | None = Field(None, description="Bridge this interface is enslaved to.")
    addresses: list[InterfaceAddress] = Field(default_factory=list, description="IPv4/IPv6 addresses with prefix.")

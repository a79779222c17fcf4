"""``device``: an interface that exists already (a NIC, lo): configured, never created or deleted."""

from __future__ import annotations

from typing import ClassVar, Literal

from netplanx.features.interfaces.kinds.base import InterfaceBase, LinkKind


class Device(InterfaceBase):
    """An interface netx configures but does not create or delete (a NIC, lo, ...)."""

    type: Literal["device"]


class DeviceKind(LinkKind):
    type = "device"
    model = Device
    created = False
    replace_on: ClassVar[frozenset[str]] = frozenset()

    def missing(self) -> str | None:
        return None


KIND = DeviceKind()

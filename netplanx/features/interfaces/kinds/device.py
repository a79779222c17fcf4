"""``device``: an interface that exists already (a NIC, lo): configured, never created or deleted."""

from __future__ import annotations

import functools
from typing import ClassVar, Literal

from netplanx.features.interfaces.kinds.base import LinkKind


@functools.cache
def _model() -> type:
    """The spec model (pydantic is imported only when a spec is validated)."""
    from netplanx.features.interfaces.kinds.common import InterfaceBase

    class Device(InterfaceBase):
        """An interface netx configures but does not create or delete (a NIC, lo, ...)."""

        type: Literal["device"]

    return Device


class DeviceKind(LinkKind):
    type = "device"
    created = False
    replace_on: ClassVar[frozenset[str]] = frozenset()

    def model(self) -> type:
        return _model()

    def missing(self) -> str | None:
        return None


KIND = DeviceKind()

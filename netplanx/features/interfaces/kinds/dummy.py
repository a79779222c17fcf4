"""``dummy``: a link that drops what it is sent (addresses for services, a router id, a test's NIC)."""

from __future__ import annotations

import functools
from typing import Literal

from netplanx.features.interfaces.kinds.base import LinkKind


@functools.cache
def _model() -> type:
    """The spec model (pydantic is imported only when a spec is validated)."""
    from netplanx.features.interfaces.kinds.common import InterfaceBase

    class Dummy(InterfaceBase):
        """A dummy link (needs a kernel with dummy links)."""

        type: Literal["dummy"]

    return Dummy


class DummyKind(LinkKind):
    type = "dummy"
    config = "CONFIG_DUMMY"

    def model(self) -> type:
        return _model()


KIND = DummyKind()

"""netx needs root (CAP_NET_ADMIN) for everything that reads or changes network state."""

from __future__ import annotations

import os

from netplanx.errors import NetxError


def require_root() -> None:
    if os.geteuid() != 0:
        raise NetxError("netx needs root (CAP_NET_ADMIN) to read and change network state; run it with sudo")

"""pyroute2 for what netx writes (its import costs ~100 ms, so reading never needs it): an IPRoute whose
calls raise netx's NetlinkError, an OSError with the kernel's errno, like the lean socket's."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from netplanx.system.netlink import NetlinkError


class IPRoute:
    """pyroute2's IPRoute, opened in the namespace the process is in when it is made."""

    def __init__(self) -> None:
        from pyroute2 import IPRoute as Pyroute2IPRoute

        self._ipr = Pyroute2IPRoute()

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._ipr, name)
        return _converted(found) if callable(found) else found

    def close(self) -> None:
        self._ipr.close()


def _converted(call: Callable[..., Any]) -> Callable[..., Any]:
    from pyroute2.netlink.exceptions import NetlinkError as Pyroute2Error

    @functools.wraps(call)
    def calling(*args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except Pyroute2Error as exc:
            raise NetlinkError(exc.code, str(exc)) from None
    return calling

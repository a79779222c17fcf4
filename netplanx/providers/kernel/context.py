"""What the kernel resource types share: sockets opened in the target namespace, and netx's records."""

from __future__ import annotations

from functools import cached_property

from pyroute2 import IPRoute

from netplanx.engine.state import StateStore
from netplanx.providers.kernel import netns
from netplanx.providers.kernel.netlink import NetlinkSocket


class KernelContext:
    """Sockets bound to the namespace the process was in when this context was created."""

    def __init__(self, store: StateStore):
        self.store = store
        self.peer_sockets: dict[str, IPRoute] = {}

    @cached_property
    def nl(self) -> NetlinkSocket:
        return NetlinkSocket()

    @cached_property
    def ipr(self) -> IPRoute:
        return IPRoute()

    def ipr_in(self, name: str) -> IPRoute:
        """An IPRoute socket bound to another namespace."""
        if name not in self.peer_sockets:
            self.peer_sockets[name] = netns.call_inside(name, IPRoute)
        return self.peer_sockets[name]

    def forget(self, name: str) -> None:
        """Drop the socket of a namespace that is being deleted (a new one of that name is another)."""
        sock = self.peer_sockets.pop(name, None)
        if sock is not None:
            sock.close()

    def link_names(self) -> dict[int, str]:
        return self.nl.link_names()

    @property
    def writes(self) -> int:
        """Netlink write requests sent so far (pyroute2 writes are counted by the types)."""
        return self.nl.writes if "nl" in self.__dict__ else 0

    def count_write(self, number: int = 1) -> None:
        self.nl.writes += number

    def close(self) -> None:
        for sock in (self.__dict__.get("ipr"), *self.peer_sockets.values()):
            if sock is not None:
                sock.close()
        if "nl" in self.__dict__:
            self.nl.close()

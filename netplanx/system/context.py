"""What the kernel resource types share: sockets opened in the target namespace, and netx's records."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

from netplanx.system import netns
from netplanx.system.bpf.tc import TcHooks
from netplanx.system.netlink import NetlinkSocket
from netplanx.system.pyroute import IPRoute
from netplanx.system.state import StateStore

LinkClaim = Callable[[Any], tuple[set[str], set[str]]]


class KernelContext:
    """Sockets bound to the namespace the process was in when this context was created."""

    def __init__(self, store: StateStore):
        self.store = store
        self.peer_sockets: dict[str, IPRoute] = {}
        self.peer_lean: dict[str, NetlinkSocket] = {}
        self._claims: list[LinkClaim] = []
        self._closers: list[Callable[[], None]] = []
        self._snapshot = False
        self._names: dict[int, str] | None = None

    @property
    def bpf_programs(self) -> Path:
        """The host's records of compiled eBPF programs (system/bpf/programs.py): one compile per version, for
        every namespace that shares this state directory."""
        return self.store.root / "bpf-programs"

    @property
    def scope(self) -> str:
        """netx's name for the namespace (its records and BPF pins are kept under it)."""
        return self.store.scope

    def claim_links(self, claim: LinkClaim) -> None:
        """Register a feature's links (names and kinds it manages itself): the link reader leaves them out."""
        self._claims.append(claim)

    def claimed_links(self, query: Any) -> tuple[set[str], set[str]]:
        """Names and kinds of the links other resource types manage, for this read."""
        names: set[str] = set()
        kinds: set[str] = set()
        for claim in self._claims:
            more_names, more_kinds = claim(query)
            names |= more_names
            kinds |= more_kinds
        return names, kinds

    def on_close(self, closer: Callable[[], None]) -> None:
        """Run ``closer`` when the session closes (a feature's own connections)."""
        self._closers.append(closer)

    @cached_property
    def nl(self) -> NetlinkSocket:
        return NetlinkSocket()

    @cached_property
    def ipr(self) -> IPRoute:
        """pyroute2, for writes (reads go through ``nl``)."""
        return IPRoute()

    @cached_property
    def tc(self) -> TcHooks:
        """The clsact hooks of this namespace's devices (BPF filters)."""
        return TcHooks(self.nl, lambda: self.ipr)

    def ipr_in(self, name: str) -> IPRoute:
        """pyroute2 bound to another namespace (for writes there)."""
        if name not in self.peer_sockets:
            self.peer_sockets[name] = netns.call_inside(name, IPRoute)
        return self.peer_sockets[name]

    def nl_in(self, name: str) -> NetlinkSocket:
        """The lean socket bound to another namespace (for reads there)."""
        if name not in self.peer_lean:
            self.peer_lean[name] = netns.call_inside(name, NetlinkSocket)
        return self.peer_lean[name]

    def index_of(self, name: str) -> int | None:
        """The index of link ``name`` in this namespace (the process is in it), None when there is none."""
        try:
            return socket.if_nametoindex(name)
        except OSError:
            return None

    def forget(self, name: str) -> None:
        """Drop the sockets of a namespace that is being deleted (a new one of that name is another)."""
        for pool in (self.peer_sockets, self.peer_lean):
            sock = pool.pop(name, None)
            if sock is not None:
                sock.close()

    def link_names(self) -> dict[int, str]:
        """Index to name of every link (within ``snapshot``, one dump serves every reader)."""
        if self._names is not None:
            return self._names
        names = self.nl.link_names()
        if self._snapshot:
            self._names = names
        return names

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads of one view of the namespace (a plan's, a verification's): they share the link names."""
        self._snapshot = True
        try:
            yield
        finally:
            self._snapshot, self._names = False, None

    @property
    def writes(self) -> int:
        """Netlink write requests sent so far (pyroute2 writes are counted by the types)."""
        return self.nl.writes if "nl" in self.__dict__ else 0

    def count_write(self, number: int = 1) -> None:
        self.nl.writes += number

    def close(self) -> None:
        for closer in self._closers:
            closer()
        for sock in (self.__dict__.get("ipr"), *self.peer_sockets.values(), *self.peer_lean.values()):
            if sock is not None:
                sock.close()
        if "nl" in self.__dict__:
            self.nl.close()

"""What every link kind has: the model fields all interfaces share, and the LinkKind contract.

A link kind is one module in this folder: its spec model (a subclass of InterfaceBase, in ``common.py``,
with a ``type`` literal; built on first use, so reading and writing links never imports pydantic) and a
LinkKind object that says how netx compiles, reads, creates, changes and adopts links of
that kind, which attributes force a replacement, what an in-place change disrupts, and how to probe the
kernel for it. ``kinds/catalog.py`` lists them in the order the spec documents them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from netplanx.document.problems import Problem
from netplanx.system.netlink import attr
from netplanx.system.probes import link_kind_error
from netplanx.system.rtnl import (
    IFLA_ADDRESS,
    IFLA_IFNAME,
    IFLA_INFO_DATA,
    IFLA_INFO_KIND,
    IFLA_LINKINFO,
    IFLA_MTU,
    Table,
    asciiz,
    link_body,
)

IndexOf = Callable[[str], int]


class LinkReading:
    """What decoding a live link may need besides its own message: the names and kinds of the namespace's
    links, and the peers of veths in other namespaces (resolved by the reader)."""

    def __init__(self, names: Mapping[int, str], peer: Callable[[Any], dict[str, Any]],
                 kinds: Mapping[int, str] | None = None):
        self.names = names
        self.peer = peer
        self.kinds = kinds or {}


class LinkKind:
    """One kind of link. Override what differs from a plain link of this ``type``."""

    type: ClassVar[str] = ""
    created: ClassVar[bool] = True  # netx creates and deletes links of this kind (a device: never)
    replace_on: ClassVar[frozenset[str]] = frozenset({"type"})
    disruption: ClassVar[Mapping[str, str]] = {}  # attribute -> what changing it in place disrupts
    lower: ClassVar[str] = ""  # the attribute naming the link this one sits on ("parent", "device")
    info_data: ClassVar[Table] = {}  # how to decode its IFLA_INFO_DATA: attribute type -> (name, decoder)
    batched: ClassVar[bool] = False  # created in batches on the lean socket (creation_data); else with pyroute2
    required: ClassVar[bool] = False  # netx doctor: a kernel without it cannot run netx at all
    config: ClassVar[str] = ""  # the kernel option that provides it (default: CONFIG_ and the type)
    fix: ClassVar[str] = ""  # netx doctor: what to do when the kernel lacks it (default: the kernel option)
    down_to_change: ClassVar[frozenset[str]] = frozenset()  # attributes the kernel changes only while it is down
    takes_members: ClassVar[bool] = False  # links may join it with ``master``
    members_down: ClassVar[bool] = False  # a member joins only while it is down (netx takes it down first)
    cycles_members: ClassVar[bool] = False  # joining or leaving takes a member down and up (its routes go)
    default_mtu: ClassVar[int] = 1500  # what the kernel gives a new one (adoption leaves it out)

    def kernel_option(self) -> str:
        return self.config or f"CONFIG_{self.type.upper()}"

    def doctor_fix(self) -> str:
        return self.fix or f"a kernel with {self.kernel_option()}"

    def model(self) -> type:
        """The spec model of an entry of this kind."""
        raise NotImplementedError

    def missing(self) -> str | None:
        """Why this kernel cannot create links of this kind (None: it can)."""
        return link_kind_error(self.type, self.kernel_option())

    def replaces(self, desired: Mapping[str, Any], live: Mapping[str, Any], changed: Iterable[str]) -> list[str]:
        """The changed attributes that force a replacement (the kernel cannot change them in place)."""
        return [key for key in changed if key in self.replace_on]

    def creation_request(self, attrs: Mapping[str, Any], netns_fd: Callable[[str], int], index: int = 0) -> bytes:
        """The RTM_NEWLINK body that creates a link of a batched kind: name, MTU, MAC, kind and its data
        (``index``: the ifindex it gets, 0 for the kernel's choice)."""
        fields = {IFLA_IFNAME: asciiz(attrs["name"])}
        if attrs.get("mtu"):
            fields[IFLA_MTU] = struct.pack("=I", attrs["mtu"])
        if attrs.get("mac"):
            fields[IFLA_ADDRESS] = bytes.fromhex(attrs["mac"].replace(":", ""))
        data = self.creation_data(attrs, netns_fd)
        fields[IFLA_LINKINFO] = attr(IFLA_INFO_KIND, self.type.encode()) + attr(IFLA_INFO_DATA, data)
        return link_body(fields, index)

    def compile(self, interface: Any) -> dict[str, Any]:
        """The kind's own attributes of a spec entry."""
        return {}

    def decode(self, message: Any, data: Any, reading: LinkReading) -> dict[str, Any]:
        """The kind's own attributes of a live link (``data``: its IFLA_INFO_DATA, if any)."""
        return {}

    def settings(self, attrs: Mapping[str, Any], index_of: IndexOf) -> dict[str, Any]:
        """pyroute2 arguments that create the link (besides name, kind, mtu and address)."""
        return {}

    def creation_data(self, attrs: Mapping[str, Any], netns_fd: Callable[[str], int]) -> bytes:
        """The ``IFLA_INFO_DATA`` payload that creates the link, for a kind created in batches on the lean
        socket (``batched``; ``netns_fd``: an open descriptor of a named namespace)."""
        raise NotImplementedError

    def update_settings(self, attrs: Mapping[str, Any], changed: set[str], index_of: IndexOf) -> dict[str, Any]:
        """pyroute2 arguments that change ``changed`` kind attributes in place (none by default)."""
        return {}

    def adopt(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """The kind's own keys of the spec entry that describes a live link."""
        return {}

    def check_member(self, member: Any, index: int, master: Any) -> Iterable[Problem]:
        """Problems of ``member`` (entry ``index``) joining ``master``, an entry of this kind (``takes_members``)."""
        return ()

    def check_members(self, interface: Any, index: int, members: list[Any]) -> Iterable[Problem]:
        """Problems of entry ``index``, of this kind, that depend on the entries whose master it is."""
        return ()

    def check(self, interface: Any, index: int, declared: set[str]) -> Iterable[Problem]:
        """Problems of one entry that need the other names of the namespace (its lower device)."""
        lower = getattr(interface, self.lower, None) if self.lower else None
        if lower is not None and lower not in declared:
            yield Problem(("interfaces", index, self.lower), f"{self.lower} '{lower}' is not declared (allowed: "
                          f"an interface in interfaces: {names_text(declared)})")


def names_text(names: Iterable[str]) -> str:
    listed = sorted(set(names))
    return ", ".join(listed) if listed else "none declared"

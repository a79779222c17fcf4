"""``vrf``: a VRF, an L3 master device with its own routing table; links join it with ``master``."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal

from netplanx.document.problems import Problem
from netplanx.features.interfaces.kinds.base import IndexOf, LinkKind, LinkReading
from netplanx.system.rtnl import Table, u32

RESERVED_TABLES = (253, 254, 255)  # default, main, local


@functools.cache
def _model() -> type:
    """The spec model (pydantic is imported only when a spec is validated)."""
    from pydantic import Field, field_validator

    from netplanx.features.interfaces.kinds.common import InterfaceBase

    class Vrf(InterfaceBase):
        """A VRF: links whose master it is route through its own table (needs a kernel with VRFs)."""

        type: Literal["vrf"]
        table: int = Field(ge=1, le=4294967295, description="Its routing table (1-4294967295 but 253-255).")

        @field_validator("table")
        @classmethod
        def _own_table(cls, table: int) -> int:
            if table in RESERVED_TABLES:
                raise ValueError(f"table {table} is the kernel's default, main or local table (allowed: another "
                                 "number in 1-4294967295)")
            return table

    return Vrf


class VrfKind(LinkKind):
    type = "vrf"
    config = "CONFIG_NET_VRF"
    replace_on: ClassVar[frozenset[str]] = frozenset({"type", "table"})
    info_data: ClassVar[Table] = {1: ("IFLA_VRF_TABLE", u32)}
    takes_members = True
    cycles_members = True
    default_mtu = 65575  # above any member's: the members' own MTUs apply

    def model(self) -> type:
        return _model()

    def compile(self, interface: Any) -> dict[str, Any]:
        return {"table": interface.table}

    def decode(self, message: Any, data: Any, reading: LinkReading) -> dict[str, Any]:
        return {"table": data.get_attr("IFLA_VRF_TABLE") if data is not None else None}

    def settings(self, attrs: Mapping[str, Any], index_of: IndexOf) -> dict[str, Any]:
        return {"vrf_table": attrs["table"]}

    def adopt(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return {"table": attrs["table"]}

    def check_member(self, member: Any, index: int, master: Any) -> Iterable[Problem]:
        if member.type == "vrf":
            yield Problem(("interfaces", index, "master"), f"a vrf cannot join vrf '{master.name}' (allowed: a "
                          "link that is not a vrf)")


KIND = VrfKind()

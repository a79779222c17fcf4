"""``bond``: links bonded into one (active-backup, LACP, ...); members join it with ``master``.

A member must be down to join a bond: netx takes it down, enslaves it, and brings it up again. The bond
chooses its ``primary`` among its members: it is set when that member joins (the member may be created in
the same plan, after the bond).
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal

from netplanx.document.problems import Problem
from netplanx.features.interfaces.kinds.base import IndexOf, LinkKind, LinkReading, names_text
from netplanx.system.netlink import NetlinkError
from netplanx.system.rtnl import Table, u32

MODES = ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb")
HASH_POLICIES = ("layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4", "vlan+srcmac")
LACP_RATES = ("slow", "fast")
WITH_PRIMARY = ("active-backup", "balance-tlb", "balance-alb")  # the modes that have one active member
WITH_HASH = ("balance-xor", "802.3ad", "balance-tlb", "balance-alb")  # the modes that hash flows to members
DEFAULT_MIIMON = 100
MEMBER_KINDS = ("device", "veth", "dummy", "gretap")  # Ethernet links


def _name(names: tuple[str, ...]) -> Any:
    return lambda data: names[data[0]] if data[0] < len(names) else str(data[0])


@functools.cache
def _model() -> type:
    """The spec model (pydantic is imported only when a spec is validated)."""
    from pydantic import Field, model_validator

    from netplanx.document.fields import IfName
    from netplanx.features.interfaces.kinds.common import InterfaceBase

    class Bond(InterfaceBase):
        """A bond of member links (needs a kernel with bonding)."""

        type: Literal["bond"]
        mode: Literal[MODES] = Field("balance-rr", description="Bonding mode (default balance-rr, the kernel's).")
        miimon: int = Field(DEFAULT_MIIMON, ge=0, le=2147483647,
                            description="Link monitoring interval in ms (0: none; default 100).")
        lacp_rate: Literal[LACP_RATES] | None = Field(
            None, alias="lacpRate", description="802.3ad: how often the partner sends LACPDUs (default slow).")
        xmit_hash_policy: Literal[HASH_POLICIES] | None = Field(
            None, alias="xmitHashPolicy", description="How flows are spread over members (default layer2).")
        primary: IfName | None = Field(None, description="The member preferred as active (active-backup, "
                                                         "balance-tlb, balance-alb).")

        @model_validator(mode="after")
        def _mode_options(self) -> Bond:
            if self.lacp_rate is not None and self.mode != "802.3ad":
                raise ValueError(f"lacpRate applies to mode 802.3ad only (allowed: omit it in mode {self.mode})")
            if self.xmit_hash_policy is not None and self.mode not in WITH_HASH:
                raise ValueError(f"xmitHashPolicy applies to modes {', '.join(WITH_HASH)} (allowed: omit it in "
                                 f"mode {self.mode})")
            if self.primary is not None and self.mode not in WITH_PRIMARY:
                raise ValueError(f"primary applies to modes {', '.join(WITH_PRIMARY)} (allowed: omit it in mode "
                                 f"{self.mode})")
            return self

    return Bond


class BondKind(LinkKind):
    type = "bond"
    config = "CONFIG_BONDING"
    replace_on: ClassVar[frozenset[str]] = frozenset({"type", "mode"})
    disruption: ClassVar[Mapping[str, str]] = {"miimon": "hitless", "xmit_hash_policy": "hitless",
                                               "primary": "hitless", "lacp_rate": "link down"}
    down_to_change: ClassVar[frozenset[str]] = frozenset({"lacp_rate"})
    info_data: ClassVar[Table] = {
        1: ("IFLA_BOND_MODE", _name(MODES)), 3: ("IFLA_BOND_MIIMON", u32), 11: ("IFLA_BOND_PRIMARY", u32),
        14: ("IFLA_BOND_XMIT_HASH_POLICY", _name(HASH_POLICIES)), 21: ("IFLA_BOND_AD_LACP_RATE", _name(LACP_RATES))}
    takes_members = True
    members_down = True
    cycles_members = True

    def model(self) -> type:
        return _model()

    def compile(self, interface: Any) -> dict[str, Any]:
        attrs: dict[str, Any] = {"mode": interface.mode, "miimon": interface.miimon}
        if interface.mode == "802.3ad":
            attrs["lacp_rate"] = interface.lacp_rate or "slow"
        if interface.mode in WITH_HASH:
            attrs["xmit_hash_policy"] = interface.xmit_hash_policy or "layer2"
        if interface.mode in WITH_PRIMARY:
            attrs["primary"] = interface.primary
        return attrs

    def decode(self, message: Any, data: Any, reading: LinkReading) -> dict[str, Any]:
        if data is None:
            return {}
        primary = data.get_attr("IFLA_BOND_PRIMARY")
        return {"mode": data.get_attr("IFLA_BOND_MODE"), "miimon": data.get_attr("IFLA_BOND_MIIMON"),
                "lacp_rate": data.get_attr("IFLA_BOND_AD_LACP_RATE"),
                "xmit_hash_policy": data.get_attr("IFLA_BOND_XMIT_HASH_POLICY"),
                "primary": reading.names.get(primary) if primary else None}

    def settings(self, attrs: Mapping[str, Any], index_of: IndexOf) -> dict[str, Any]:
        return {"bond_mode": MODES.index(attrs["mode"]),
                **self.update_settings(attrs, {"miimon", "lacp_rate", "xmit_hash_policy", "primary"}, index_of)}

    def update_settings(self, attrs: Mapping[str, Any], changed: set[str], index_of: IndexOf) -> dict[str, Any]:
        """Only what the bond's mode has (the kernel refuses an LACP rate in another mode, even the default)."""
        settings: dict[str, Any] = {}
        mode = attrs["mode"]
        if "miimon" in changed:
            settings["bond_miimon"] = attrs["miimon"]
        if "lacp_rate" in changed and attrs.get("lacp_rate") and mode == "802.3ad":
            settings["bond_ad_lacp_rate"] = LACP_RATES.index(attrs["lacp_rate"])
        if "xmit_hash_policy" in changed and attrs.get("xmit_hash_policy") and mode in WITH_HASH:
            settings["bond_xmit_hash_policy"] = HASH_POLICIES.index(attrs["xmit_hash_policy"])
        if "primary" in changed and attrs.get("primary") and mode in WITH_PRIMARY:
            try:  # a member made in the same plan sets it when it joins
                settings["bond_primary"] = index_of(attrs["primary"])
            except NetlinkError as exc:
                if exc.errno != errno.ENODEV:
                    raise
        return settings

    def adopt(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = {"mode": attrs["mode"]} if attrs["mode"] != "balance-rr" else {}
        if attrs["miimon"] != DEFAULT_MIIMON:
            entry["miimon"] = attrs["miimon"]
        if attrs["mode"] == "802.3ad" and attrs.get("lacp_rate") != "slow":
            entry["lacpRate"] = attrs["lacp_rate"]
        if attrs["mode"] in WITH_HASH and attrs.get("xmit_hash_policy") != "layer2":
            entry["xmitHashPolicy"] = attrs["xmit_hash_policy"]
        if attrs["mode"] in WITH_PRIMARY and attrs.get("primary"):
            entry["primary"] = attrs["primary"]
        return entry

    def check_member(self, member: Any, index: int, master: Any) -> Iterable[Problem]:
        at = ("interfaces", index)
        if member.type not in MEMBER_KINDS:
            yield Problem((*at, "master"), f"a {member.type} cannot join bond '{master.name}' (allowed: an Ethernet "
                          f"link: {', '.join(MEMBER_KINDS)})")
        if member.addresses:
            yield Problem((*at, "addresses"), f"a member of bond '{master.name}' carries no addresses (allowed: put "
                          f"them on the bond)")
        if member.mtu is not None and member.mtu != master.mtu:
            yield Problem((*at, "mtu"), f"a member's mtu follows its bond '{master.name}' (allowed: "
                          f"{master.mtu if master.mtu is not None else 'none'}, or set mtu on the bond)")

    def check_members(self, interface: Any, index: int, members: list[Any]) -> Iterable[Problem]:
        names = [member.name for member in members]
        if interface.primary is not None and interface.primary not in names:
            yield Problem(("interfaces", index, "primary"), f"primary '{interface.primary}' is not a member of bond "
                          f"'{interface.name}' (allowed: a link whose master is {interface.name}: "
                          f"{names_text(names)})")


KIND = BondKind()

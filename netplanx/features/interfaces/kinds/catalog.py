"""The link kinds, in the order the spec documents them (a new kind: one module in this folder, one line below)."""

from __future__ import annotations

from netplanx.features.interfaces.kinds import (
    bond,
    bridge,
    device,
    dummy,
    geneve,
    gre,
    gretap,
    ip6gre,
    ip6tnl,
    ipip,
    ipvlan,
    macvlan,
    sit,
    veth,
    vlan,
    vrf,
    vxlan,
)
from netplanx.features.interfaces.kinds.base import LinkKind

KINDS: dict[str, LinkKind] = {k.type: k for k in (
    device.KIND, veth.KIND, bridge.KIND, bond.KIND, vlan.KIND, vrf.KIND, dummy.KIND, macvlan.KIND, ipvlan.KIND,
    vxlan.KIND, geneve.KIND, gre.KIND, gretap.KIND, ipip.KIND, sit.KIND, ip6tnl.KIND, ip6gre.KIND)}

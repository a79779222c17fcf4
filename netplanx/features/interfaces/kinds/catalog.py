"""The link kinds, in the order the spec documents them (a new kind: one module in this folder, one line below)."""

from __future__ import annotations

from netplanx.features.interfaces.kinds import bridge, device, geneve, macvlan, veth, vxlan
from netplanx.features.interfaces.kinds.base import LinkKind

KINDS: dict[str, LinkKind] = {k.type: k for k in (device.KIND, veth.KIND, bridge.KIND, vxlan.KIND, geneve.KIND,
                                                   macvlan.KIND)}

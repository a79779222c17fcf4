"""Links (veth, bridge, vxlan, geneve, macvlan, and existing devices) through pyroute2.

Links netx creates carry the alias ``netx``; a link without it is never deleted. ``device`` links are
configured (mtu, state, mac, master) but never created or deleted.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from netplanx.engine.resource import Dependency, Resource
from netplanx.providers.kernel import netns
from netplanx.providers.kernel.base import StepwiseType
from netplanx.providers.kernel.features import link_kind_error
from netplanx.providers.kernel.names import NETX_ALIAS

CREATED_KINDS = ("veth", "bridge", "vxlan", "geneve", "macvlan")
IFF_UP = 0x1
REPLACE_ON = {
    "veth": {"type", "peer"},
    "bridge": {"type"},
    "vxlan": {"type", "vni", "port", "local", "remote", "group", "device", "external"},
    "geneve": {"type", "vni", "port", "remote", "external"},
    "macvlan": {"type", "parent"},
}
ATTR_DISRUPTION = {"state": "link down", "mac": "link flap", "master": "link flap", "mtu": "hitless",
                   "stp": "link flap", "mode": "link flap", "learning": "hitless", "ttl": "hitless"}


def link_address(name: str) -> str:
    return f"link.{name}"


class LinkType(StepwiseType):
    kind = "link"
    rank = 0
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless", "replace": "traffic loss", "delete": "traffic loss",
    }

    def forces_replacement(self, desired: Resource, live: Resource, changed: Sequence[str]) -> list[str]:
        if desired.attrs.get("type") is None:  # a device: nothing forces a replacement
            return []
        return [key for key in changed if key in REPLACE_ON.get(desired.attrs["type"], {"type"})]

    def dependencies(self, resource: Resource) -> list[Dependency]:
        a = resource.attrs
        deps = []
        if a.get("master"):
            deps.append(Dependency(link_address(a["master"]), lifetime=False, attr="master"))
        lower = a.get("device") if a.get("type") == "vxlan" else a.get("parent")
        if lower:
            deps.append(Dependency(link_address(lower)))
        peer_ns = (a.get("peer") or {}).get("netns")
        if peer_ns:
            deps.append(Dependency(f"netns.{peer_ns}"))
        return deps

    def disruption(self, action: str, changed: Sequence[str], before: Resource | None,
                   after: Resource | None) -> str:
        if action != "update":
            return self.disruption_of[action]
        if "state" in changed and after is not None and after.attrs.get("state") == "up":
            return "hitless"
        labels = {ATTR_DISRUPTION.get(key, "link flap") for key in changed}
        for label in ("link down", "link flap"):
            if label in labels:
                return label
        return "hitless"

    def preflight(self, desired: Sequence[Resource], live: Mapping[str, Resource]) -> list[str]:
        problems = []
        coming = {a for r in desired for a in r.meta.get("requires", ())}
        for res in desired:
            a = res.attrs
            if "type" not in a and res.address not in live and not res.meta.get("requires"):
                problems.append(f"{res.address}: device '{a['name']}' does not exist (type device configures an "
                                "existing interface; use veth, bridge, vxlan or macvlan to create one)")
            peer_ns = (a.get("peer") or {}).get("netns")
            if peer_ns and not netns.exists(peer_ns) and f"netns.{peer_ns}" not in coming:
                problems.append(f"{res.address}: peer namespace '{peer_ns}' does not exist "
                                f"(create it with: ip netns add {peer_ns})")
            if "type" in a and res.address not in live and (missing := link_kind_error(a["type"])):
                problems.append(f"{res.address}: {missing}")
            existing = live.get(res.address)
            if existing is not None and "type" in a and not existing.owned and existing.attrs["type"] != a["type"]:
                problems.append(f"{res.address}: an interface '{a['name']}' of type {existing.attrs['type']} exists "
                                f"and is not managed by netx (the spec asks for {a['type']}; rename one of them)")
        return problems

    # reading

    def read(self, desired: Sequence[Resource]) -> list[Resource]:
        messages = list(self.ctx.ipr.get_links())
        names = {m["index"]: m.get_attr("IFLA_IFNAME") for m in messages}
        links = [r for r in desired if r.kind == self.kind]
        tunnels = set(self.ctx.store.load("wireguard")) | {r.attrs["name"] for r in desired if r.kind == "wireguard"}
        primaries = {r.attrs["name"] for r in links if r.attrs.get("type") == "veth"}
        declared = {r.attrs["name"] for r in links}
        peers_named = {r.attrs["peer"]["name"] for r in links if r.attrs.get("type") == "veth"} - declared
        resources = []
        wanted = {m.get_attr("IFLA_LINK_NETNSID") for m in messages} - {None}
        likely = sorted({r.attrs["peer"]["netns"] for r in links if (r.attrs.get("peer") or {}).get("netns")})
        nsids = self._nsid_names(wanted, likely) if wanted else {}
        for message in messages:
            info = message.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info else None
            name = names[message["index"]]
            if kind == "wireguard" or name in tunnels:
                continue  # WireGuard devices are the wireguard provider's resources
            if kind == "veth" and name not in declared and _folded(message, names, messages, primaries, peers_named):
                continue  # this end is part of its pair's resource
            resources.append(self._resource(message, kind, names, nsids))
        return resources

    def _nsid_names(self, wanted: set[int], likely: Sequence[str]) -> dict[int, str]:
        """Names of the namespaces behind the peer nsids in ``wanted``: the namespaces the spec names are
        asked first, then every other one (namespaces of other tools may vanish while we ask)."""
        found: dict[int, str] = {}
        for name in [*likely, *(n for n in netns.named() if n not in likely)]:
            if wanted <= set(found):
                break
            try:
                fd = os.open(netns.netns_path(name), os.O_RDONLY)
            except OSError:
                continue
            try:
                reply = self.ctx.ipr.get_netnsid(fd=fd)
            except (NetlinkError, OSError):
                continue
            finally:
                os.close(fd)
            nsid = reply.get("nsid") if reply else None
            if nsid is not None and nsid >= 0:
                found[nsid] = name
        return found

    def _resource(self, message: Any, kind: str | None, names: Mapping[int, str], nsids: Mapping[int, str]) -> Resource:
        name = names[message["index"]]
        master = message.get_attr("IFLA_MASTER")
        attrs: dict[str, Any] = {
            "name": name,
            "type": kind if kind in CREATED_KINDS else "device",
            "state": "up" if message["flags"] & IFF_UP else "down",
            "mtu": message.get_attr("IFLA_MTU"),
            "mac": message.get_attr("IFLA_ADDRESS"),
            "master": names.get(master) if master else None,
        }
        info = message.get_attr("IFLA_LINKINFO")
        data = info.get_attr("IFLA_INFO_DATA") if info else None
        if kind == "veth":
            attrs["peer"] = self._peer(message, names, nsids)
        elif kind == "bridge" and data is not None:
            attrs["stp"] = bool(data.get_attr("IFLA_BR_STP_STATE"))
        elif kind == "vxlan" and data is not None:
            attrs.update(_vxlan_attrs(data, names))
        elif kind == "geneve" and data is not None:
            attrs.update(_geneve_attrs(data))
        elif kind == "macvlan":
            attrs["parent"] = names.get(message.get_attr("IFLA_LINK"))
            attrs["mode"] = data.get_attr("IFLA_MACVLAN_MODE") if data is not None else None
        owned = message.get_attr("IFLA_IFALIAS") == NETX_ALIAS
        return Resource("link", link_address(name), attrs, owned, {"index": message["index"]})

    def _peer(self, message: Any, names: Mapping[int, str], nsids: Mapping[int, str]) -> dict[str, Any]:
        index = message.get_attr("IFLA_LINK")
        nsid = message.get_attr("IFLA_LINK_NETNSID")
        if nsid is None:
            return {"name": names.get(index), "netns": None}
        where = nsids.get(nsid)
        if where is None:
            return {"name": f"if{index}", "netns": f"nsid:{nsid}"}
        try:
            peer = self.ctx.ipr_in(where).get_links(index)
        except (NetlinkError, OSError):
            peer = []
        return {"name": peer[0].get_attr("IFLA_IFNAME") if peer else f"if{index}", "netns": where}

    # writing

    def _index(self, name: str) -> int:
        found = self.ctx.ipr.link_lookup(ifname=name)
        if not found:
            raise NetlinkError(errno.ENODEV, f"No such device: {name}")
        return found[0]

    def _create(self, res: Resource) -> None:
        a = res.attrs
        if a.get("type") is None:
            raise NetlinkError(errno.ENODEV, f"device {a['name']} does not exist")
        spec: dict[str, Any] = {"ifname": a["name"], "kind": a["type"]}
        if res.meta.get("index") and res.meta["index"] not in self.ctx.link_names():
            spec["index"] = res.meta["index"]  # a rollback re-creates the link as it was, ifindex included
        if a.get("mtu"):
            spec["mtu"] = a["mtu"]
        if a.get("mac"):
            spec["address"] = a["mac"]
        spec.update(self._kind_settings(a))
        if a["type"] == "veth":
            peer = {"ifname": a["peer"]["name"]}
            if a["peer"].get("netns"):
                peer["net_ns_fd"] = a["peer"]["netns"]
            if a.get("mtu"):
                peer["mtu"] = a["mtu"]
            spec["peer"] = peer
        self.ctx.ipr.link("add", **spec)
        self.ctx.count_write()
        try:
            index = self._index(a["name"])
            settings: dict[str, Any] = {"index": index, "state": a.get("state", "up")}
            if res.owned:
                settings["ifalias"] = NETX_ALIAS
            if a.get("master"):
                settings["master"] = self._index(a["master"])
            self.ctx.ipr.link("set", **settings)
            self.ctx.count_write()
            if a["type"] == "veth":
                self._peer_up(a["peer"])
        except (NetlinkError, OSError):
            self.ctx.ipr.link("del", ifname=a["name"])
            raise

    def _peer_up(self, peer: Mapping[str, Any]) -> None:
        socket: IPRoute = self.ctx.ipr_in(peer["netns"]) if peer.get("netns") else self.ctx.ipr
        index = socket.link_lookup(ifname=peer["name"])
        if index:
            socket.link("set", index=index[0], state="up")
            self.ctx.count_write()

    def _kind_settings(self, a: Mapping[str, Any]) -> dict[str, Any]:
        kind = a.get("type")
        if kind == "bridge":
            return {"br_stp_state": int(a.get("stp", False))}
        if kind == "macvlan":
            return {"link": self._index(a["parent"]), "macvlan_mode": a["mode"]}
        if kind == "geneve":
            settings = {"geneve_port": a["port"], "geneve_ttl": a.get("ttl") or 0}
            if a.get("external"):
                settings["geneve_collect_metadata"] = True
            else:
                settings.update(geneve_id=a["vni"], geneve_remote=a["remote"])
            return settings
        if kind == "vxlan":
            settings: dict[str, Any] = {"vxlan_port": a["port"], "vxlan_learning": int(a["learning"]),
                                        "vxlan_ttl": a.get("ttl") or 0}
            if a.get("external"):
                settings["vxlan_collect_metadata"] = 1
            else:
                settings["vxlan_id"] = a["vni"]
            for key in ("local", "remote", "group"):
                if a.get(key):
                    v6 = ipaddress.ip_address(a[key]).version == 6
                    field = "local" if key == "local" else "group"
                    settings[f"vxlan_{field}{'6' if v6 else ''}"] = a[key]
            if a.get("device"):
                settings["vxlan_link"] = self._index(a["device"])
            return settings
        return {}

    def _update(self, before: Resource, after: Resource) -> None:
        a = after.attrs
        index = self._index(a["name"])
        settings: dict[str, Any] = {"index": index}
        if "mtu" in a and a["mtu"] != before.attrs.get("mtu"):
            settings["mtu"] = a["mtu"]
        if "master" in a:
            settings["master"] = self._index(a["master"]) if a["master"] else 0
        if after.owned != before.owned:
            settings["ifalias"] = NETX_ALIAS if after.owned else ""
        kind = a.get("type")
        if kind in ("bridge", "macvlan", "vxlan"):
            changed = {k for k in a if a[k] != before.attrs.get(k)}
            if changed & {"stp", "mode", "learning", "ttl"}:
                settings["kind"] = kind
                settings.update({k: v for k, v in self._kind_settings(a).items()
                                 if k in ("br_stp_state", "macvlan_mode", "vxlan_learning", "vxlan_ttl")})
        if a.get("mac") and a["mac"] != before.attrs.get("mac"):
            self._set_mac(index, a["mac"])
        settings["state"] = a.get("state", "up")
        self.ctx.ipr.link("set", **settings)
        self.ctx.count_write()

    def _set_mac(self, index: int, mac: str) -> None:
        try:
            self.ctx.ipr.link("set", index=index, address=mac)
        except NetlinkError as exc:
            if exc.code != errno.EBUSY:
                raise
            self.ctx.ipr.link("set", index=index, state="down")
            self.ctx.ipr.link("set", index=index, address=mac)
        self.ctx.count_write()

    def _delete(self, res: Resource) -> None:
        if res.attrs.get("type") == "device" or not res.owned:
            raise NetlinkError(errno.EPERM, f"{res.address} is not owned by netx; refusing to delete it")
        self.ctx.ipr.link("del", index=self._index(res.attrs["name"]))
        self.ctx.count_write()


def _folded(message: Any, names: Mapping[int, str], messages: Sequence[Any], primaries: set[str],
            peers_named: set[str]) -> bool:
    """Whether this veth end is represented by its partner in the same namespace: it is the peer the
    spec names, or its partner is a veth netx created (only that end carries the alias)."""
    name = names[message["index"]]
    if name in peers_named:
        return True
    peer_index = message.get_attr("IFLA_LINK")
    if message.get_attr("IFLA_LINK_NETNSID") is not None or peer_index not in names:
        return False
    if names[peer_index] in primaries:
        return True
    partner = next((m for m in messages if m["index"] == peer_index), None)
    return partner is not None and partner.get_attr("IFLA_IFALIAS") == NETX_ALIAS != message.get_attr("IFLA_IFALIAS")


def _geneve_attrs(data: Any) -> dict[str, Any]:
    external = bool(data.get_attr("IFLA_GENEVE_COLLECT_METADATA"))
    return {
        "vni": None if external else data.get_attr("IFLA_GENEVE_ID"),
        "port": data.get_attr("IFLA_GENEVE_PORT"),
        "remote": data.get_attr("IFLA_GENEVE_REMOTE") or data.get_attr("IFLA_GENEVE_REMOTE6"),
        "external": external,
        "ttl": data.get_attr("IFLA_GENEVE_TTL") or None,
    }


def _vxlan_attrs(data: Any, names: Mapping[int, str]) -> dict[str, Any]:
    group = data.get_attr("IFLA_VXLAN_GROUP") or data.get_attr("IFLA_VXLAN_GROUP6")
    multicast = group is not None and ipaddress.ip_address(group).is_multicast
    link = data.get_attr("IFLA_VXLAN_LINK")
    external = bool(data.get_attr("IFLA_VXLAN_COLLECT_METADATA"))
    return {
        "vni": None if external else data.get_attr("IFLA_VXLAN_ID"),
        "external": external,
        "port": data.get_attr("IFLA_VXLAN_PORT"),
        "local": data.get_attr("IFLA_VXLAN_LOCAL") or data.get_attr("IFLA_VXLAN_LOCAL6"),
        "remote": None if multicast else group,
        "group": group if multicast else None,
        "device": names.get(link) if link else None,
        "learning": bool(data.get_attr("IFLA_VXLAN_LEARNING")),
        "ttl": data.get_attr("IFLA_VXLAN_TTL") or None,
    }

"""Links of every kind: one resource type (read over the lean socket, written with pyroute2); the kinds'
own parts are in ``kinds/``.

Links netx creates carry the alias ``netx``; a link without it is never deleted. ``device`` links are
configured (mtu, state, mac, master) but never created or deleted. Links another feature manages (a
WireGuard device) are claimed through the namespace context and left to it.
"""

from __future__ import annotations

import errno
import itertools
import os
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from netplanx.engine.resource import Dependency, Query, Resource
from netplanx.features.base import StepwiseType
from netplanx.features.interfaces.kinds.base import LinkReading
from netplanx.features.interfaces.kinds.catalog import KINDS
from netplanx.system import netns, rtnl
from netplanx.system.names import NETX_ALIAS
from netplanx.system.netlink import NLM_F_CREATE, NLM_F_EXCL, NetlinkError
from netplanx.system.probes import link_kind_errors

INFO_DATA = {kind.type: kind.info_data for kind in KINDS.values() if kind.info_data}
IFF_UP = 0x1
COMMON_DISRUPTION = {"state": "link down", "mac": "link flap", "master": "link flap", "mtu": "hitless"}


def link_address(name: str) -> str:
    return f"link.{name}"


class LinkType(StepwiseType):
    kind = "link"
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless", "replace": "traffic loss", "delete": "traffic loss",
    }

    def forces_replacement(self, desired: Resource, live: Resource, changed: Sequence[str]) -> list[str]:
        if desired.attrs.get("type") is None:  # a device: nothing forces a replacement
            return []
        kind = KINDS.get(desired.attrs["type"])
        if kind is None:
            return [key for key in changed if key == "type"]
        return kind.replaces(desired.attrs, live.attrs, changed)

    def cycles(self, before: Resource, after: Resource, changed: Sequence[str]) -> str:
        """A link that joins or leaves a bond or a VRF is taken down and up (by netx for a bond, by the kernel
        for a VRF): its routes and IPv6 addresses go."""
        if "master" not in changed:
            return ""
        for side, verb in ((after, "joins"), (before, "leaves")):
            kind = KINDS.get(_master_kind(side))
            if kind is not None and kind.cycles_members:
                return f"{after.address} {verb} {kind.type} {side.attrs['master']} (taken down and up)"
        return ""

    def dependencies(self, resource: Resource) -> list[Dependency]:
        a = resource.attrs
        deps = []
        if a.get("master"):
            deps.append(Dependency(link_address(a["master"]), lifetime=False, attr="master"))
        kind = KINDS.get(a.get("type") or "device")
        lower = a.get(kind.lower) if kind is not None and kind.lower else None
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
        kind = KINDS.get((after.attrs.get("type") if after else None) or "device")
        labels = {COMMON_DISRUPTION.get(key) or (kind.disruption.get(key) if kind else None) or "link flap"
                  for key in changed}
        for label in ("link down", "link flap"):
            if label in labels:
                return label
        return min(labels - {"hitless"}, default="hitless")  # a kind's own word (a tunnel 're-pointed')

    def preflight(self, desired: Sequence[Resource], live: Mapping[str, Resource]) -> list[str]:
        problems = []
        kinds = {KINDS[t] for r in desired if (t := r.attrs.get("type")) in KINDS and KINDS[t].created}
        link_kind_errors({kind.type: kind.kernel_option() for kind in kinds})  # probed at once, in one child
        coming = {a for r in desired for a in r.meta.get("requires", ())}
        for res in desired:
            a = res.attrs
            if "type" not in a and res.address not in live and not res.meta.get("requires"):
                creatable = ", ".join(k.type for k in KINDS.values() if k.created)
                problems.append(f"{res.address}: device '{a['name']}' does not exist (type device configures an "
                                f"existing interface; allowed: a kind netx creates: {creatable})")
            peer_ns = (a.get("peer") or {}).get("netns")
            if peer_ns and not netns.exists(peer_ns) and f"netns.{peer_ns}" not in coming:
                problems.append(f"{res.address}: peer namespace '{peer_ns}' does not exist "
                                f"(create it with: ip netns add {peer_ns})")
            existing = live.get(res.address)
            kind = KINDS.get(a.get("type", "device"))
            created = existing is None or existing.attrs["type"] != a.get("type")  # a new kind: create or replace
            if "type" in a and created and kind is not None and (missing := kind.missing()):
                problems.append(f"{res.address}: {missing}")
            if existing is not None and "type" in a and not existing.owned and existing.attrs["type"] != a["type"]:
                problems.append(f"{res.address}: an interface '{a['name']}' of type {existing.attrs['type']} exists "
                                f"and is not managed by netx (the spec asks for {a['type']}; rename one of them)")
        return problems

    # reading

    def read(self, query: Query) -> list[Resource]:
        messages = rtnl.links(self.ctx.nl, INFO_DATA)
        by_index = {m["index"]: m for m in messages}
        names = {index: m.get_attr("IFLA_IFNAME") for index, m in by_index.items()}
        links = query.of_kind(self.kind)
        claimed_names, claimed_kinds = self.ctx.claimed_links(query)
        primaries = {r.attrs["name"] for r in links if r.attrs.get("type") == "veth"}
        declared = {r.attrs["name"] for r in links}
        peers_named = {r.attrs["peer"]["name"] for r in links if r.attrs.get("type") == "veth"} - declared
        resources = []
        wanted = {m.get_attr("IFLA_LINK_NETNSID") for m in messages} - {None}
        likely = sorted({r.attrs["peer"]["netns"] for r in links if (r.attrs.get("peer") or {}).get("netns")})
        nsids = self._nsid_names(wanted, likely) if wanted else {}
        reading = LinkReading(names, lambda message: self._peer(message, names, nsids), _kinds(messages))
        aliased = {m["index"] for m in messages if m.get_attr("IFLA_IFALIAS") == NETX_ALIAS}
        for message in messages:
            info = message.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info else None
            name = names[message["index"]]
            if kind in claimed_kinds or name in claimed_names:
                continue  # another feature's resource (a WireGuard device)
            if kind == "veth" and name not in declared and _folded(message, names, by_index, primaries, peers_named):
                continue  # this end is part of its pair's resource
            resources.append(self._resource(message, kind, reading, aliased))
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
                nsid = rtnl.netnsid(self.ctx.nl, fd)
            except OSError:
                continue
            finally:
                os.close(fd)
            if nsid is not None:
                found[nsid] = name
        return found

    def _resource(self, message: Any, kind_name: str | None, reading: LinkReading, aliased: set[int]) -> Resource:
        """A live link. The far end of a veth pair netx made in this namespace (the end the spec may
        configure as a device) is netx's too, and lives and dies with the end that carries the alias."""
        name = reading.names[message["index"]]
        master = message.get_attr("IFLA_MASTER")
        kind = KINDS.get(kind_name or "")
        created = kind is not None and kind.created
        attrs: dict[str, Any] = {
            "name": name,
            "type": kind_name if created else "device",
            "state": "up" if message["flags"] & IFF_UP else "down",
            "mtu": message.get_attr("IFLA_MTU"),
            "mac": _mac(message.get_attr("IFLA_ADDRESS")),
            "master": reading.names.get(master) if master else None,
        }
        if created:
            info = message.get_attr("IFLA_LINKINFO")
            attrs.update(kind.decode(message, info.get_attr("IFLA_INFO_DATA") if info else None, reading))
        meta: dict[str, Any] = {"index": message["index"]}
        if master and master in reading.kinds:
            meta["master_kind"] = reading.kinds[master]
        owned = message["index"] in aliased
        partner = message.get_attr("IFLA_LINK")
        here = kind_name == "veth" and message.get_attr("IFLA_LINK_NETNSID") is None and partner in reading.names
        if here:  # what sits on the peer end comes after this pair, and goes before it
            meta["provides"] = [link_address(reading.names[partner])]
        if here and not owned and partner in aliased:
            owned, meta["requires"] = True, [link_address(reading.names[partner])]
        return Resource("link", link_address(name), attrs, owned, meta)

    def _peer(self, message: Any, names: Mapping[int, str], nsids: Mapping[int, str]) -> dict[str, Any]:
        index = message.get_attr("IFLA_LINK")
        nsid = message.get_attr("IFLA_LINK_NETNSID")
        if nsid is None:
            return {"name": names.get(index), "netns": None}
        where = nsids.get(nsid)
        if where is None:
            return {"name": f"if{index}", "netns": f"nsid:{nsid}"}
        try:
            peer = rtnl.links(self.ctx.nl_in(where), {}, index)
        except OSError:
            peer = []
        return {"name": peer[0].get_attr("IFLA_IFNAME") if peer else f"if{index}", "netns": where}

    # writing

    def create(self, resources: Sequence[Resource]) -> list[Exception | None]:
        """Links of kinds with ``creation_data`` in batches on the lean socket; the others one at a time
        (runs of each, in order: a link may sit on one created just before)."""
        results: list[Exception | None] = []
        for batched, run in itertools.groupby(resources, key=self._batched):
            group = list(run)
            results += self._create_batch(group) if batched else super().create(group)
        return results

    def _batched(self, res: Resource) -> bool:
        """Whether the link is created on the lean socket: its kind encodes itself, and it is not there yet
        (a link that requires another resource may exist: the far end of a veth pair is configured)."""
        kind = KINDS.get(res.attrs.get("type") or "device")
        return kind is not None and kind.created and kind.batched and not (
            res.meta.get("requires") and self.ctx.index_of(res.attrs["name"]) is not None)

    def _create_batch(self, group: Sequence[Resource]) -> list[Exception | None]:
        """Create every link (one request each, many per sendmsg), then mark, bring up and enslave those
        made in a second batch; a link whose second step fails is deleted again."""
        results: list[Exception | None] = [None] * len(group)
        fds: dict[str, int] = {}

        def netns_fd(name: str) -> int:
            if name not in fds:
                fds[name] = os.open(netns.netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
            return fds[name]

        taken = self.ctx.link_names() if any(r.meta.get("index") for r in group) else {}
        try:
            made = self._send_into(group, results, lambda res: (rtnl.RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                                                           _creation(res, taken, netns_fd)))
        finally:
            for fd in fds.values():
                os.close(fd)
        indexes = {name: index for index, name in self.ctx.link_names().items()}
        configured = self._send_into([group[slot] for slot in made], results,
                                lambda res: (rtnl.RTM_NEWLINK, 0, _configuration(res, indexes)), made)
        paired = [slot for slot in configured if group[slot].attrs.get("peer")]
        for slot, error in zip(paired, self._peers_up([group[s] for s in paired], indexes), strict=True):
            results[slot] = error
        for slot in configured:  # a bond's members join on their own, while down, then come up
            res = group[slot]
            if results[slot] is None and _joins_down(res):
                try:
                    self._join(indexes[res.attrs["name"]], res, {})
                    self.ctx.ipr.link("set", index=indexes[res.attrs["name"]], state=res.attrs.get("state", "up"))
                    self.ctx.count_write()
                    self._primary(indexes[res.attrs["name"]], res)
                except (NetlinkError, OSError) as exc:
                    results[slot] = exc
        undone = [indexes[group[slot].attrs["name"]] for slot in made if results[slot] is not None]
        self.ctx.nl.transact([(rtnl.RTM_DELLINK, 0, rtnl.link_body({}, index)) for index in undone])
        return results

    def _send_into(self, resources: Sequence[Resource], results: list[Exception | None],
                   encode: Callable[[Resource], tuple[int, int, bytes]],
                   slots: Sequence[int] | None = None) -> list[int]:
        """``_send``, recording errors in ``results`` (at ``slots``, by default the resources' positions); the
        slots that succeeded."""
        slots = range(len(resources)) if slots is None else slots
        for slot, error in zip(slots, self._send(resources, encode), strict=True):
            results[slot] = error
        return [slot for slot in slots if results[slot] is None]

    def _peers_up(self, resources: Sequence[Resource], indexes: Mapping[str, int]) -> list[NetlinkError | None]:
        """Bring up the peer of each veth (in its namespace; a peer that is not there is left alone)."""
        found: list[NetlinkError | None] = [None] * len(resources)
        by_netns: dict[str | None, list[int]] = {}
        for slot, res in enumerate(resources):
            by_netns.setdefault(res.attrs["peer"].get("netns"), []).append(slot)
        for where, slots in by_netns.items():
            if where is None:
                slots = [s for s in slots if resources[s].attrs["peer"]["name"] in indexes]
                requests = [(rtnl.RTM_NEWLINK, 0, rtnl.link_body(
                    {}, indexes[resources[s].attrs["peer"]["name"]], rtnl.IFF_UP, rtnl.IFF_UP)) for s in slots]
                outcomes = self.ctx.nl.transact(requests)
            else:
                sock = self.ctx.nl_in(where)
                there = {name: index for index, name in sock.link_names().items()}
                slots = [s for s in slots if resources[s].attrs["peer"]["name"] in there]
                requests = [(rtnl.RTM_NEWLINK, 0, rtnl.link_body(
                    {}, there[resources[s].attrs["peer"]["name"]], rtnl.IFF_UP, rtnl.IFF_UP)) for s in slots]
                outcomes = sock.transact(requests)
                self.ctx.count_write(len(requests))
            for slot, error in zip(slots, outcomes, strict=True):
                found[slot] = error
        return found

    def delete(self, resources: Sequence[Resource]) -> list[Exception | None]:
        """One batch of RTM_DELLINK requests; a link already gone (its veth partner took it along) is fine."""
        results: list[Exception | None] = [None] * len(resources)
        requests, slots = [], []
        for slot, res in enumerate(resources):
            if res.attrs.get("type") == "device" or not res.owned:
                results[slot] = NetlinkError(errno.EPERM, f"{res.address} is not owned by netx; refusing to delete it")
                continue
            index = self.ctx.index_of(res.attrs["name"])
            if index is not None:
                requests.append((rtnl.RTM_DELLINK, 0, rtnl.link_body({}, index)))
                slots.append(slot)
        for slot, error in zip(slots, self.ctx.nl.transact(requests), strict=True):
            results[slot] = None if error is not None and error.errno == errno.ENODEV else error
        return results

    def _index(self, name: str) -> int:
        index = self.ctx.index_of(name)
        if index is None:
            raise NetlinkError(errno.ENODEV, f"No such device: {name}")
        return index

    def _create(self, res: Resource) -> None:
        a = res.attrs
        kind = KINDS.get(a.get("type") or "device")
        made = kind is None or not kind.created or res.meta.get("requires")  # exists, or its veth makes it
        if made and self.ctx.index_of(a["name"]) is not None:
            current = self._current(a["name"])
            self._update(current, res._replace(owned=current.owned))  # configured, not created: marker kept
            return
        if kind is None or not kind.created:
            raise NetlinkError(errno.ENODEV, f"device {a['name']} does not exist")
        spec: dict[str, Any] = {"ifname": a["name"], "kind": a["type"]}
        if res.meta.get("index") and res.meta["index"] not in self.ctx.link_names():
            spec["index"] = res.meta["index"]  # a rollback re-creates the link as it was, ifindex included
        if a.get("mtu"):
            spec["mtu"] = a["mtu"]
        if a.get("mac"):
            spec["address"] = a["mac"]
        spec.update(kind.settings(a, self._index))
        self.ctx.ipr.link("add", **spec)
        self.ctx.count_write()
        try:
            index = self._index(a["name"])
            settings: dict[str, Any] = {"index": index, "state": a.get("state", "up")}
            if res.owned:
                settings["ifalias"] = NETX_ALIAS
            if a.get("master"):
                self._join(index, res, settings)
            self.ctx.ipr.link("set", **settings)
            self.ctx.count_write()
            self._primary(index, res)
            if a.get("peer"):
                self._peer_up(a["peer"])
        except (NetlinkError, OSError):
            self.ctx.ipr.link("del", ifname=a["name"])
            raise

    def _peer_up(self, peer: Mapping[str, Any]) -> None:
        socket = self.ctx.ipr_in(peer["netns"]) if peer.get("netns") else self.ctx.ipr
        index = socket.link_lookup(ifname=peer["name"])
        if index:
            socket.link("set", index=index[0], state="up")
            self.ctx.count_write()

    def _update(self, before: Resource, after: Resource) -> None:
        a = after.attrs
        index = self._index(a["name"])
        settings: dict[str, Any] = {"index": index}
        if "mtu" in a and a["mtu"] != before.attrs.get("mtu"):
            settings["mtu"] = a["mtu"]
        if after.owned != before.owned:
            settings["ifalias"] = NETX_ALIAS if after.owned else ""
        kind = KINDS.get(a.get("type") or "device")
        changed = {k for k in a if a[k] != before.attrs.get(k)}
        if kind is not None:
            own = kind.update_settings(a, changed, self._index)
            if own:
                settings.update(own, kind=kind.type)
            if changed & kind.down_to_change and before.attrs.get("state") == "up":
                self._down(index)  # the kernel refuses these while it is up; the request below brings it up
        if a.get("master"):
            self._join(index, after, settings)
        elif "master" in a:
            settings["master"] = 0
        if a.get("mac") and a["mac"] != before.attrs.get("mac"):
            self._set_mac(index, a["mac"])
        settings["state"] = a.get("state", "up")
        self.ctx.ipr.link("set", **settings)
        self.ctx.count_write()
        if "master" in changed:
            self._primary(index, after)

    def _join(self, index: int, res: Resource, settings: dict[str, Any]) -> None:
        """Make ``res`` a member of its master: in ``settings`` (the request that also sets its state), or,
        for a master that takes members only while they are down (a bond), first and on its own (the kernel
        sets the state before the master in one request), taking the link down if it is up."""
        master = self._index(res.attrs["master"])
        kind = KINDS.get(res.meta.get("master_kind") or "")
        if kind is None or not kind.members_down:
            settings["master"] = master
            return
        [message] = rtnl.links(self.ctx.nl, {}, index)
        if message.get_attr("IFLA_MASTER") == master:
            return  # a member already: never taken down for another change
        if message["flags"] & IFF_UP:
            self._down(index)
        self.ctx.ipr.link("set", index=index, master=master)
        self.ctx.count_write()

    def _down(self, index: int) -> None:
        self.ctx.ipr.link("set", index=index, state="down")
        self.ctx.count_write()

    def _primary(self, index: int, res: Resource) -> None:
        """A bond's primary is set when that member joins (it may be made in the same plan, after the bond)."""
        if res.meta.get("primary") and res.attrs.get("master"):
            self.ctx.ipr.link("set", index=self._index(res.attrs["master"]), kind="bond", bond_primary=index)
            self.ctx.count_write()

    def _set_mac(self, index: int, mac: str) -> None:
        try:
            self.ctx.ipr.link("set", index=index, address=mac)
        except NetlinkError as exc:
            if exc.errno != errno.EBUSY:
                raise
            self.ctx.ipr.link("set", index=index, state="down")
            self.ctx.ipr.link("set", index=index, address=mac)
        self.ctx.count_write()

    def _current(self, name: str) -> Resource:
        """The live link ``name`` (ENODEV when there is none)."""
        messages = rtnl.links(self.ctx.nl, INFO_DATA)
        names = {m["index"]: m.get_attr("IFLA_IFNAME") for m in messages}
        aliased = {m["index"] for m in messages if m.get_attr("IFLA_IFALIAS") == NETX_ALIAS}
        message = next((m for m in messages if names[m["index"]] == name), None)
        if message is None:
            raise NetlinkError(errno.ENODEV, f"No such device: {name}")
        info = message.get_attr("IFLA_LINKINFO")
        reading = LinkReading(names, lambda _message: {"name": None, "netns": None}, _kinds(messages))
        return self._resource(message, info.get_attr("IFLA_INFO_KIND") if info else None, reading, aliased)


def _kinds(messages: Sequence[Any]) -> dict[int, str]:
    """Link index -> its kind (IFLA_INFO_KIND), for the links that have one."""
    kinds = {}
    for message in messages:
        info = message.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info else None
        if kind:
            kinds[message["index"]] = kind
    return kinds


def _mac(address: str | None) -> str | None:
    """A link's MAC address; None for an IP tunnel's link-layer address (its local IPv4 or IPv6 address)."""
    return address if address is not None and len(address) == 17 else None


def _master_kind(res: Resource) -> str:
    """The kind of the master ``res`` names (as the spec or the kernel says), '' without one."""
    return res.meta.get("master_kind", "") if res.attrs.get("master") else ""


def _joins_down(res: Resource) -> bool:
    """Whether ``res`` joins a master that takes members only while they are down (a bond)."""
    kind = KINDS.get(_master_kind(res))
    return kind is not None and kind.members_down


def _creation(res: Resource, taken: Mapping[int, str], netns_fd: Callable[[str], int]) -> bytes:
    """RTM_NEWLINK of a new link (a rollback's link gets its old ifindex back when that is free)."""
    index = res.meta.get("index") or 0
    return KINDS[res.attrs["type"]].creation_request(res.attrs, netns_fd, 0 if index in taken else index)


def _configuration(res: Resource, indexes: Mapping[str, int]) -> bytes:
    """RTM_NEWLINK that marks a link just made as netx's, sets its state and its master (a bond's member joins
    later, while down: _create_batch)."""
    a = res.attrs
    fields = {rtnl.IFLA_IFALIAS: rtnl.asciiz(NETX_ALIAS)} if res.owned else {}
    if a.get("master") and not _joins_down(res):
        if a["master"] not in indexes:
            raise NetlinkError(errno.ENODEV, f"No such device: {a['master']}")
        fields[rtnl.IFLA_MASTER] = struct.pack("=I", indexes[a["master"]])
    up = rtnl.IFF_UP if a.get("state", "up") == "up" else 0
    return rtnl.link_body(fields, indexes[a["name"]], up, rtnl.IFF_UP)


def _folded(message: Any, names: Mapping[int, str], messages: Mapping[int, Any], primaries: set[str],
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
    partner = messages.get(peer_index)
    return partner is not None and partner.get_attr("IFLA_IFALIAS") == NETX_ALIAS != message.get_attr("IFLA_IFALIAS")

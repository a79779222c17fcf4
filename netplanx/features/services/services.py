"""Services as resources: ``service.NAME`` is one service's entries in the load balancer's pinned maps;
``LbContext`` is what they share with ``bpfprog.lb`` (programs.py), the attachments and the socket hooks:
the scope's maps and programs.

A service has a frontend per VIP (``vip``, and ``vip6`` for a dual-stack one): the VIP, port and protocol
in lb_svc, an id, a name in lb_names, a Maglev row over the backends of the VIP's family. Live state is
read from the pinned maps every time (no cache): an entry changed by hand shows as drift and apply
rewrites it. Backend and service ids are allocated from what the maps hold (a backend keeps its id, hence
its counters, while it stays). A Maglev row is a fresh inner map swapped in atomically, so a change never
exposes a half-written table; connection tracking keeps established flows, and a connected socket keeps
its backend, whatever the table says.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from netplanx.engine.resource import Dependency, Query, Resource
from netplanx.features.base import StepwiseType
from netplanx.features.services.lbmaps import (
    AFFINITY_CLIENT_IP,
    LB,
    PROTOCOL_NAMES,
    PROTOCOLS,
    BackendVal,
    LbMaps,
    Name,
    Stats,
    SvcKey,
    SvcVal,
    addr_in,
    addr_out,
    backend_key,
    port_in,
    port_out,
    split_backend,
    u32,
)
from netplanx.features.services.maglev import backend_order, maglev_table, slots_moved
from netplanx.system.bpf.loader import Loaded, load, open_pinned
from netplanx.system.bpf.maps import BPF_F_INNER_MAP, BpfMap, create_map
from netplanx.system.context import KernelContext

PROGRAM_ADDRESS = "bpfprog.lb"


class LbContext:
    """The scope's load balancer: its maps (opened when they exist) and its programs (loaded on demand)."""

    def __init__(self, scope: str, programs: Path | None = None):
        self.scope = scope
        self.programs = programs  # the host's records of compiled versions
        self._maps: LbMaps | None = None
        self._programs: dict[str, Loaded] = {}

    def maps(self) -> LbMaps | None:
        if self._maps is None:
            self._maps = LbMaps.open(self.scope)
        return self._maps

    def writable(self) -> LbMaps:
        """The maps, made first (by loading this source's programs) when the scope has none yet."""
        maps = self.maps()
        if maps is None:
            self.loaded()
            maps = self.maps()
        return maps

    def program(self, version: str) -> Loaded:
        """The programs of ``version``: this source's (compiled and pinned when they are not yet), or a
        version still pinned (a rollback brings the previous one back)."""
        if version not in self._programs:
            self._programs[version] = (load(LB, self.scope, self.programs) if version == LB.version
                                       else open_pinned(LB, self.scope, version))
        return self._programs[version]

    def loaded(self) -> Loaded:
        """The current program version (compiled and pinned when it is not yet)."""
        return self.program(LB.version)

    def forget(self) -> None:
        if self._maps is not None:
            self._maps.close()
        for loaded in self._programs.values():
            loaded.close()
        self._maps = None
        self._programs.clear()


def _table_digest(table: Sequence[int]) -> str:
    return hashlib.sha256(array("i", table).tobytes()).hexdigest()[:12]


def family(address: str) -> str:
    """ipv4 or ipv6."""
    return "ipv6" if ":" in address else "ipv4"


def frontends(attrs: Mapping[str, Any]) -> list[str]:
    """A service's VIPs: ``vip``, and ``vip6`` when it is dual-stack."""
    return [attrs["vip"], *([attrs["vip6"]] if attrs.get("vip6") else [])]


def of_family(backends: Mapping[str, int], name: str) -> dict[str, int]:
    """The backends ("ADDRESS:PORT" -> weight) of one family."""
    return {key: weight for key, weight in backends.items() if family(split_backend(key)[0]) == name}


def service_resource(name: str, *, vip: str, port: int, protocol: str, affinity: str, size: int,
                     backends: Mapping[str, int], vip6: str | None = None, endpoints: Mapping[str, str] | None = None,
                     tables: Sequence[str] | None = None, owned: bool = True,
                     meta: Mapping[str, Any] | None = None) -> Resource:
    """A service; ``backends`` maps "ADDRESS:PORT" ("[ADDRESS]:PORT" for IPv6) -> weight. ``tables`` are the
    live Maglev rows' digests, one per VIP (desired: computed here from the backends of each VIP's family)."""
    vips = [vip, *([vip6] if vip6 else [])]
    if tables is None:
        tables = [_table_digest(maglev_table(list(of_family(backends, family(v)).items()), size)) for v in vips]
    maglev = {"size": size, **{("table", "table6")[index]: digest for index, digest in enumerate(tables)}}
    attrs = {"vip": vip, "vip6": vip6, "port": port, "protocol": protocol, "affinity": affinity,
             "backends": dict(sorted(backends.items())), "maglev": maglev}
    return Resource("service", f"service.{name}", attrs, owned,
                    {"name": name, "endpoints": dict(endpoints or {}), **(meta or {})})


class ServiceType(StepwiseType):
    """``service.NAME``: its frontends (VIP, port, protocol), their backends and Maglev rows."""

    kind = "service"

    def __init__(self, ctx: KernelContext, lb: LbContext):
        super().__init__(ctx)
        self.lb = lb
        self._ids: _Ids | None = None

    def dependencies(self, resource: Resource) -> list[Dependency]:
        return [Dependency(PROGRAM_ADDRESS)]

    def disruption(self, action: str, changed: Sequence[str], before: Resource | None,
                   after: Resource | None) -> str:
        """What the change means for traffic, at the service level, with the Maglev slots that move."""
        if action == "create":
            count = len(after.attrs["backends"]) if after else 0
            return f"hitless: new service, {count} backend(s)"
        if action == "delete":
            return "traffic loss: connections to the VIP are no longer balanced"
        if before is None or after is None:
            return "hitless"
        old, new = before.attrs["backends"], after.attrs["backends"]
        notes = [f"backend {k} added" for k in new if k not in old]
        notes += [f"backend {k} removed" for k in old if k not in new]
        notes += [f"backend {k} weight {old[k]} -> {new[k]}" for k in new if k in old and old[k] != new[k]]
        if not notes and before.attrs["maglev"] != after.attrs["maglev"]:
            notes.append("Maglev table repaired (the live one differs from its backends)")
        for key in ("vip", "vip6", "port", "protocol", "affinity"):
            if key in changed:
                notes.append(f"{key} {before.attrs.get(key)} -> {after.attrs.get(key)}")
        summary = ", ".join(notes) or "entries rewritten"
        size = after.attrs["maglev"]["size"]
        moved = {name: self._moved(before, after, name) for name in map(family, frontends(after.attrs))}
        slots = (f"{next(iter(moved.values()))} of {size}" if len(moved) == 1 else
                 " and ".join(f"{count} of {size} {name.replace('ip', 'IP')}" for name, count in moved.items()))
        return (f"hitless: {summary}; {slots} Maglev slots move "
                f"(new connections only; established ones keep their backend)")

    def _moved(self, before: Resource, after: Resource, name: str) -> int:
        """Slots of the ``name`` family's row that change: the live row (drift included) against the new one."""
        new = of_family(after.attrs["backends"], name)
        size = after.attrs["maglev"]["size"]
        live = self._live_row(before, name)
        if live is None:
            return _moved(of_family(before.attrs["backends"], name), new, before.attrs["maglev"]["size"], size)
        return _moved_from(live, new, size)

    def read(self, query: Query) -> list[Resource]:
        maps = self.lb.maps()
        if maps is None:
            return []
        backends: dict[int, list[tuple[int, BackendVal]]] = {}
        for backend_id, value in maps.be.items():
            backends.setdefault(value.svc, []).append((backend_id, value))
        names = dict(maps.names.items())
        groups: dict[str, list[tuple[SvcKey, SvcVal]]] = {}
        for key, svc in maps.svc.items():
            entry = names.get(svc.id)
            groups.setdefault(entry.name.decode() if entry else f"id-{svc.id}", []).append((key, svc))
        found = []
        for name, entries in groups.items():
            entries.sort(key=lambda entry: (family(addr_out(entry[0].vip)), entry[1].id))
            dual = len(entries) > 1 and [family(addr_out(k.vip)) for k, _ in entries[:2]] == ["ipv4", "ipv6"]
            found.append(self._resource(maps, name, entries[:2] if dual else entries[:1], backends))
            for extra in entries[2 if dual else 1:]:  # a second frontend of one family: not netx's making
                found.append(self._resource(maps, f"id-{extra[1].id}", [extra], backends))
        return found

    def _resource(self, maps: LbMaps, name: str, entries: Sequence[tuple[SvcKey, SvcVal]],
                  backends: Mapping[int, list[tuple[int, BackendVal]]]) -> Resource:
        """The service of one or two frontends (IPv4, then IPv6); the second must agree with the first."""
        key, svc = entries[0]
        members: dict[str, tuple[int, int]] = {}
        tables, ids = [], {}
        for other_key, other in entries:
            mine = {backend_key(addr_out(v.addr), port_out(v.port)): (bid, v.weight)
                    for bid, v in backends.get(other.id, [])}
            members.update(mine)
            ids[family(addr_out(other_key.vip))] = other.id
            settings = (other_key.port, other_key.proto, other.flags, other.size)
            tables.append(self._live_table(maps, other, mine) if settings == (key.port, key.proto, svc.flags, svc.size)
                          else f"inconsistent: IPv6 frontend {port_out(other_key.port)}/"
                               f"{PROTOCOL_NAMES.get(other_key.proto, '?')}, size {other.size}, flags {other.flags}")
        vips = [addr_out(k.vip) for k, _ in entries]
        return service_resource(
            name, vip=vips[0], vip6=vips[1] if len(vips) > 1 else None, port=port_out(key.port),
            protocol=PROTOCOL_NAMES.get(key.proto, "?"), size=svc.size,
            affinity="clientIP" if svc.flags & AFFINITY_CLIENT_IP else "none",
            backends={k: w for k, (_, w) in members.items()}, tables=tables,
            meta={"_ids": ids, "backend_ids": {k: bid for k, (bid, _) in members.items()}})

    def _live_table(self, maps: LbMaps, svc: SvcVal, members: Mapping[str, tuple[int, int]]) -> str:
        """The digest of a live Maglev row, as indices into the backends' order (as maglev_table gives)."""
        if svc.count != len(members):
            return f"inconsistent: {svc.count} backends counted, {len(members)} present"
        inner_id = maps.maglev.lookup(svc.id)
        if inner_id is None:
            return "missing" if members else _table_digest([])
        with BpfMap.by_id(inner_id, u32, u32) as row:
            if row.info.max_entries != svc.size:
                return f"inconsistent: row of {row.info.max_entries} slots"
            order = {members[member][0]: index for index, member in enumerate(sorted(members))}
            return _table_digest([order.get(bid, -1) for _, bid in sorted(row.items())])

    def _live_row(self, res: Resource, name: str) -> list[str] | None:
        """The live Maglev row of the ``name`` family as backend keys (None when it cannot be read): the plan's
        slot figure compares what the map holds now, drift included, with what apply will write."""
        maps = self.lb.maps()
        svc_id = res.meta.get("_ids", {}).get(name)
        inner_id = maps.maglev.lookup(svc_id) if maps is not None and svc_id is not None else None
        if inner_id is None:
            return None
        names = {bid: key for key, bid in res.meta.get("backend_ids", {}).items()}
        with BpfMap.by_id(inner_id, u32, u32) as row:
            return [names.get(bid, f"id {bid}") for _, bid in sorted(row.items())]

    def slot_counts(self, res: Resource) -> dict[str, int]:
        """How many slots of the live Maglev rows each backend ("ADDRESS:PORT") holds."""
        counts: Counter[str] = Counter()
        for name in res.meta["_ids"]:
            counts.update(self._live_row(res, name) or [])
        return dict(counts)

    def create(self, resources: Sequence[Resource]) -> list[Exception | None]:
        self._ids = None  # the maps are scanned once per batch, not once per service
        return super().create(resources)

    def update(self, pairs: Sequence[tuple[Resource, Resource]]) -> list[Exception | None]:
        self._ids = None
        return super().update(pairs)

    def _create(self, res: Resource) -> None:
        self._write(res, None)

    def _update(self, before: Resource, after: Resource) -> None:
        self._write(after, before)

    def _allocation(self, maps: LbMaps) -> _Ids:
        if self._ids is None:
            names = {(entry.name.decode(), _FAMILY_NAMES.get(entry.family, "")): number
                     for number, entry in maps.names.items()}
            self._ids = _Ids({v.id for _, v in maps.svc.items()}, dict(maps.be.items()), names)
        return self._ids

    def _write(self, res: Resource, before: Resource | None) -> None:
        """Every frontend of the service, each keeping its id; then the frontends that left go."""
        maps = self.lb.writable()
        ids = self._allocation(maps)
        attrs = res.attrs
        name = res.meta.get("name", res.address.removeprefix("service."))
        old_ids = dict(before.meta.get("_ids", {})) if before is not None else {}
        old_keys = {family(vip): _svc_key(vip, before.attrs) for vip in frontends(before.attrs)} if before else {}
        for vip in frontends(attrs):
            ip_version = family(vip)
            key = _svc_key(vip, attrs)
            # a service whose frontend entry went missing keeps its id, backends and row
            svc_id = old_ids.pop(ip_version, None) or ids.service(name, ip_version)
            old_key = old_keys.pop(ip_version, None)
            if old_key is not None and bytes(old_key) != bytes(key):
                maps.svc.delete(old_key)
            self._write_frontend(maps, ids, svc_id, key, name, ip_version, attrs)
        for old_key in old_keys.values():
            maps.svc.delete(old_key)
        for svc_id in old_ids.values():
            _remove_id(maps, svc_id)

    def _write_frontend(self, maps: LbMaps, ids: _Ids, svc_id: int, key: SvcKey, name: str, ip_version: str,
                        attrs: Mapping[str, Any]) -> None:
        """Write backends, then the new Maglev row (swapped in at once), then the frontend; then drop the
        backends that left. New flows never see a row that names a backend not written yet."""
        backends = of_family(attrs["backends"], ip_version)
        mine = {backend_key(addr_out(v.addr), port_out(v.port)): bid
                for bid, v in ids.backends.items() if v.svc == svc_id}
        written: dict[str, int] = {}
        for member, weight in backends.items():
            bid = mine.pop(member, None) or ids.backend()
            address, port = split_backend(member)
            value = BackendVal(addr_in(address), port_in(port), weight, svc_id)
            maps.be.update(bid, value)
            if bid not in ids.backends:
                maps.stats.update(bid, Stats(0, 0, 0))
            ids.backends[bid] = value
            written[member] = bid
        size = attrs["maglev"]["size"]
        order = backend_order(list(backends.items()))
        table = maglev_table(list(backends.items()), size)
        fd = create_map("array", 4, 4, size, BPF_F_INNER_MAP, "lb_maglev_row")
        with BpfMap(fd, u32, u32) as row:
            if table:
                row.update_batch([(slot, written[order[index]]) for slot, index in enumerate(table)])
            maps.maglev.update(svc_id, row.fd)  # the swap is atomic: flows see the old row or the new one
        maps.names.update(svc_id, Name(name.encode(), _FAMILY_NUMBERS[ip_version]))
        flags = AFFINITY_CLIENT_IP if attrs["affinity"] == "clientIP" else 0
        maps.svc.update(key, SvcVal(svc_id, len(written), size, flags))
        for stale in mine.values():  # backends that left (or were corrupted into another address)
            maps.be.delete(stale)
            ids.backends.pop(stale, None)
        self.ctx.count_write(3 + len(written))

    def _delete(self, res: Resource) -> None:
        maps = self.lb.maps()
        if maps is None:
            return
        for vip in frontends(res.attrs):
            maps.svc.delete(_svc_key(vip, res.attrs))
        for svc_id in res.meta.get("_ids", {}).values():
            _remove_id(maps, svc_id)
        self.ctx.count_write(3)


_FAMILY_NUMBERS = {"ipv4": 4, "ipv6": 6}
_FAMILY_NAMES = {number: name for name, number in _FAMILY_NUMBERS.items()}


def _svc_key(vip: str, attrs: Mapping[str, Any]) -> SvcKey:
    return SvcKey(addr_in(vip), port_in(attrs["port"]), PROTOCOLS[attrs["protocol"]])


def _remove_id(maps: LbMaps, svc_id: int) -> None:
    """A service id's row, name and backends."""
    maps.maglev.delete(svc_id)
    maps.names.delete(svc_id)
    for bid, value in maps.be.items():
        if value.svc == svc_id:
            maps.be.delete(bid)


class _Ids:
    """Service and backend ids in use (read once per batch of writes), handing out the lowest free ones."""

    def __init__(self, services: set[int], backends: dict[int, BackendVal], names: dict[tuple[str, str], int]):
        self.services = services
        self.backends = backends
        self.names = names
        self._next_service = self._next_backend = 1

    def service(self, name: str, ip_version: str) -> int:
        """The id the frontend of ``name`` of that family had (when its entry was lost), else the lowest free
        one."""
        known = self.names.get((name, ip_version))
        if known is not None and known not in self.services:
            self.services.add(known)
            return known
        while self._next_service in self.services or self._next_service in self.names.values():
            self._next_service += 1
        self.services.add(self._next_service)
        return self._next_service

    def backend(self) -> int:
        while self._next_backend in self.backends:
            self._next_backend += 1
        return self._next_backend


def _moved(old: Mapping[str, int], new: Mapping[str, int], size_before: int, size_after: int) -> int:
    before = maglev_table(list(old.items()), size_before)
    after = maglev_table(list(new.items()), size_after)
    if not before or not after:
        return size_after if (before or after) else 0
    return slots_moved(before, after, backend_order(list(old.items())), backend_order(list(new.items())))


def _moved_from(live: Sequence[str], new: Mapping[str, int], size: int) -> int:
    """Slots whose backend differs between the live row (as keys) and the table apply will write."""
    table = maglev_table(list(new.items()), size)
    if not table or len(table) != len(live):
        return size if (table or live) else 0
    order = backend_order(list(new.items()))
    return sum(current != order[index] for current, index in zip(live, table, strict=True))


def backend_counters(maps: LbMaps, backend_ids: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Packets and bytes each backend received through the packet programs, and the sockets the socket
    programs sent to it (summed over CPUs)."""
    counters = {}
    for member, bid in backend_ids.items():
        per_cpu = maps.stats.lookup(bid) or []
        counters[member] = {"packets": sum(s.packets for s in per_cpu), "bytes": sum(s.bytes for s in per_cpu),
                            "sockets": sum(s.sockets for s in per_cpu)}
    return counters

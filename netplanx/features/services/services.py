"""Services as resources: ``service.NAME`` is one service's entries in the load balancer's pinned maps
(frontend, backends, Maglev row, name); ``LbContext`` is what they share with ``bpfprog.lb`` (programs.py)
and the attachments: the scope's maps and programs.

Live state is read from the pinned maps every time (no cache): an entry changed by hand shows as drift
and apply rewrites it. Backend and service ids are allocated from what the maps hold (a backend keeps
its id, hence its counters, while it stays). A service's Maglev row is a fresh inner map swapped in
atomically, so a change never exposes a half-written table; connection tracking keeps established
flows on their backend whatever the table says.
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
    port_in,
    port_out,
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


def service_resource(name: str, *, vip: str, port: int, protocol: str, affinity: str, size: int,
                     backends: Mapping[str, int], endpoints: Mapping[str, str] | None = None,
                     table: str | None = None, owned: bool = True, meta: Mapping[str, Any] | None = None) -> Resource:
    """A service; ``backends`` maps "ADDRESS:PORT" -> weight. ``table`` is the live Maglev row's digest
    (desired: computed here from the backends)."""
    if table is None:
        table = _table_digest(maglev_table(list(backends.items()), size))
    attrs = {"vip": vip, "port": port, "protocol": protocol, "affinity": affinity,
             "backends": dict(sorted(backends.items())), "maglev": {"size": size, "table": table}}
    return Resource("service", f"service.{name}", attrs, owned,
                    {"name": name, "endpoints": dict(endpoints or {}), **(meta or {})})


class ServiceType(StepwiseType):
    """``service.NAME``: a frontend (VIP, port, protocol), its backends and its Maglev row."""

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
        size_before, size_after = before.attrs["maglev"]["size"], after.attrs["maglev"]["size"]
        live = self._live_row(before)
        moved = (_moved(old, new, size_before, size_after) if live is None
                 else _moved_from(live, new, size_after))
        if not notes and before.attrs["maglev"] != after.attrs["maglev"]:
            notes.append("Maglev table repaired (the live one differs from its backends)")
        for key in ("vip", "port", "protocol", "affinity"):
            if key in changed:
                notes.append(f"{key} {before.attrs.get(key)} -> {after.attrs.get(key)}")
        summary = ", ".join(notes) or "entries rewritten"
        return (f"hitless: {summary}; {moved} of {size_after} Maglev slots move "
                f"(new connections only; established ones keep their backend)")

    def read(self, query: Query) -> list[Resource]:
        maps = self.lb.maps()
        if maps is None:
            return []
        backends: dict[int, list[tuple[int, BackendVal]]] = {}
        for backend_id, value in maps.be.items():
            backends.setdefault(value.svc, []).append((backend_id, value))
        found = []
        for key, svc in maps.svc.items():
            name_entry = maps.names.lookup(svc.id)
            name = name_entry.name.decode() if name_entry else f"id-{svc.id}"
            members = {f"{addr_out(v.addr)}:{port_out(v.port)}": (bid, v.weight) for bid, v in backends.get(svc.id, [])}
            table = self._live_table(maps, svc, members)
            found.append(service_resource(
                name, vip=addr_out(key.vip), port=port_out(key.port), protocol=PROTOCOL_NAMES.get(key.proto, "?"),
                affinity="clientIP" if svc.flags & AFFINITY_CLIENT_IP else "none", size=svc.size,
                backends={k: w for k, (_, w) in members.items()}, table=table,
                meta={"_id": svc.id, "backend_ids": {k: bid for k, (bid, _) in members.items()}}))
        return found

    def _live_table(self, maps: LbMaps, svc: SvcVal, members: Mapping[str, tuple[int, int]]) -> str:
        """The digest of the live Maglev row, as indices into the backends' order (as maglev_table gives)."""
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

    def _live_row(self, res: Resource) -> list[str] | None:
        """The live Maglev row as backend keys (None when it cannot be read): the plan's slot figure
        compares what the map holds now, drift included, with what apply will write."""
        maps = self.lb.maps()
        if maps is None or "_id" not in res.meta:
            return None
        inner_id = maps.maglev.lookup(res.meta["_id"])
        if inner_id is None:
            return None
        names = {bid: key for key, bid in res.meta.get("backend_ids", {}).items()}
        with BpfMap.by_id(inner_id, u32, u32) as row:
            return [names.get(bid, f"id {bid}") for _, bid in sorted(row.items())]

    def slot_counts(self, res: Resource) -> dict[str, int]:
        """How many slots of the live Maglev row each backend ("ADDRESS:PORT") holds."""
        maps = self.lb.maps()
        inner_id = maps.maglev.lookup(res.meta["_id"]) if maps is not None else None
        if inner_id is None:
            return {}
        names = {bid: key for key, bid in res.meta["backend_ids"].items()}
        with BpfMap.by_id(inner_id, u32, u32) as row:
            counts = Counter(bid for _, bid in row.items())
        return {names.get(bid, f"id {bid}"): number for bid, number in counts.items()}

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
            names = {entry.name.decode(): number for number, entry in maps.names.items()}
            self._ids = _Ids({v.id for _, v in maps.svc.items()}, dict(maps.be.items()), names)
        return self._ids

    def _write(self, res: Resource, before: Resource | None) -> None:
        """Write backends, then the new Maglev row (swapped in at once), then the frontend; then drop the
        backends that left. New flows never see a row that names a backend not written yet."""
        maps = self.lb.maps()
        if maps is None:
            self.lb.loaded()
            maps = self.lb.maps()
        ids = self._allocation(maps)
        attrs = res.attrs
        key = SvcKey(addr_in(attrs["vip"]), port_in(attrs["port"]), PROTOCOLS[attrs["protocol"]])
        name = res.meta.get("name", res.address.removeprefix("service."))
        svc_id = before.meta.get("_id") if before is not None else None
        if svc_id is None:  # a service whose frontend entry went missing keeps its id, backends and row
            svc_id = ids.service(name)
        if before is not None:
            old = before.attrs
            old_key = SvcKey(addr_in(old["vip"]), port_in(old["port"]), PROTOCOLS[old["protocol"]])
            if bytes(old_key) != bytes(key):
                maps.svc.delete(old_key)
        mine = {f"{addr_out(v.addr)}:{port_out(v.port)}": bid for bid, v in ids.backends.items() if v.svc == svc_id}
        written: dict[str, int] = {}
        for member, weight in attrs["backends"].items():
            bid = mine.pop(member, None) or ids.backend()
            address, _, port = member.rpartition(":")
            value = BackendVal(addr_in(address), port_in(int(port)), weight, svc_id)
            maps.be.update(bid, value)
            if bid not in ids.backends:
                maps.stats.update(bid, Stats(0, 0))
            ids.backends[bid] = value
            written[member] = bid
        size = attrs["maglev"]["size"]
        order = backend_order(list(attrs["backends"].items()))
        table = maglev_table(list(attrs["backends"].items()), size)
        fd = create_map("array", 4, 4, size, BPF_F_INNER_MAP, "lb_maglev_row")
        with BpfMap(fd, u32, u32) as row:
            if table:
                row.update_batch([(slot, written[order[index]]) for slot, index in enumerate(table)])
            maps.maglev.update(svc_id, row.fd)  # the swap is atomic: flows see the old row or the new one
        maps.names.update(svc_id, Name(name.encode()))
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
        attrs = res.attrs
        maps.svc.delete(SvcKey(addr_in(attrs["vip"]), port_in(attrs["port"]), PROTOCOLS[attrs["protocol"]]))
        svc_id = res.meta.get("_id")
        if svc_id is not None:
            maps.maglev.delete(svc_id)
            maps.names.delete(svc_id)
            for bid, value in maps.be.items():
                if value.svc == svc_id:
                    maps.be.delete(bid)
        self.ctx.count_write(3)


class _Ids:
    """Service and backend ids in use (read once per batch of writes), handing out the lowest free ones."""

    def __init__(self, services: set[int], backends: dict[int, BackendVal], names: dict[str, int]):
        self.services = services
        self.backends = backends
        self.names = names
        self._next_service = self._next_backend = 1

    def service(self, name: str) -> int:
        """The id ``name`` had (when its frontend entry was lost), else the lowest free one."""
        known = self.names.get(name)
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
    """Packets and bytes each backend received (summed over CPUs)."""
    counters = {}
    for member, bid in backend_ids.items():
        per_cpu = maps.stats.lookup(bid) or []
        counters[member] = {"packets": sum(s.packets for s in per_cpu), "bytes": sum(s.bytes for s in per_cpu)}
    return counters

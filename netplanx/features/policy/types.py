"""Resource types of the policy datapath: programs and maps (``policydp``), ipcache prefixes
(``ipcache``) and per-endpoint policy entries with their tc filters (``policy``); the L7 redirect's are in
``l7types.py``.

Pins live under ``/sys/fs/bpf/netx/<scope>/policy/`` (``maps-VERSION``, ``prog-VERSION``: the shared
loader's layout); an apply that brings a new program version keeps the previous one pinned until it is
final, so that a rollback attaches it again. The filters are named ``netx-pol-*`` and sit at the
priorities of the tc chaining contract (``system/bpf/tc.py``): on the veth's ingress hook (the endpoint's
egress policy) after the service LB, on its egress hook (the endpoint's ingress policy) before the LB's
reverse NAT. The L7 hooks on the devices traffic from other nodes comes in by (``netx-pol-remote``) sit on
their ingress hook at the policy's priority too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from netplanx.engine.resource import Dependency, Query, Resource
from netplanx.errors import NetxError
from netplanx.features.base import StepwiseType
from netplanx.features.ebpf import PinnedVersions, ebpf_missing
from netplanx.features.policy import maps as pm
from netplanx.features.policy.entries import BUILTIN_RULES
from netplanx.features.policy.l7resources import L7_PROXY
from netplanx.features.policy.l7types import HOOK_RECORD, l7_types
from netplanx.features.policy.resources import (
    POLICY_PROGRAM,
    entries_from_meta,
    ipcache_resource,
    policy_program_resource,
    policy_resource,
)
from netplanx.system.bpf.loader import Loaded, load, open_pinned, remove_scope
from netplanx.system.bpf.tc import Attachment, priority
from netplanx.system.context import KernelContext

RECORD = "policy-endpoints"  # ifindex -> endpoint name, so entries keep their name after the spec drops them
FILTERS = {  # hook -> (name, program), at the priorities of the tc chaining contract (system/bpf/tc.py)
    "ingress": ("netx-pol-egress", "from_endpoint"),
    "egress": ("netx-pol-ingress", "to_endpoint"),
}
HOOK_NAMES = {"from_remote": "netx-pol-remote", "from_remote_ip": "netx-pol-remote-ip"}  # program -> filter name


def _names_of(scope: str) -> tuple[dict[int, str], dict[int, str]]:
    """Identity and rule names the datapath carries."""
    names = pm.read_names(scope)
    identities = {i: t for (kind, i), t in names.items() if kind == pm.NAME_IDENTITY}
    rules = {i: t for (kind, i), t in names.items() if kind == pm.NAME_RULE}
    return identities, rules


class Filters:
    """The two netx-pol filters of each endpoint, on the namespace's clsact hooks."""

    def __init__(self, ctx: KernelContext, scope: str):
        self.ctx = ctx
        self.scope = scope
        self._programs: Loaded | None = None  # open for the process's life: attaching 1,000 links reuses them

    def attached(self, device: str) -> bool:
        """Both netx-pol filters are on the device at their priorities."""
        index = self._index(device)
        return index is not None and all(
            any(f.name == name and f.prio == priority(hook, "policy") for f in self.ctx.tc.filters(index, hook))
            for hook, (name, _program) in FILTERS.items())

    def use(self, version: str) -> None:
        """Attach the programs of ``version`` from now on: this source's, or (a rollback) a pinned one."""
        if self._programs is None or self._programs.version != version:
            if self._programs is not None:
                self._programs.close()
            self._programs = (load(pm.POLICY, self.scope, self.ctx.bpf_programs) if version == pm.POLICY.version
                              else open_pinned(pm.POLICY, self.scope, version))

    def attach(self, device: str) -> None:
        """Attach (or replace in place, hitless) both filters with the programs in use."""
        if self._programs is None:
            self.use(pm.POLICY.version)
        index = self._index(device)
        if index is None:
            raise NetxError(f"cannot attach the policy filters: interface {device} does not exist")
        for hook, (name, program) in FILTERS.items():
            self.ctx.tc.attach(index, hook, self._programs.fd(program), prio=priority(hook, "policy"), name=name)

    def attach_all(self, devices: Sequence[str]) -> list[Exception | None]:
        """``attach`` for many devices at once (batches on the lean socket): one result per device."""
        if self._programs is None:
            self.use(pm.POLICY.version)
        found: list[Exception | None] = [None] * len(devices)
        wanted, owners = [], []
        for slot, device in enumerate(devices):
            index = self._index(device)
            if index is None:
                found[slot] = NetxError(f"cannot attach the policy filters: interface {device} does not exist")
                continue
            for hook, (name, program) in FILTERS.items():
                wanted.append(Attachment(index, hook, self._programs.fd(program), priority(hook, "policy"), name))
                owners.append(slot)
        for slot, error in zip(owners, self.ctx.tc.attach_many(wanted), strict=True):
            found[slot] = found[slot] or error
        return found

    def detach(self, device: str) -> None:
        index = self._index(device)
        if index is None:
            return
        for hook in FILTERS:
            self.ctx.tc.detach(index, hook, priority(hook, "policy"))

    def hook(self, device: str) -> str | None:
        """The L7 hook program on the device's ingress hook (None: none there, or no such device)."""
        index = self._index(device)
        if index is None:
            return None
        programs = {name: program for program, name in HOOK_NAMES.items()}
        return next((programs[f.name] for f in self.ctx.tc.filters(index, "ingress")
                     if f.prio == priority("ingress", "policy") and f.name in programs), None)

    def attach_hook(self, device: str, program: str) -> None:
        """Attach (or replace in place) an L7 hook program with the programs in use."""
        if self._programs is None:
            self.use(pm.POLICY.version)
        index = self._index(device)
        if index is None:
            raise NetxError(f"cannot attach the L7 hook: interface {device} does not exist")
        self.ctx.tc.attach(index, "ingress", self._programs.fd(program), prio=priority("ingress", "policy"),
                           name=HOOK_NAMES[program])

    def detach_hook(self, device: str) -> None:
        index = self._index(device)
        if index is not None:
            self.ctx.tc.detach(index, "ingress", priority("ingress", "policy"))

    def _index(self, device: str) -> int | None:
        return self.ctx.index_of(device)


class PolicyProgramType(StepwiseType):
    """The programs and pinned maps: compiled with bcc on create, or when the C source changed."""

    kind = "policydp"
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless",
        "update": "hitless (programs swapped in place; the previous version stays pinned until the apply is final, "
                  "for a rollback)",
        "replace": "policy off briefly", "delete": "policy off"}

    def __init__(self, ctx: KernelContext, scope: str, filters: Filters):
        super().__init__(ctx)
        self.scope = scope
        self.filters = filters
        self.versions = PinnedVersions(pm.POLICY, scope, ctx.store)

    def preflight(self, desired: Sequence[Resource], live: Mapping[str, Resource]) -> list[str]:
        return ebpf_missing(POLICY_PROGRAM) if any(r.kind == self.kind for r in desired) else []

    def read(self, query: Query) -> list[Resource]:
        """The version in use (versions held for a rollback are not shown)."""
        if not pm.scope_dir(self.scope).is_dir():
            return []
        programs, maps = self.versions.current("prog"), self.versions.current("maps")
        return [policy_program_resource(",".join(programs) or "(none)", ",".join(maps) or "(none)")]

    def _create(self, res: Resource) -> None:
        self._load(res)

    def _update(self, before: Resource, after: Resource) -> None:
        self._load(after)

    def _load(self, res: Resource) -> None:
        """Load the version ``res`` names (maps kept while bpf/policy.h is unchanged; in a rollback, the
        previous version, still pinned), move every attached endpoint onto it in place, and hold the other
        versions until the apply is final."""
        self.filters.use(res.attrs["program"])
        with pm.open_map(self.scope, "names") as names:
            for number, text in BUILTIN_RULES.items():
                names.update(*pm.name_entry(pm.NAME_RULE, number, text))
        for device in self._attached():
            self.filters.attach(device)
        links = set(self.ctx.link_names().values())
        for device, program in self.ctx.store.load(HOOK_RECORD).items():
            if device in links:
                self.filters.attach_hook(device, program)
        self.versions.hold_others(res.attrs["program"], res.attrs["maps"])
        self.ctx.count_write()

    def finish(self) -> None:
        self.versions.release()

    def _attached(self) -> list[str]:
        links = self.ctx.link_names()
        return [links[int(i)] for i in self.ctx.store.load(RECORD) if int(i) in links]

    def _delete(self, res: Resource) -> None:
        for device in self._attached():
            self.filters.detach(device)
        remove_scope(self.scope, pm.POLICY.name)
        self.versions.release()
        self.ctx.store.remove(RECORD)
        self.ctx.count_write()


class IpcacheType(StepwiseType):
    kind = "ipcache"
    disruption_of: ClassVar[Mapping[str, str]] = {"create": "hitless", "update": "verdicts change",
                                                  "replace": "verdicts change", "delete": "verdicts change"}

    def __init__(self, ctx: KernelContext, scope: str, filters: Filters):
        super().__init__(ctx)
        self.scope = scope
        self.filters = filters

    def dependencies(self, resource: Resource) -> list[Dependency]:
        return [Dependency(POLICY_PROGRAM)]

    def read(self, query: Query) -> list[Resource]:
        if not pm.loaded(self.scope):
            return []
        identities, _rules = _names_of(self.scope)
        with pm.open_map(self.scope, "ipcache") as ipcache:
            return [ipcache_resource(pm.prefix_text(key), value.identity, value.name.decode(errors="replace"),
                                     identities.get(value.identity, "")) for key, value in ipcache.items()]

    def create(self, resources: Sequence[Resource]) -> list[Exception | None]:
        return self._write(resources)

    def update(self, pairs: Sequence[tuple[Resource, Resource]]) -> list[Exception | None]:
        return self._write([after for _before, after in pairs])

    def _write(self, resources: Sequence[Resource]) -> list[Exception | None]:
        results: list[Exception | None] = []
        with pm.open_map(self.scope, "ipcache") as ipcache, pm.open_map(self.scope, "names") as names:
            for res in resources:
                try:
                    ipcache.update(pm.prefix_key(res.meta["cidr"]), pm.ip_value(res.attrs["identity"],
                                                                                res.attrs["name"]))
                    if res.meta.get("identity_name"):
                        names.update(*pm.name_entry(pm.NAME_IDENTITY, res.attrs["identity"],
                                                    res.meta["identity_name"]))
                    results.append(None)
                except OSError as exc:
                    results.append(exc)
        self.ctx.count_write(len(resources))
        return results

    def delete(self, resources: Sequence[Resource]) -> list[Exception | None]:
        if pm.loaded(self.scope):
            with pm.open_map(self.scope, "ipcache") as ipcache:
                for res in resources:
                    ipcache.delete(pm.prefix_key(res.meta["cidr"]))
        self.ctx.count_write(len(resources))
        return [None for _r in resources]


class PolicyType(StepwiseType):
    """One endpoint's entries in the policy map, and its two tc filters."""

    kind = "policy"
    disruption_of: ClassVar[Mapping[str, str]] = {"create": "default deny where selected",
                                                  "update": "verdicts change", "replace": "verdicts change",
                                                  "delete": "endpoint open"}

    def __init__(self, ctx: KernelContext, scope: str, filters: Filters):
        super().__init__(ctx)
        self.scope = scope
        self.filters = filters

    def disruption(self, action: str, changed: Sequence[str], before: Resource | None,
                   after: Resource | None) -> str:
        """The verdict change plus the number of map entries the change writes or removes."""
        old = entries_from_meta(before.meta["_entries"]) if before else {}
        new = entries_from_meta(after.meta["_entries"]) if after else {}
        touched = sum(1 for k, v in new.items() if old.get(k) != v) + len(old.keys() - new.keys())
        entries = f"{touched} map {'entry' if touched == 1 else 'entries'}"
        if action == "update" and list(changed) == ["attached"]:
            return f"filters re-attached, {entries}"
        return f"{self.disruption_of.get(action, 'verdicts change')}, {entries}"

    def dependencies(self, resource: Resource) -> list[Dependency]:
        """The programs and the link; the L7 proxy (when there is one) serves before entries redirect to it."""
        interface = resource.meta.get("host_interface")
        return [Dependency(POLICY_PROGRAM), *([Dependency(f"link.{interface}")] if interface else []),
                Dependency(L7_PROXY, lifetime=False)]

    def read(self, query: Query) -> list[Resource]:
        if not pm.loaded(self.scope):
            return []
        identities, rules = _names_of(self.scope)
        for res in query.of_kind(self.kind):
            identities.update({int(k): v for k, v in res.meta["_names"]["identities"].items()})
            rules.update({int(k): v for k, v in res.meta["_names"]["rules"].items()})
        links = self.ctx.link_names()
        interfaces = {r.meta["host_interface"]: r.address.split(".", 1)[1] for r in query.of_kind(self.kind)}
        recorded = {int(i): name for i, name in self.ctx.store.load(RECORD).items()}
        by_index: dict[int, dict] = {}
        with pm.open_map(self.scope, "policy") as policy:
            for key, value in policy.items():
                index, entry, verdict = pm.unpack_policy(key, value)
                by_index.setdefault(index, {})[entry] = verdict
        redirected: dict[int, list[str]] = {}
        with pm.open_map(self.scope, "endpoints") as endpoints:
            for key, index in endpoints.items():
                redirected.setdefault(index, []).append(pm.address_text(bytes(key.addr)))
        found = []
        for index, entries in sorted(by_index.items()):
            interface = links.get(index, "")
            endpoint = interfaces.get(interface) or recorded.get(index) or f"ifindex-{index}"
            found.append(policy_resource(endpoint, interface, entries, identities, rules,
                                         bool(interface) and self.filters.attached(interface), index,
                                         redirected.get(index, [])))
        return found

    def _index(self, res: Resource) -> int:
        index = self.ctx.index_of(res.meta["host_interface"])
        if index is None:
            raise NetxError(f"{res.address}: interface {res.meta['host_interface']} does not exist")
        return index

    def create(self, resources: Sequence[Resource]) -> list[Exception | None]:
        """Every endpoint's entries (and its L7 redirects) in one map batch, both filters of every endpoint in
        netlink batches, the record once."""
        results: list[Exception | None] = [None] * len(resources)
        indexes: dict[int, int] = {}
        for slot, res in enumerate(resources):
            try:
                indexes[slot] = self._index(res)
            except NetxError as exc:
                results[slot] = exc
        try:
            self._write_all([(indexes[slot], {}, resources[slot]) for slot in indexes])
            self._redirect_all([(indexes[slot], [], resources[slot].attrs["redirected"]) for slot in indexes])
        except OSError as exc:
            return [results[slot] or exc for slot in range(len(resources))]
        attached = self.filters.attach_all([resources[slot].meta["host_interface"] for slot in indexes])
        for slot, error in zip(indexes, attached, strict=True):
            results[slot] = error
        recorded = self.ctx.store.load(RECORD)
        recorded.update({str(indexes[slot]): resources[slot].address.split(".", 1)[1] for slot in indexes
                         if results[slot] is None})
        self.ctx.store.save(RECORD, recorded)
        return results

    def _update(self, before: Resource, after: Resource) -> None:
        """``before`` is the live resource (or, in a rollback, the desired one the apply wrote): its entries
        are what the map holds for the endpoint."""
        index = self._index(after)
        previous = before.meta.get("ifindex") or index
        if previous != index:  # the veth was re-created: the old ifindex's entries go
            self._clear(previous, entries_from_meta(before.meta["_entries"]))
        self._write(index, entries_from_meta(before.meta["_entries"]) if previous == index else {}, after)
        self._redirect(index, before.attrs.get("redirected", []), after.attrs["redirected"])
        if not self.filters.attached(after.meta["host_interface"]):
            self.filters.attach(after.meta["host_interface"])

    def _write(self, index: int, current: dict, res: Resource) -> None:
        self._write_all([(index, current, res)])

    def _write_all(self, writes: Sequence[tuple[int, dict, Resource]]) -> None:
        """For each (ifindex, entries the map holds, resource): write the entries that differ and remove the
        ones no longer wanted, every endpoint in one batch; the names first (each once)."""
        named = {}
        for _index, _current, res in writes:
            named.update({(pm.NAME_RULE, int(n)): t for n, t in res.meta["_names"]["rules"].items()})
            named.update({(pm.NAME_IDENTITY, int(n)): t for n, t in res.meta["_names"]["identities"].items()})
        with pm.open_map(self.scope, "names") as names:
            for (kind, number), text in named.items():
                names.update(*pm.name_entry(kind, number, text))
        changed, gone = [], []
        for index, current, res in writes:
            wanted = entries_from_meta(res.meta["_entries"])
            changed += [pm.policy_entry(index, key, verdict) for key, verdict in wanted.items()
                        if current.get(key) != verdict]
            gone += [pm.policy_entry(index, key)[0] for key in current.keys() - wanted.keys()]
        with pm.open_map(self.scope, "policy") as policy:
            policy.update_batch(changed)
            for key in gone:
                policy.delete(key)
        self.ctx.count_write(len(changed) + len(gone))

    def _redirect(self, index: int, current: list[str], wanted: list[str]) -> None:
        self._redirect_all([(index, current, wanted)])

    def _redirect_all(self, redirects: Sequence[tuple[int, list[str], list[str]]]) -> None:
        """For each (ifindex, addresses the map holds, addresses wanted): the endpoint's addresses whose L7
        ingress redirect a packet's first hop on the node applies, every endpoint with the map opened once."""
        if not any(current or wanted for _index, current, wanted in redirects):
            return
        writes = 0
        with pm.open_map(self.scope, "endpoints") as endpoints:
            for index, current, wanted in redirects:
                for address in wanted:
                    endpoints.update(pm.endpoint_key(address), index)
                gone = set(current) - set(wanted)
                for address in gone:
                    endpoints.delete(pm.endpoint_key(address))
                writes += len(wanted) + len(gone)
        self.ctx.count_write(writes)

    def _clear(self, index: int, entries: dict) -> None:
        with pm.open_map(self.scope, "policy") as policy:
            for key in entries:
                policy.delete(pm.policy_entry(index, key)[0])

    def _delete(self, res: Resource) -> None:
        index = res.meta.get("ifindex") or self._index(res)
        if pm.loaded(self.scope):
            self._clear(index, entries_from_meta(res.meta["_entries"]))
            self._redirect(index, res.attrs.get("redirected", []), [])
        interface = self.ctx.link_names().get(index)
        if interface:
            self.filters.detach(interface)
        recorded = self.ctx.store.load(RECORD)
        recorded.pop(str(index), None)
        self.ctx.store.save(RECORD, recorded)
        self.ctx.count_write(len(res.meta["_entries"]))


def policy_types(ctx: KernelContext) -> list[Any]:
    """The policy datapath's types for one namespace (its scope names the pin folder)."""
    filters = Filters(ctx, ctx.scope)
    return [PolicyProgramType(ctx, ctx.scope, filters), IpcacheType(ctx, ctx.scope, filters),
            PolicyType(ctx, ctx.scope, filters), *l7_types(ctx, filters)]

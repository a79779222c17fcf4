"""Resource types of the policy datapath: programs and maps (``policydp``), ipcache prefixes
(``ipcache``) and per-endpoint policy entries with their tc filters (``policy``).

Pins live under ``/sys/fs/bpf/netx/<scope>/policy/`` (``maps-VERSION``, ``prog-VERSION``: the shared
loader's layout). The filters are named ``netx-pol-*`` and sit at the priorities of the tc chaining
contract: the veth's ingress hook (the endpoint's egress policy) at 200 after the service LB, its egress
hook (the endpoint's ingress policy) at 100 before the LB's reverse NAT.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pyroute2.netlink.exceptions import NetlinkError

from netplanx.engine.resource import Dependency, Resource
from netplanx.errors import NetxError
from netplanx.policy.entries import BUILTIN_RULES
from netplanx.policy.resources import DATAPATH, datapath_resource, entries_from_meta, ipcache_resource, policy_resource
from netplanx.providers.bpf import policy_maps as pm
from netplanx.providers.bpf.loader import HOOKS, Loaded, load, remove_pins, remove_scope
from netplanx.providers.kernel.base import StepwiseType
from netplanx.providers.kernel.context import KernelContext

RECORD = "policy-endpoints"  # ifindex -> endpoint name, so entries keep their name after the spec drops them
FILTERS = {  # hook -> (priority, name, program): the tc chaining contract with the service LB
    "ingress": (200, "netx-pol-egress", "from_endpoint"),
    "egress": (100, "netx-pol-ingress", "to_endpoint"),
}


def _names_of(scope: str) -> tuple[dict[int, str], dict[int, str]]:
    """Identity and rule names the datapath carries."""
    names = pm.read_names(scope)
    identities = {i: t for (kind, i), t in names.items() if kind == pm.NAME_IDENTITY}
    rules = {i: t for (kind, i), t in names.items() if kind == pm.NAME_RULE}
    return identities, rules


class Filters:
    """The two netx-pol filters of each endpoint, read and written with the namespace's netlink socket
    (one request per hook instead of a ``tc`` process per call: plans read 1,000 of them)."""

    def __init__(self, ctx: KernelContext, scope: str):
        self.ctx = ctx
        self.scope = scope
        self._programs: Loaded | None = None  # open for the process's life: attaching 1,000 links reuses them

    def attached(self, device: str) -> bool:
        """Both netx-pol filters are on the device at their priorities."""
        index = self._index(device)
        if index is None:
            return False
        for hook, (prio, name, _program) in FILTERS.items():
            try:
                found = self.ctx.ipr.get_filters(index=index, parent=HOOKS[hook])
            except NetlinkError:
                return False
            if not any(_filter_name(f) == name and f["info"] >> 16 == prio for f in found):
                return False
        return True

    def attach(self, device: str) -> None:
        """Attach (or replace in place, hitless) both filters with this version's programs."""
        if self._programs is None or self._programs.version != pm.POLICY.version:
            self._programs = load(pm.POLICY, self.scope)
        index = self._index(device)
        if index is None:
            raise NetxError(f"cannot attach the policy filters: interface {device} does not exist")
        try:
            self.ctx.ipr.tc("add", "clsact", index)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
        for hook, (prio, name, program) in FILTERS.items():
            self.ctx.ipr.tc("replace-filter", "bpf", index, ":1", fd=self._programs.fd(program), name=name,
                            parent=HOOKS[hook], prio=prio, classid=1, direct_action=True)
        self.ctx.count_write(2)

    def detach(self, device: str) -> None:
        index = self._index(device)
        if index is None:
            return
        for hook, (prio, name, _program) in FILTERS.items():
            found = self.ctx.ipr.get_filters(index=index, parent=HOOKS[hook])
            if any(_filter_name(f) == name and f["info"] >> 16 == prio for f in found):
                self.ctx.ipr.tc("del-filter", "bpf", index, ":1", parent=HOOKS[hook], prio=prio)
                self.ctx.count_write()

    def _index(self, device: str) -> int | None:
        found = self.ctx.ipr.link_lookup(ifname=device)
        return found[0] if found else None


def _filter_name(message: Any) -> str | None:
    options = message.get_attr("TCA_OPTIONS")
    return options.get_attr("TCA_BPF_NAME") if options else None


class DatapathType(StepwiseType):
    """The programs and pinned maps: compiled with bcc on create, or when the C source changed."""

    kind = "policydp"
    rank = 2
    disruption_of: ClassVar[Mapping[str, str]] = {"create": "hitless", "update": "hitless (programs swapped)",
                                                  "replace": "policy off briefly", "delete": "policy off"}

    def __init__(self, ctx: KernelContext, scope: str, filters: Filters):
        super().__init__(ctx)
        self.scope = scope
        self.filters = filters

    def preflight(self, desired: Sequence[Resource], live: Mapping[str, Resource]) -> list[str]:
        if not any(r.kind == self.kind for r in desired):
            return []
        if not os.path.ismount("/sys/fs/bpf"):
            return [f"{DATAPATH}: bpffs is not mounted at /sys/fs/bpf (fix: mount -t bpf bpf /sys/fs/bpf)"]
        try:
            import bcc  # noqa: F401
        except ImportError:
            return [f"{DATAPATH}: the bcc Python bindings are missing (apt-get install python3-bpfcc)"]
        return []

    def read(self, desired: Sequence[Resource]) -> list[Resource]:
        folder = pm.scope_dir(self.scope)
        if not folder.is_dir():
            return []
        programs = sorted(p.name.removeprefix("prog-") for p in folder.glob("prog-*"))
        maps = sorted(p.name.removeprefix("maps-") for p in folder.glob("maps-*"))
        return [datapath_resource(",".join(programs) or "(none)", ",".join(maps) or "(none)")]

    def _create(self, res: Resource) -> None:
        self._load()

    def _update(self, before: Resource, after: Resource) -> None:
        self._load()

    def _load(self) -> None:
        """Load this version (maps kept while bpf/policy.h is unchanged), move every attached endpoint onto
        it in place, then drop the pins of other versions."""
        load(pm.POLICY, self.scope).close()
        with pm.open_map(self.scope, "names") as names:
            for number, text in BUILTIN_RULES.items():
                names.update(*pm.name_entry(pm.NAME_RULE, number, text))
        for device in self._attached():
            self.filters.attach(device)
        keep = {pm.POLICY.prog_dir(self.scope).name, pm.POLICY.map_dir(self.scope).name}
        for folder in pm.scope_dir(self.scope).iterdir():
            if folder.name not in keep:
                remove_pins(folder)
        self.ctx.count_write()

    def _attached(self) -> list[str]:
        links = self.ctx.link_names()
        return [links[int(i)] for i in self.ctx.store.load(RECORD) if int(i) in links]

    def _delete(self, res: Resource) -> None:
        for device in self._attached():
            self.filters.detach(device)
        remove_scope(self.scope, pm.POLICY.name)
        self.ctx.store.remove(RECORD)
        self.ctx.count_write()


class IpcacheType(StepwiseType):
    kind = "ipcache"
    rank = 3
    disruption_of: ClassVar[Mapping[str, str]] = {"create": "hitless", "update": "verdicts change",
                                                  "replace": "verdicts change", "delete": "verdicts change"}

    def __init__(self, ctx: KernelContext, scope: str, filters: Filters):
        super().__init__(ctx)
        self.scope = scope
        self.filters = filters

    def dependencies(self, resource: Resource) -> list[Dependency]:
        return [Dependency(DATAPATH)]

    def read(self, desired: Sequence[Resource]) -> list[Resource]:
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
    rank = 4
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
        interface = resource.meta.get("host_interface")
        return [Dependency(DATAPATH), *([Dependency(f"link.{interface}")] if interface else [])]

    def read(self, desired: Sequence[Resource]) -> list[Resource]:
        if not pm.loaded(self.scope):
            return []
        identities, rules = _names_of(self.scope)
        for res in desired:
            if res.kind == self.kind:
                identities.update({int(k): v for k, v in res.meta["_names"]["identities"].items()})
                rules.update({int(k): v for k, v in res.meta["_names"]["rules"].items()})
        links = self.ctx.link_names()
        interfaces = {r.meta["host_interface"]: r.address.split(".", 1)[1] for r in desired if r.kind == self.kind}
        recorded = {int(i): name for i, name in self.ctx.store.load(RECORD).items()}
        by_index: dict[int, dict] = {}
        with pm.open_map(self.scope, "policy") as policy:
            for key, value in policy.items():
                index, entry, verdict = pm.unpack_policy(key, value)
                by_index.setdefault(index, {})[entry] = verdict
        found = []
        for index, entries in sorted(by_index.items()):
            interface = links.get(index, "")
            endpoint = interfaces.get(interface) or recorded.get(index) or f"ifindex-{index}"
            found.append(policy_resource(endpoint, interface, entries, identities, rules,
                                         bool(interface) and self.filters.attached(interface), index))
        return found

    def _index(self, res: Resource) -> int:
        found = self.ctx.ipr.link_lookup(ifname=res.meta["host_interface"])
        if not found:
            raise NetxError(f"{res.address}: interface {res.meta['host_interface']} does not exist")
        return found[0]

    def _create(self, res: Resource) -> None:
        index = self._index(res)
        self._write(index, {}, res)
        self.filters.attach(res.meta["host_interface"])
        recorded = self.ctx.store.load(RECORD)
        recorded[str(index)] = res.address.split(".", 1)[1]
        self.ctx.store.save(RECORD, recorded)

    def _update(self, before: Resource, after: Resource) -> None:
        """``before`` is the live resource (or, in a rollback, the desired one the apply wrote): its entries
        are what the map holds for the endpoint."""
        index = self._index(after)
        previous = before.meta.get("ifindex") or index
        if previous != index:  # the veth was re-created: the old ifindex's entries go
            self._clear(previous, entries_from_meta(before.meta["_entries"]))
        self._write(index, entries_from_meta(before.meta["_entries"]) if previous == index else {}, after)
        if not self.filters.attached(after.meta["host_interface"]):
            self.filters.attach(after.meta["host_interface"])

    def _write(self, index: int, current: dict, res: Resource) -> None:
        """Write the entries that differ and remove the ones no longer wanted; names first."""
        wanted = entries_from_meta(res.meta["_entries"])
        with pm.open_map(self.scope, "names") as names:
            for number, text in res.meta["_names"]["rules"].items():
                names.update(*pm.name_entry(pm.NAME_RULE, int(number), text))
            for number, text in res.meta["_names"]["identities"].items():
                names.update(*pm.name_entry(pm.NAME_IDENTITY, int(number), text))
        changed = [(k, v) for k, v in wanted.items() if current.get(k) != v]
        with pm.open_map(self.scope, "policy") as policy:
            policy.update_batch([pm.policy_entry(index, key, verdict) for key, verdict in changed])
            for key in current.keys() - wanted.keys():
                policy.delete(pm.policy_entry(index, key)[0])
        self.ctx.count_write(len(changed) + len(current.keys() - wanted.keys()))

    def _clear(self, index: int, entries: dict) -> None:
        with pm.open_map(self.scope, "policy") as policy:
            for key in entries:
                policy.delete(pm.policy_entry(index, key)[0])

    def _delete(self, res: Resource) -> None:
        index = res.meta.get("ifindex") or self._index(res)
        if pm.loaded(self.scope):
            self._clear(index, entries_from_meta(res.meta["_entries"]))
        interface = self.ctx.link_names().get(index)
        if interface:
            self.filters.detach(interface)
        recorded = self.ctx.store.load(RECORD)
        recorded.pop(str(index), None)
        self.ctx.store.save(RECORD, recorded)
        self.ctx.count_write(len(res.meta["_entries"]))


def policy_types(ctx: KernelContext, scope: str) -> list[Any]:
    """The policy provider's types for one namespace (``scope`` names its pin folder)."""
    filters = Filters(ctx, scope)
    return [DatapathType(ctx, scope, filters), IpcacheType(ctx, scope, filters), PolicyType(ctx, scope, filters)]

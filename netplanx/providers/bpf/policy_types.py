"""Resource types of the policy datapath: programs and maps (``policydp``), ipcache prefixes
(``ipcache``) and per-endpoint policy entries with their tc filters (``policy``).

Everything lives under ``/sys/fs/bpf/netx/<scope>/policy-v1/``; the filters are named ``netx-pol-*`` and
sit at the priorities of the tc chaining contract: the veth's ingress hook (the endpoint's egress policy)
at 200 after the service LB, its egress hook (the endpoint's ingress policy) at 100 before reverse NAT.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pyroute2.netlink.exceptions import NetlinkError

from netplanx.engine.resource import Dependency, Resource
from netplanx.errors import NetxError
from netplanx.policy.compile import BUILTIN_RULES
from netplanx.policy.resources import DATAPATH, datapath_resource, entries_from_meta, ipcache_resource, policy_resource
from netplanx.providers.bpf import policy_maps as pm
from netplanx.providers.kernel.base import StepwiseType
from netplanx.providers.kernel.context import KernelContext

RECORD = "policy-endpoints"  # ifindex -> endpoint name, so entries keep their name after the spec drops them
INGRESS_HOOK, EGRESS_HOOK = "ffff:fff2", "ffff:fff3"
FILTERS = {  # hook -> (priority, name, program)
    INGRESS_HOOK: (200, "netx-pol-egress", "from_endpoint"),
    EGRESS_HOOK: (100, "netx-pol-ingress", "to_endpoint"),
}


def _names_of(scope: str) -> tuple[dict[int, str], dict[int, str]]:
    """Identity and rule names the datapath carries."""
    if not (pm.pin_dir(scope) / "names").exists():
        return {}, {}
    names = pm.read_names(scope)
    identities = {i: t for (kind, i), t in names.items() if kind == pm.NAME_IDENTITY}
    rules = {i: t for (kind, i), t in names.items() if kind == pm.NAME_RULE}
    return identities, rules


class PolicyContext:
    """What the three types share: the namespace's pin scope and the filters found on links."""

    def __init__(self, ctx: KernelContext, scope: str):
        self.ctx = ctx
        self.scope = scope

    @property
    def loaded(self) -> bool:
        return (pm.pin_dir(self.scope) / "policy").exists()

    def program_fd(self, program: str) -> int:
        pins = sorted(pm.pin_dir(self.scope).glob(f"prog-{program.replace('_', '-')}-*"))
        if not pins:
            raise NetxError(f"the policy program {program} is not loaded (no pin under {pm.pin_dir(self.scope)})")
        return pm.obj_get(pins[-1])

    def attached(self, index: int) -> bool:
        """Both netx-pol filters are on the link."""
        for hook, (priority, name, _program) in FILTERS.items():
            try:
                filters = self.ctx.ipr.get_filters(index=index, parent=hook)
            except NetlinkError:
                return False
            if not any(_filter_name(f) == name and f["info"] >> 16 == priority for f in filters):
                return False
        return True

    def attach(self, index: int) -> None:
        try:
            self.ctx.ipr.tc("add", "clsact", index)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
        for hook, (priority, name, program) in FILTERS.items():
            fd = self.program_fd(program)
            try:
                self.ctx.ipr.tc("replace-filter", "bpf", index, ":1", fd=fd, name=name, parent=hook, prio=priority,
                                classid=1, direct_action=True)
            finally:
                os.close(fd)
        self.ctx.count_write(3)

    def detach(self, index: int) -> None:
        for hook, (priority, _name, _program) in FILTERS.items():
            try:
                self.ctx.ipr.tc("del-filter", "bpf", index, ":1", parent=hook, prio=priority)
            except NetlinkError as exc:
                if exc.code not in (errno.ENOENT, errno.EINVAL, errno.ENODEV):
                    raise
        try:
            if not any(self.ctx.ipr.get_filters(index=index, parent=h) for h in FILTERS):
                self.ctx.ipr.tc("del", "clsact", index)
        except NetlinkError:
            pass
        self.ctx.count_write(2)


def _filter_name(message: Any) -> str | None:
    options = message.get_attr("TCA_OPTIONS")
    return options.get_attr("TCA_BPF_NAME") if options else None


class DatapathType(StepwiseType):
    """The programs and pinned maps: compiled with bcc on create, or when the C source changed."""

    kind = "policydp"
    rank = 2
    disruption_of: ClassVar[Mapping[str, str]] = {"create": "hitless", "update": "hitless (programs swapped)",
                                                  "replace": "policy off briefly", "delete": "policy off"}

    def __init__(self, ctx: KernelContext, pol: PolicyContext):
        super().__init__(ctx)
        self.pol = pol

    def preflight(self, desired: Sequence[Resource], live: Mapping[str, Resource]) -> list[str]:
        if not any(r.kind == self.kind for r in desired):
            return []
        if not os.path.ismount(pm.BPF_ROOT):
            return [f"{DATAPATH}: bpffs is not mounted at {pm.BPF_ROOT} (fix: mount -t bpf bpf {pm.BPF_ROOT})"]
        try:
            import bcc  # noqa: F401
        except ImportError:
            return [f"{DATAPATH}: the bcc Python bindings are missing (apt-get install python3-bpfcc)"]
        return []

    def read(self, desired: Sequence[Resource]) -> list[Resource]:
        folder = pm.pin_dir(self.pol.scope)
        if not folder.is_dir():
            return []
        maps = [m for m in pm.MAPS if (folder / m).exists()]
        digests = {p.name.rsplit("-", 1)[1] for p in folder.glob("prog-*")}
        program = digests.pop() if len(digests) == 1 else ",".join(sorted(digests)) or "(none)"
        return [datapath_resource(program, maps)]

    def _create(self, res: Resource) -> None:
        self._load()

    def _update(self, before: Resource, after: Resource) -> None:
        self._load()

    def _load(self) -> None:
        from bcc import BPF

        folder = pm.pin_dir(self.pol.scope)
        folder.mkdir(parents=True, exist_ok=True)
        digest = pm.source_digest()
        program = BPF(src_file=str(pm.SOURCE_DIR / "policy.c").encode(),
                      cflags=[f'-DPIN="{folder}"', f"-I{pm.SOURCE_DIR}"])
        for name in pm.PROGRAMS:
            pin = pm.program_pin(self.pol.scope, name, digest)
            if not pin.exists():
                pm.obj_pin(program.load_func(name.encode(), BPF.SCHED_CLS).fd, pin)
        for old in folder.glob("prog-*"):
            if not old.name.endswith(digest):
                old.unlink()
        with pm.open_map(self.pol.scope, "names") as names:
            for number, text in BUILTIN_RULES.items():
                names.put(*pm.pack_name(pm.NAME_RULE, number, text))
        for index in self._attached():
            self.pol.attach(index)  # replace-filter: the new program takes over without a gap
        program.cleanup()
        self.ctx.count_write()

    def _attached(self) -> list[int]:
        links = self.ctx.link_names()
        return [int(i) for i in self.ctx.store.load(RECORD) if int(i) in links]

    def _delete(self, res: Resource) -> None:
        for index in self._attached():
            self.pol.detach(index)
        shutil.rmtree(pm.pin_dir(self.pol.scope), ignore_errors=True)
        with contextlib.suppress(OSError):  # other pins of this scope (services) may still be there
            pm.pin_dir(self.pol.scope).parent.rmdir()
        self.ctx.store.remove(RECORD)
        self.ctx.count_write()


class IpcacheType(StepwiseType):
    kind = "ipcache"
    rank = 3
    disruption_of: ClassVar[Mapping[str, str]] = {"create": "hitless", "update": "verdicts change",
                                                  "replace": "verdicts change", "delete": "verdicts change"}

    def __init__(self, ctx: KernelContext, pol: PolicyContext):
        super().__init__(ctx)
        self.pol = pol

    def dependencies(self, resource: Resource) -> list[Dependency]:
        return [Dependency(DATAPATH)]

    def read(self, desired: Sequence[Resource]) -> list[Resource]:
        if not self.pol.loaded:
            return []
        identities, _rules = _names_of(self.pol.scope)
        found = []
        with pm.open_map(self.pol.scope, "ipcache") as ipcache:
            for key, value in ipcache.items():
                cidr = pm.unpack_prefix(key)
                identity, name = pm.unpack_ip_value(value)
                found.append(ipcache_resource(cidr, identity, name, identities.get(identity, "")))
        return found

    def create(self, resources: Sequence[Resource]) -> list[Exception | None]:
        return self._write(resources)

    def update(self, pairs: Sequence[tuple[Resource, Resource]]) -> list[Exception | None]:
        return self._write([after for _before, after in pairs])

    def _write(self, resources: Sequence[Resource]) -> list[Exception | None]:
        results: list[Exception | None] = []
        with pm.open_map(self.pol.scope, "ipcache") as ipcache, pm.open_map(self.pol.scope, "names") as names:
            for res in resources:
                try:
                    ipcache.put(pm.pack_prefix(res.meta["cidr"]),
                                pm.pack_ip_value(res.attrs["identity"], res.attrs["name"]))
                    if res.meta.get("identity_name"):
                        names.put(*pm.pack_name(pm.NAME_IDENTITY, res.attrs["identity"], res.meta["identity_name"]))
                    results.append(None)
                except NetxError as exc:
                    results.append(exc)
        self.ctx.count_write(len(resources))
        return results

    def delete(self, resources: Sequence[Resource]) -> list[Exception | None]:
        if not self.pol.loaded:
            return [None for _r in resources]
        with pm.open_map(self.pol.scope, "ipcache") as ipcache:
            for res in resources:
                ipcache.remove(pm.pack_prefix(res.meta["cidr"]))
        self.ctx.count_write(len(resources))
        return [None for _r in resources]


class PolicyType(StepwiseType):
    """One endpoint's entries in the policy map, and its two tc filters."""

    kind = "policy"
    rank = 4
    disruption_of: ClassVar[Mapping[str, str]] = {"create": "default deny where selected",
                                                  "update": "verdicts change", "replace": "verdicts change",
                                                  "delete": "endpoint open"}

    def __init__(self, ctx: KernelContext, pol: PolicyContext):
        super().__init__(ctx)
        self.pol = pol

    def dependencies(self, resource: Resource) -> list[Dependency]:
        interface = resource.meta.get("host_interface")
        return [Dependency(DATAPATH), *([Dependency(f"link.{interface}")] if interface else [])]

    def read(self, desired: Sequence[Resource]) -> list[Resource]:
        if not self.pol.loaded:
            return []
        identities, rules = _names_of(self.pol.scope)
        for res in desired:
            if res.kind == self.kind:
                identities.update({int(k): v for k, v in res.meta["_names"]["identities"].items()})
                rules.update({int(k): v for k, v in res.meta["_names"]["rules"].items()})
        links = self.ctx.link_names()
        interfaces = {r.meta["host_interface"]: r.address.split(".", 1)[1] for r in desired if r.kind == self.kind}
        recorded = {int(i): name for i, name in self.ctx.store.load(RECORD).items()}
        by_index: dict[int, dict] = {}
        with pm.open_map(self.pol.scope, "policy") as policy:
            for key, value in policy.items():
                index, entry, verdict = pm.unpack_policy(key, value)
                by_index.setdefault(index, {})[entry] = verdict
        found = []
        for index, entries in sorted(by_index.items()):
            interface = links.get(index, "")
            endpoint = interfaces.get(interface) or recorded.get(index) or f"ifindex-{index}"
            attached = index in links and self.pol.attached(index)
            res = policy_resource(endpoint, interface, entries, identities, rules, attached, index)
            found.append(res)
        return found

    def _index(self, res: Resource) -> int:
        found = self.ctx.ipr.link_lookup(ifname=res.meta["host_interface"])
        if not found:
            raise NetxError(f"{res.address}: interface {res.meta['host_interface']} does not exist")
        return found[0]

    def _create(self, res: Resource) -> None:
        index = self._index(res)
        self._write(index, {}, res)
        self.pol.attach(index)
        recorded = self.ctx.store.load(RECORD)
        recorded[str(index)] = res.address.split(".", 1)[1]
        self.ctx.store.save(RECORD, recorded)

    def _update(self, before: Resource, after: Resource) -> None:
        index = self._index(after)
        if before.meta.get("ifindex") not in (None, 0, index):
            self._clear(before.meta["ifindex"], entries_from_meta(before.meta["_entries"]))
        self._write(index, entries_from_meta(before.meta["_entries"]) if before.meta.get("ifindex") == index else {},
                    after)
        if not self.pol.attached(index):
            self.pol.attach(index)

    def _write(self, index: int, current: dict, res: Resource) -> None:
        """Write the entries that differ and remove the ones no longer wanted; names first."""
        wanted = entries_from_meta(res.meta["_entries"])
        with pm.open_map(self.pol.scope, "names") as names:
            for number, text in res.meta["_names"]["rules"].items():
                names.put(*pm.pack_name(pm.NAME_RULE, int(number), text))
            for number, text in res.meta["_names"]["identities"].items():
                names.put(*pm.pack_name(pm.NAME_IDENTITY, int(number), text))
        with pm.open_map(self.pol.scope, "policy") as policy:
            for key, verdict in wanted.items():
                if current.get(key) != verdict:
                    policy.put(*pm.pack_policy(index, key, verdict))
            for key in current.keys() - wanted.keys():
                policy.remove(pm.pack_policy(index, key, current[key])[0])
        self.ctx.count_write(sum(1 for k, v in wanted.items() if current.get(k) != v)
                             + len(current.keys() - wanted.keys()))

    def _clear(self, index: int, entries: dict) -> None:
        with pm.open_map(self.pol.scope, "policy") as policy:
            for key, verdict in entries.items():
                policy.remove(pm.pack_policy(index, key, verdict)[0])

    def _delete(self, res: Resource) -> None:
        index = res.meta.get("ifindex") or self._index(res)
        if self.pol.loaded:
            self._clear(index, entries_from_meta(res.meta["_entries"]))
        if index in self.ctx.link_names():
            self.pol.detach(index)
        recorded = self.ctx.store.load(RECORD)
        recorded.pop(str(index), None)
        self.ctx.store.save(RECORD, recorded)
        self.ctx.count_write(len(res.meta["_entries"]))


def policy_types(ctx: KernelContext, scope: str) -> list[Any]:
    """The policy provider's types for one namespace (``scope`` names its pin folder)."""
    pol = PolicyContext(ctx, scope)
    return [DatapathType(ctx, pol), IpcacheType(ctx, pol), PolicyType(ctx, pol)]

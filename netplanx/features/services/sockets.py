"""``socklb.cgroup``: the socket programs attached to the workloads' cgroup v2 directory.

A process of that cgroup (or of a cgroup below it) that connect()s or sendmsg()s to a VIP goes straight to a
backend chosen in the service's Maglev row (the rows the packet programs use), in whatever network
namespace it runs; its packets carry the backend's address, so the packet programs neither translate nor
track them. Each hook is a BPF link pinned at /sys/fs/bpf/netx/SCOPE/lb/links/HOOK: it keeps the program
attached after netx exits, a new program version is swapped in place (BPF_LINK_UPDATE, the previous
version held until the apply is final, as bpfprog.lb does), and removing the pin detaches it. Links are
"multi" attachments: other programs on the same cgroup keep running.

The resource reads the links back: a link detached (``bpftool link detach``) or whose pin was removed is
missing from ``hooks``, and apply attaches it again. ``cgroup`` is the path below the cgroup v2 mount; an
absolute path in the spec is made relative when the plan is made.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from netplanx.engine.resource import Dependency, Query, Resource
from netplanx.features.base import StepwiseType
from netplanx.features.services.lbmaps import LB, SOCKET_HOOKS
from netplanx.features.services.services import PROGRAM_ADDRESS, LbContext
from netplanx.system.bpf.cgroup import (
    CgroupError,
    LinkInfo,
    cgroup2_root,
    cgroup_id,
    link_create,
    link_detach,
    link_info,
    link_update,
    open_cgroup,
)
from netplanx.system.bpf.loader import PIN_ROOT, pinned_versions
from netplanx.system.bpf.maps import MapError, obj_get, obj_pin
from netplanx.system.context import KernelContext

ADDRESS = "socklb.cgroup"
RECORD = "lb-sockets"  # the cgroup netx attached the programs to


def socket_resource(cgroup: str, version: str, owned: bool = True) -> Resource:
    """The socket programs of ``version`` on every hook of ``cgroup`` (desired); live: what each hook has."""
    return Resource("socklb", ADDRESS, {"cgroup": cgroup, "hooks": dict.fromkeys(SOCKET_HOOKS, version)}, owned)


def relative(cgroup: str, root: Path) -> str:
    """A cgroup as a path below the cgroup v2 mount (an absolute one outside it stays as it is)."""
    path = Path(cgroup)
    return str(path.relative_to(root)) if path.is_absolute() and path.is_relative_to(root) else cgroup


class SocketType(StepwiseType):
    kind = "socklb"
    replace_on = frozenset({"cgroup"})
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless: the cgroup's processes reach VIPs' backends directly from their next connect() or "
                  "sendmsg()",
        "update": "hitless (in-place program replace: BPF_LINK_UPDATE)",
        "replace": "hitless: detached from the old cgroup, attached to the new one (its processes' connected "
                   "sockets keep their backend)",
        "delete": "hitless: the cgroup's processes reach VIPs through the packet path again (connected sockets "
                  "keep their backend)"}

    def __init__(self, ctx: KernelContext, lb: LbContext):
        super().__init__(ctx)
        self.lb = lb
        self.links = PIN_ROOT / lb.scope / LB.name / "links"

    def dependencies(self, resource: Resource) -> list[Dependency]:
        """The programs (and with them the maps they read)."""
        return [Dependency(PROGRAM_ADDRESS)]

    def disruption(self, action: str, changed: Sequence[str], before: Resource | None,
                   after: Resource | None) -> str:
        """An update that only attaches missing hooks again (drift) says which."""
        if action == "update" and before is not None and after is not None:
            missing = sorted(set(after.attrs["hooks"]) - set(before.attrs["hooks"]))
            if missing:
                return f"hitless: socket hooks attached again ({', '.join(missing)})"
        return self.disruption_of.get(action, "hitless")

    def resolve(self, desired: Sequence[Resource]) -> list[Resource]:
        """Absolute cgroup paths made relative to the cgroup v2 mount (left alone when none is mounted)."""
        try:
            root = cgroup2_root()
        except CgroupError:
            return list(desired)
        return [res._replace(attrs={**res.attrs, "cgroup": relative(res.attrs["cgroup"], root)}) for res in desired]

    def preflight(self, desired: Sequence[Resource], live: Mapping[str, Resource]) -> list[str]:
        """The cgroup must be a directory of the cgroup v2 hierarchy, and not its root."""
        problems = []
        for res in desired:
            try:
                root = cgroup2_root()
            except CgroupError as exc:
                return [f"{res.address}: {exc.strerror}"]
            cgroup = relative(res.attrs["cgroup"], root)  # preflight sees the desired resources unresolved
            if cgroup == ".":
                problems.append(f"{res.address}: cgroup {res.attrs['cgroup']} is the root of the cgroup v2 "
                                "hierarchy: its programs would balance every process of the host (fix: the cgroup "
                                "that holds the workloads, below it)")
            elif Path(cgroup).is_absolute():
                problems.append(f"{res.address}: cgroup {cgroup} is not below the cgroup v2 mount {root} (fix: a "
                                f"path below {root})")
            elif not (root / cgroup / "cgroup.procs").is_file():
                problems.append(f"{res.address}: cgroup {cgroup} does not exist below the cgroup v2 mount {root} "
                                f"(fix: mkdir {root / cgroup}, and start the workloads in it)")
        return problems

    def read(self, query: Query) -> list[Resource]:
        """The links pinned in the scope's links folder, each hook with the version of its program."""
        recorded = self.ctx.store.load(RECORD).get("cgroup")
        if recorded is None and not self.links.exists():
            return []
        try:
            root = cgroup2_root()
        except CgroupError:
            return []
        known = {relative(r.attrs["cgroup"], root) for r in query.of_kind(self.kind)}  # the desired: unresolved
        paths = {cgroup_id(root / path): path for path in known | {recorded} - {None} if (root / path).is_dir()}
        versions = pinned_versions(LB, self.lb.scope)
        hooks: dict[str, str] = {}
        cgroup = recorded
        for pin in sorted(self.links.iterdir()) if self.links.exists() else []:
            info = _info(pin)
            if info is None or not info.cgroup_id or info.hook != pin.name:
                continue  # a link detached by hand (defunct), or not one netx pinned
            cgroup = paths.get(info.cgroup_id) or _find(root, info.cgroup_id) or f"cgroup id {info.cgroup_id}"
            hooks[info.hook] = versions.get(info.prog_id, ("unknown", ""))[0]
        if cgroup is None:
            return []
        return [Resource(self.kind, ADDRESS, {"cgroup": cgroup, "hooks": hooks})]

    def _create(self, res: Resource) -> None:
        """Attach every hook of ``res`` (a link there already gets the program swapped in place)."""
        cgroup = cgroup2_root() / res.attrs["cgroup"]
        self.links.mkdir(parents=True, exist_ok=True)
        self.ctx.store.save(RECORD, {"cgroup": res.attrs["cgroup"]})
        with open_cgroup(cgroup) as cgroup_fd:
            wanted = cgroup_id(cgroup)
            for hook, version in res.attrs["hooks"].items():
                program = self.lb.program(version).fd(SOCKET_HOOKS[hook])
                pin = self.links / hook
                info = _info(pin)
                if info is not None and info.cgroup_id == wanted:
                    fd = obj_get(pin)
                    try:
                        link_update(fd, program)
                    finally:
                        os.close(fd)
                else:
                    pin.unlink(missing_ok=True)  # defunct, or on another cgroup
                    fd = link_create(program, cgroup_fd, hook)
                    try:
                        obj_pin(fd, pin)
                    finally:
                        os.close(fd)
                self.ctx.count_write()

    def _update(self, before: Resource, after: Resource) -> None:
        self._create(after)

    def _delete(self, res: Resource) -> None:
        """Detach every link now (whoever else holds it) and remove its pin."""
        for pin in list(self.links.iterdir()) if self.links.exists() else []:
            try:
                fd = obj_get(pin)
            except MapError:
                continue
            try:
                link_detach(fd)
            except MapError:
                pass  # detached already
            finally:
                os.close(fd)
            pin.unlink(missing_ok=True)
            self.ctx.count_write()
        if self.links.exists():
            self.links.rmdir()
        self.ctx.store.remove(RECORD)


def _info(pin: Path) -> LinkInfo | None:
    """The link pinned at ``pin`` (None: no such pin)."""
    try:
        fd = obj_get(pin)
    except MapError:
        return None
    try:
        return link_info(fd)
    finally:
        os.close(fd)


def _find(root: Path, wanted: int) -> str | None:
    """The path below ``root`` of the cgroup with id ``wanted`` (a walk: only when netx's record is lost)."""
    for folder, _subfolders, _files in os.walk(root):
        if cgroup_id(Path(folder)) == wanted:
            return str(Path(folder).relative_to(root))
    return None

"""``bpfprog.lb``: the load balancer's programs of one version, pinned, with their maps.

An apply that brings a new version (bpf/lb.c or its header changed) keeps the previous one pinned until it
is final: a rollback, or a revert of an unconfirmed ``apply --confirm-timeout``, attaches it again in place
(its maps are still there). Then the versions no longer needed are removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from netplanx.engine.resource import Query, Resource
from netplanx.features.base import StepwiseType
from netplanx.features.ebpf import PinnedVersions, ebpf_missing
from netplanx.features.services.lbmaps import LB
from netplanx.features.services.services import PROGRAM_ADDRESS, LbContext
from netplanx.system.bpf.loader import remove_scope
from netplanx.system.context import KernelContext


def program_resource(version: str, maps: str) -> Resource:
    return Resource("bpfprog", PROGRAM_ADDRESS, {"version": version, "maps": maps})


class ProgramType(StepwiseType):
    """The program version in use (``version``) and its maps; versions held for a rollback are not shown."""

    kind = "bpfprog"
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless",
        "update": "hitless (new program version pinned; attachments replaced in place; the previous version "
                  "stays pinned until the apply is final, for a rollback)",
        "replace": "hitless", "delete": "hitless (pins removed; detached first)"}

    def __init__(self, ctx: KernelContext, lb: LbContext):
        super().__init__(ctx)
        self.lb = lb
        self.versions = PinnedVersions(LB, lb.scope, ctx.store)

    def preflight(self, desired: Sequence[Resource], live: Mapping[str, Resource]) -> list[str]:
        return ebpf_missing(PROGRAM_ADDRESS) if desired else []

    def disruption(self, action: str, changed: Sequence[str], before: Resource | None,
                   after: Resource | None) -> str:
        if action == "update" and "maps" in changed:
            return ("hitless for new connections: new map layout, services are rewritten into fresh maps; "
                    "established flows lose their conntrack entry and are re-hashed (to the same backend while "
                    "the backends are unchanged)")
        return self.disruption_of.get(action, "hitless")

    def read(self, query: Query) -> list[Resource]:
        versions, maps = self.versions.current("prog"), self.versions.current("maps")
        if not versions and not maps:
            return []
        return [program_resource(",".join(versions), ",".join(maps))]

    def _create(self, res: Resource) -> None:
        """Load the version ``res`` names (this source's, or in a rollback a pinned one) and hold the others."""
        self.lb.forget()
        self.lb.program(res.attrs["version"])
        self.versions.hold_others(res.attrs["version"], res.attrs["maps"])
        self.ctx.count_write()

    def _update(self, before: Resource, after: Resource) -> None:
        self._create(after)

    def finish(self) -> None:
        self.versions.release()

    def _delete(self, res: Resource) -> None:
        self.lb.forget()
        remove_scope(self.lb.scope, LB.name)
        self.versions.release()
        self.ctx.count_write()

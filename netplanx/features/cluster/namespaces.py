"""Named network namespaces netx creates (for endpoints), as resources.

A namespace carries no marker, so netx records the ones it created in its state directory (scoped to
the namespace it manages); it only ever deletes a namespace it recorded.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from netplanx.engine.resource import Query, Resource
from netplanx.features.base import KernelType
from netplanx.system import netns
from netplanx.system.context import KernelContext

RECORD = "namespaces"


def namespace_resource(name: str, purpose: str = "", owned: bool = True) -> Resource:
    """``netns.NAME``; ``purpose`` (such as ``endpoint web-1``) is recorded with it."""
    return Resource("netns", f"netns.{name}", {"name": name}, owned, {"purpose": purpose})


def owned_namespaces(ctx: KernelContext) -> dict[str, str]:
    """Namespaces netx created, with their recorded purpose."""
    return ctx.store.load(RECORD)


class NamespaceType(KernelType):
    kind = "netns"
    disruption_of: ClassVar[Mapping[str, str]] = {
        "create": "hitless", "update": "hitless", "replace": "traffic loss", "delete": "traffic loss",
    }

    def read(self, query: Query) -> list[Resource]:
        owned = owned_namespaces(self.ctx)
        names = {r.attrs["name"] for r in query.of_kind(self.kind)} | set(owned)
        return [namespace_resource(name, owned.get(name, ""), name in owned) for name in sorted(names)
                if netns.exists(name)]

    def create(self, resources: Sequence[Resource]) -> list[Exception | None]:
        return [self._run(["ip", "netns", "add", r.attrs["name"]], r, record=True) for r in resources]

    def update(self, pairs: Sequence[tuple[Resource, Resource]]) -> list[Exception | None]:
        """Only ownership changes in place (a namespace an interrupted apply created, or a rollback)."""
        for _before, after in pairs:
            owned = owned_namespaces(self.ctx)
            if after.owned:
                owned[after.attrs["name"]] = after.meta.get("purpose", "")
            else:
                owned.pop(after.attrs["name"], None)
            self.ctx.store.save(RECORD, owned)
        return [None for _ in pairs]

    def delete(self, resources: Sequence[Resource]) -> list[Exception | None]:
        return [self._run(["ip", "netns", "del", r.attrs["name"]], r, record=False) for r in resources]

    def _run(self, command: list[str], res: Resource, record: bool) -> Exception | None:
        self.ctx.forget(res.attrs["name"])
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return OSError(done.stderr.strip() or f"{' '.join(command)} failed")
        self.ctx.count_write()
        owned: dict[str, Any] = owned_namespaces(self.ctx)
        if record and res.owned:
            owned[res.attrs["name"]] = res.meta.get("purpose", "")
        else:
            owned.pop(res.attrs["name"], None)
        self.ctx.store.save(RECORD, owned)
        return None

"""Resources and resource types: what the planner diffs and what providers read and write.

A Resource is plain data (kind, address, attributes), the same for desired and live state; it never
holds a secret (a secret attribute is a file path plus a digest of its content), so plans, JSON and
saved plan files are safe to print and store. A
ResourceType describes one kind for the engine (which attributes force replacement, what depends on
what, what a change disrupts) and carries out create/update/delete against its target.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple


class Resource(NamedTuple):
    """One managed object. ``attrs`` are compared by the planner; ``meta`` is carried, never compared.

    Desired resources list only the attributes the spec pins; live resources list all of them.
    ``owned`` says whether netx created the live object (its marker is on it). A named tuple: plans
    build tens of thousands of these, and a tuple is the cheapest immutable record to build.
    """

    kind: str
    address: str
    attrs: Mapping[str, Any]
    owned: bool = True
    meta: Mapping[str, Any] = MappingProxyType({})

    def to_json(self, display: bool = False) -> dict[str, Any]:
        """Plain data; for ``display``, without the meta keys starting with '_' (kept only in saved plans)."""
        meta = {k: v for k, v in self.meta.items() if not k.startswith("_")} if display else dict(self.meta)
        return {"kind": self.kind, "address": self.address, "attrs": plain(self.attrs), "owned": self.owned,
                "meta": meta}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Resource:
        return cls(data["kind"], data["address"], data["attrs"], data.get("owned", True), data.get("meta", {}))

    def fingerprint(self) -> str:
        """A stable text of what matters about this object, to detect a change since a plan was saved."""
        return json.dumps([self.attrs, self.owned], sort_keys=True, default=str)


def plain(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A resource's attributes (or meta) as a dict to serialise: the very dict when it is one (resources are
    never written to; a copy of 10,000 of them costs milliseconds), else a copy (a read-only view)."""
    return mapping if type(mapping) is dict else dict(mapping)


class Dependency(NamedTuple):
    """What must exist first: the resource at ``address``, or (with ``matches``) the resources of ``kind``
    that ``matches`` accepts (the addresses that make a route's gateway reachable).

    ``lifetime``: the dependent dies with it (an address with its link; a route when the last address
    covering its gateway goes); otherwise only the order matters, and the dependent's attribute ``attr``
    (if any) is reset when it goes (a bridge port's master). ``outlives_down``: the dependent survives its
    target being taken down and up (an IPv4 address its link; see ``ResourceType.cycles``). A named tuple:
    plans build one per resource.
    """

    address: str = ""
    lifetime: bool = True
    attr: str = ""
    kind: str = ""
    matches: Callable[[Resource], bool] | None = None
    outlives_down: bool = False


@dataclass(frozen=True)
class Query:
    """What a read covers besides what a kind finds on its own: the ``desired`` resources (readers look
    them up by address, as rules do for a foreign rule sharing a priority) and named ``options`` (the
    sysctl keys adoption reads, the gobgpd API address ``netx show --bgp-api`` names)."""

    desired: Sequence[Resource] = ()
    options: Mapping[str, Any] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[Resource]:
        return list(self.by_kind.get(kind, ()))

    @functools.cached_property
    def by_kind(self) -> dict[str, list[Resource]]:
        """The desired resources by kind, sorted once for every reader of a plan (not once per kind)."""
        by_kind: dict[str, list[Resource]] = {}
        for res in self.desired:
            by_kind.setdefault(res.kind, []).append(res)
        return by_kind


class ResourceType:
    """One kind of resource. Subclasses set the class attributes and implement the operations."""

    kind: str = ""
    claims_on_update: bool = False  # an update makes netx the owner (else the live marker is kept)
    steps_per_call: int = 1024  # at most this many resources per create/update/delete call of the applier
    replace_on: frozenset[str] = frozenset()
    disruption_of: ClassVar[Mapping[str, str]] = {"create": "hitless", "update": "hitless", "replace": "traffic loss",
                                        "delete": "traffic loss"}

    def differs(self, desired: Resource, live: Resource) -> list[str]:
        """Attributes the desired resource pins that the live one does not match."""
        return [key for key, value in desired.attrs.items() if live.attrs.get(key) != value]

    def forces_replacement(self, desired: Resource, live: Resource, changed: Sequence[str]) -> list[str]:
        return [key for key in changed if key in self.replace_on]

    def dependencies(self, resource: Resource) -> Sequence[Dependency]:
        """What must exist before this resource, derived from its attributes (override per kind)."""
        return ()

    def requirements(self, resource: Resource) -> Sequence[Dependency]:
        """The kind's dependencies plus any the compiler recorded in ``meta['requires']``."""
        requires = resource.meta.get("requires")
        dependencies = self.dependencies(resource)
        return [*dependencies, *(Dependency(a) for a in requires)] if requires else dependencies

    def disruption(self, action: str, changed: Sequence[str], before: Resource | None,
                   after: Resource | None) -> str:
        return self.disruption_of.get(action, "hitless")

    def cycles(self, before: Resource, after: Resource, changed: Sequence[str]) -> str:
        """Why this in-place update takes with it what lives on the object ('': it does not), as the kernel
        takes a link down and up when it joins or leaves a bond or a VRF."""
        return ""

    def resolve(self, desired: Sequence[Resource]) -> list[Resource]:
        """The desired resources completed with what the spec refers to but does not hold (the digest of
        a secret in a file), read at plan time so that a changed file is a change: one for each of ``desired``,
        in its order, the very object where nothing was completed."""
        return list(desired)

    def preflight(self, desired: Sequence[Resource], live: Mapping[str, Resource]) -> list[str]:
        """Problems that make the desired resources impossible on this host (checked before planning)."""
        return []

    def read(self, query: Query) -> list[Resource]:
        """Every live resource of this kind."""
        raise NotImplementedError

    def create(self, resources: Sequence[Resource]) -> list[Exception | None]:
        """Create each resource; one result per resource (None on success), in order."""
        raise NotImplementedError

    def update(self, pairs: Sequence[tuple[Resource, Resource]]) -> list[Exception | None]:
        """Bring each live ``before`` to ``after`` in place."""
        raise NotImplementedError

    def delete(self, resources: Sequence[Resource]) -> list[Exception | None]:
        raise NotImplementedError

    def finish(self) -> None:
        """The apply is final (verified, and confirmed when it had to be; or rolled back): drop what this
        kind kept only so that a rollback could bring it back (a previous program version)."""

"""The planner: diff desired against live resources, of any kind, into an ordered Plan."""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Iterable, Mapping, Sequence

from netplanx.engine.plan import Change, Plan, Step
from netplanx.engine.resource import Dependency, Resource, ResourceType
from netplanx.errors import PlanError


def preflight(types: Mapping[str, ResourceType], desired: Mapping[str, Sequence[Resource]],
              live_index: Mapping[str, Resource]) -> None:
    """Raise PlanError with every reason the desired state (by kind) cannot exist on this host (``live_index``:
    the live resources by address)."""
    problems: list[str] = []
    for kind, rtype in types.items():
        problems += rtype.preflight(desired.get(kind, []), live_index)
    if problems:
        raise PlanError(problems)


def make_plan(types: Mapping[str, ResourceType], desired: Iterable[Resource],
              live: Iterable[Resource] | Mapping[str, Resource], scope: Collection[str] | None = None,
              claim: Collection[str] = (), keep: Sequence[str] = ()) -> Plan:
    """Compute the changes that turn ``live`` (resources, or resources by address) into ``desired``.

    Without ``scope`` only live objects netx owns may be deleted; unowned ones that the spec does not
    name are listed as unmanaged, and so are owned ones whose address matches a pattern of ``keep`` (the
    spec's ``unmanaged``). With ``scope`` (a rollback), exactly the addresses in it are brought to
    ``desired``, whoever owns them. ``claim``: addresses an interrupted apply was creating; an unmarked
    object found there is netx's (it died before marking it), so the plan marks it.
    """
    wanted = {r.address: r for r in desired}
    current = live if isinstance(live, Mapping) else {r.address: r for r in live}
    changes: dict[str, Change] = {}
    unmanaged: list[str] = []
    for address, want in wanted.items():
        have = current.get(address)
        if have is None:
            changes[address] = Change(address, want.kind, "create", None, want)
            continue
        if want.attrs == have.attrs and (have.owned or address not in claim):
            continue  # what every kind's ``differs`` would find: nothing (the common case, at C speed)
        rtype = types[want.kind]
        changed = rtype.differs(want, have)
        forced = rtype.forces_replacement(want, have, changed) if changed else []
        claimed = address in claim and not have.owned and not forced
        if forced:
            changes[address] = Change(address, want.kind, "replace", have, want, tuple(changed), tuple(forced))
        elif changed or claimed:
            owner = Resource(have.kind, have.address, have.attrs, True, have.meta) if claimed else have
            changes[address] = Change(address, want.kind, "update", have, _updated(rtype, want, owner, scope),
                                      (*changed, "owned") if claimed else tuple(changed),
                                      reason="an interrupted apply created it" if claimed else "")
    for address, have in current.items():
        if address in wanted:
            continue
        if scope is not None and address not in scope:
            continue
        if scope is not None or (have.owned and not any(fnmatch.fnmatchcase(address, p) for p in keep)):
            changes[address] = Change(address, have.kind, "delete", have, None)
        else:
            unmanaged.append(address)
    warnings = _cascade(types, changes, wanted, current)
    finished = [_with_disruption(types, c) for c in changes.values()]
    return Plan(sorted(finished, key=lambda c: c.address), _order(types, finished, wanted, current),
                warnings=warnings, unmanaged=sorted(unmanaged), desired=list(wanted.values()))


def _updated(rtype: ResourceType, want: Resource, have: Resource, scope: Collection[str] | None) -> Resource:
    """The after-state of an in-place update: it keeps the live ownership marker (netx owns what it
    created) unless the kind claims on update or this is a rollback, and what the live object carries
    (its protocol, its ifindex) unless the desired one says otherwise."""
    owned = want.owned if scope is not None or rtype.claims_on_update else have.owned
    return Resource(want.kind, want.address, want.attrs, owned, {**have.meta, **want.meta})


class _Graph:
    """The dependencies of resources, resolved: a dependency on an address (or on the resource that
    ``provides`` it, as a WireGuard device provides its link), or on every resource of a kind that a
    predicate accepts (resolved against the resources given, indexed once)."""

    def __init__(self, types: Mapping[str, ResourceType], *pools: Mapping[str, Resource]):
        self.types = types
        self.pools = pools
        self._by_kind: dict[str, list[Resource]] | None = None
        self._providers: dict[str, list[str]] | None = None
        self._matched: dict[tuple[str, object], list[str]] = {}

    def targets(self, dep: Dependency) -> list[str]:
        """The addresses ``dep`` names among the resources known here."""
        if dep.matches is None:
            if any(dep.address in pool for pool in self.pools):
                return [dep.address]
            return self._provided().get(dep.address, [])
        found = self._matched.get((dep.kind, dep.matches))  # kinds share predicates (one per gateway)
        if found is None:
            found = self._matched[dep.kind, dep.matches] = [r.address for r in self._of_kind(dep.kind)
                                                            if dep.matches(r)]
        return found

    def _of_kind(self, kind: str) -> list[Resource]:
        if self._by_kind is None:
            self._by_kind = {}
            seen: set[str] = set()
            for pool in self.pools:
                for res in pool.values():
                    if res.address not in seen:
                        seen.add(res.address)
                        self._by_kind.setdefault(res.kind, []).append(res)
        return self._by_kind.get(kind, [])

    def _provided(self) -> dict[str, list[str]]:
        """Address named in a resource's ``meta['provides']`` -> the resources that provide it."""
        if self._providers is None:
            self._providers = {}
            for pool in self.pools:
                for res in pool.values():
                    for address in res.meta.get("provides", ()):
                        if res.address not in self._providers.setdefault(address, []):
                            self._providers[address].append(res.address)
        return self._providers

    def requirements(self, res: Resource) -> list[Dependency]:
        return self.types[res.kind].requirements(res)


def _cascade(types: Mapping[str, ResourceType], changes: dict[str, Change], wanted: Mapping[str, Resource],
             current: Mapping[str, Resource]) -> list[str]:
    """Account for what the kernel does on its own when an object goes (or is taken down and up in place, as
    the type's ``cycles`` says): dependents die or are reset.

    A dependency on several objects (the addresses covering a route's gateway) is lost only when none of
    them remains."""
    why = {a: f"{a} is {'replaced' if c.action == 'replace' else 'deleted'}" for a, c in changes.items()
           if c.action in ("delete", "replace")}
    why.update({a: reason for a, c in changes.items() if c.action == "update" and c.before is not None
                and c.after is not None and (reason := types[c.kind].cycles(c.before, c.after, c.changed))})
    queue = list(why)
    if not queue:
        return []
    graph = _Graph(types, current)
    dependents: dict[str, list[tuple[Resource, Dependency, list[str]]]] = {}
    for res in current.values():
        for dep in graph.requirements(res):
            targets = graph.targets(dep)
            for target in targets:
                dependents.setdefault(target, []).append((res, dep, targets))
    warnings: list[str] = []
    seen = set(queue)
    gone: set[str] = set(queue)
    while queue:
        lost = queue.pop()
        cycled = changes[lost].action == "update"  # taken down and up in place
        for res, dep, targets in dependents.get(lost, []):
            if any(t not in gone for t in targets) or (cycled and dep.outlives_down):
                continue  # another object it depends on in the same way stays, or it survives
            existing = changes.get(res.address)
            want = wanted.get(res.address)
            if existing and existing.action in ("delete", "replace"):
                continue
            if want is None:
                if dep.lifetime:
                    warnings.append(f"{res.address} is not managed by netx and will be lost when {why[lost]}")
                continue
            reason = why[lost]
            if dep.lifetime:
                changed = existing.changed if existing else ()
                changes[res.address] = Change(res.address, res.kind, "replace", res, want, changed, (), reason=reason)
                if res.address not in seen:
                    seen.add(res.address)
                    gone.add(res.address)
                    why[res.address] = f"{res.address} is replaced"
                    queue.append(res.address)
            elif existing is None and dep.attr and not cycled:
                after = _updated(types[res.kind], want, res, None)
                changes[res.address] = Change(res.address, res.kind, "update", res, after, (dep.attr,),
                                              reason=reason)
    return warnings


def _with_disruption(types: Mapping[str, ResourceType], change: Change) -> Change:
    label = types[change.kind].disruption(change.action, change.changed, change.before, change.after)
    if label == change.disruption:
        return change
    return Change(change.address, change.kind, change.action, change.before, change.after, change.changed,
                  change.forces_replacement, label, change.reason)


def _order(types: Mapping[str, ResourceType], changes: Sequence[Change], wanted: Mapping[str, Resource],
           current: Mapping[str, Resource]) -> list[Step]:
    """Deletes first, dependents before what they depend on; then creates and updates, the other way.

    The order comes from the dependencies alone: a resource's level is the length of the longest chain
    of dependencies below it. Resources of one level do not depend on each other; they are listed in
    the order of their kinds in the registry, then by address, so plans read the same every time."""
    graph = _Graph(types, wanted, current)
    rank = {kind: position for position, kind in enumerate(types)}
    levels: dict[str, int] = {}

    def level(address: str) -> int:
        """Length of the longest dependency chain below ``address`` (cycles count once)."""
        found = levels.get(address)
        if found is None:
            levels[address] = 0  # provisional: breaks cycles
            res = wanted.get(address) or current.get(address)
            below = [t for d in graph.requirements(res) for t in graph.targets(d) if t != address] if res else []
            found = levels[address] = 1 + max(map(level, below)) if below else 0
        return found

    def key(change: Change) -> tuple[int, int, str]:
        return level(change.address), rank[change.kind], change.address

    removals = [c for c in changes if c.action in ("delete", "replace")]
    additions = [c for c in changes if c.action != "delete"]
    steps = [Step("delete", c) for c in sorted(removals, key=key, reverse=True)]
    steps += [Step("update" if c.action == "update" else "create", c) for c in sorted(additions, key=key)]
    return steps

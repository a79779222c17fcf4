"""A plan: the ordered changes between live and desired state, and its versioned JSON form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from netplanx.engine.resource import Resource, plain

PLAN_FORMAT = "netx-plan/1"
RECORDS_FORMAT = "netx-plan-records/1"
Action = Literal["create", "update", "replace", "delete"]
Operation = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class Change:
    """One resource's change. ``before`` is the live object, ``after`` the desired one."""

    address: str
    kind: str
    action: Action
    before: Resource | None
    after: Resource | None
    changed: tuple[str, ...] = ()
    forces_replacement: tuple[str, ...] = ()
    disruption: str = "hitless"
    reason: str = ""

    def to_json(self, display: bool = False) -> dict[str, Any]:
        return {
            "address": self.address, "kind": self.kind, "action": self.action,
            "changed": list(self.changed), "forces_replacement": list(self.forces_replacement),
            "disruption": self.disruption, "reason": self.reason,
            "before": self.before.to_json(display) if self.before else None,
            "after": self.after.to_json(display) if self.after else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Change:
        return cls(
            data["address"], data["kind"], data["action"],
            Resource.from_json(data["before"]) if data["before"] else None,
            Resource.from_json(data["after"]) if data["after"] else None,
            tuple(data["changed"]), tuple(data["forces_replacement"]), data["disruption"], data["reason"],
        )


@dataclass(frozen=True)
class Step:
    """One provider operation; a replace is a delete step and a create step."""

    operation: Operation
    change: Change


@dataclass
class Plan:
    """Changes in execution order, plus what the plan saw but leaves alone."""

    changes: list[Change]
    steps: list[Step]
    netns: str | None = None
    warnings: list[str] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)
    spec_digest: str = ""
    desired: list[Resource] = field(default_factory=list, repr=False)  # the whole desired state (not saved)

    @property
    def empty(self) -> bool:
        return not self.changes

    def summary(self) -> dict[str, int]:
        actions = [c.action for c in self.changes]
        return {
            "add": actions.count("create") + actions.count("replace"),
            "change": actions.count("update"),
            "destroy": actions.count("delete") + actions.count("replace"),
        }

    def to_json(self, display: bool = False) -> dict[str, Any]:
        """The netx-plan/1 document; ``display`` leaves out what only a saved plan needs."""
        return {
            "format": PLAN_FORMAT,
            "netns": self.netns,
            "spec_digest": self.spec_digest,
            "summary": self.summary(),
            "changes": [c.to_json(display) for c in self.changes],
            "steps": [{"operation": s.operation, "address": s.change.address} for s in self.steps],
            "warnings": self.warnings,
            "unmanaged": self.unmanaged,
        }

    def to_records(self) -> tuple[Any, ...]:
        """The plan as nested tuples of plain values, for netx's own records (the history keeps one per apply):
        what ``to_json`` holds but display-only parts, ~3x faster to build and to marshal at 10,000 changes."""
        return (RECORDS_FORMAT, self.netns, self.spec_digest,
                [(c.address, c.kind, c.action, _record(c.before), _record(c.after), c.changed, c.forces_replacement,
                  c.disruption, c.reason) for c in self.changes],
                [(s.operation, s.change.address) for s in self.steps], self.warnings, self.unmanaged)

    @classmethod
    def from_records(cls, records: tuple[Any, ...]) -> Plan:
        """The plan ``to_records`` gave."""
        form, netns, digest, changes_, steps_, warnings, unmanaged = records
        if form != RECORDS_FORMAT:
            raise ValueError(f"not a plan record ({form!r}; expected {RECORDS_FORMAT})")
        changes = [Change(address, kind, action, _resource(before), _resource(after), tuple(changed), tuple(forced),
                          disruption, reason)
                   for address, kind, action, before, after, changed, forced, disruption, reason in changes_]
        by_address = {c.address: c for c in changes}
        return cls(changes, [Step(operation, by_address[address]) for operation, address in steps_], netns,
                   list(warnings), list(unmanaged), digest)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        changes = [Change.from_json(c) for c in data["changes"]]
        by_address = {c.address: c for c in changes}
        steps = [Step(s["operation"], by_address[s["address"]]) for s in data["steps"]]
        return cls(changes, steps, data.get("netns"), list(data.get("warnings", [])),
                   list(data.get("unmanaged", [])), data.get("spec_digest", ""))


def _record(resource: Resource | None) -> tuple[Any, ...] | None:
    if resource is None:
        return None
    return resource.kind, resource.address, plain(resource.attrs), resource.owned, plain(resource.meta)


def _resource(record: tuple[Any, ...] | None) -> Resource | None:
    return None if record is None else Resource(*record)

"""The use cases behind the commands: plan a spec, apply a plan, read the live state.

A Session binds the engine to the resource types of every feature, in the namespace the process is in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netplanx.document.digest import spec_digest
from netplanx.document.loader import read_text
from netplanx.engine import faults
from netplanx.engine.applier import JOURNAL, Applier
from netplanx.engine.compare import mismatches
from netplanx.engine.plan import PLAN_FORMAT, Plan
from netplanx.engine.planner import make_plan, preflight
from netplanx.engine.resource import Query, Resource, ResourceType
from netplanx.errors import NetxError, StalePlanError
from netplanx.files import display
from netplanx.registry import FEATURES
from netplanx.spec.cache import SpecCache
from netplanx.system.context import KernelContext
from netplanx.system.lock import exclusive
from netplanx.system.state import StateStore


@dataclass
class Desired:
    resources: list[Resource]
    digest: str
    text: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)  # address patterns the plan never deletes


def load_desired(path: Path, node: str, cache: SpecCache | None = None) -> Desired:
    """Load and validate a spec file and compile it, for ``node`` when it describes a cluster.

    Raises SpecError (or PlanError for a node the cluster does not have). With a cache, a spec whose bytes
    were compiled for this node by this very code before is not parsed again.
    """
    return desired_from_text(read_text(path), display(path), node, cache)


def desired_from_text(text: str, source: str, node: str, cache: SpecCache | None = None) -> Desired:
    """As load_desired, for spec text that ``source`` names in error messages."""
    digest = spec_digest(text)
    key = spec_digest(f"{digest}/{node}")
    cached = cache.get(key) if cache else None
    if cached is not None:
        return Desired(cached[0], digest, text, cached[1], cached[2])
    from netplanx.spec.compile import compile_checks, compile_spec, compile_unmanaged  # pydantic: on a cache miss
    from netplanx.spec.validate import parse_spec

    spec, _document = parse_spec(text, source)
    resources, checks, unmanaged = compile_spec(spec, node), compile_checks(spec), compile_unmanaged(spec)
    if cache:
        cache.put(key, resources, checks, unmanaged)
    return Desired(resources, digest, text, checks, unmanaged)


class Session:
    """Providers of one namespace plus netx's records for it; the process is already inside it."""

    def __init__(self, netns: str | None, state_dir: Path):
        self.netns = netns
        self.store = StateStore(state_dir, netns)
        self.ctx = KernelContext(self.store)
        self.types: dict[str, ResourceType] = {t.kind: t for f in FEATURES for t in f.types(self.ctx)}

    def close(self) -> None:
        self.ctx.close()

    @property
    def writes(self) -> int:
        return self.ctx.writes

    def read_live(self, desired: Sequence[Resource] = (), options: Mapping[str, Any] | None = None) -> list[Resource]:
        """Every live resource of every kind (``desired``: what a plan wants; ``options``: what else to read)."""
        return self._read(Query(desired, options or {}))

    def _read(self, query: Query) -> list[Resource]:
        with self.ctx.snapshot():
            return [r for rtype in self.types.values() for r in rtype.read(query)]

    def plan(self, desired: Desired) -> Plan:
        query = Query(desired.resources)  # groups the desired resources by kind once, for every step below
        live = {r.address: r for r in self._read(query)}
        preflight(self.types, query.by_kind, live)
        wanted = self._resolve(desired.resources, query.by_kind)
        interrupted = self.interrupted() or {}
        plan = make_plan(self.types, wanted, live, claim=set(interrupted.get("creates", ())), keep=desired.unmanaged)
        plan.netns = self.netns
        plan.spec_digest = desired.digest
        return plan

    def _resolve(self, resources: Sequence[Resource], by_kind: Mapping[str, Sequence[Resource]]) -> Sequence[Resource]:
        """Desired resources completed by their kinds (secret digests read from their files now), in their order."""
        completed = {}
        for kind, group in by_kind.items():
            completed.update((r.address, r) for r, was in zip(self.types[kind].resolve(group), group, strict=True)
                             if r is not was)
        return [completed.get(r.address, r) for r in resources] if completed else resources

    def interrupted(self) -> dict[str, Any] | None:
        """The journal of an earlier apply that died before finishing, if any."""
        record = self.store.load(JOURNAL)
        if not record or _alive(int(record.get("pid", 0))):
            return None
        return record

    def forget_interrupted(self) -> None:
        """The live state matches the spec: an interrupted apply's journal has nothing left to tell."""
        if self.interrupted() is not None:
            self.store.remove(JOURNAL)

    def interrupted_apply(self) -> str | None:
        """A warning when an earlier apply died before finishing (its journal is still there)."""
        record = self.interrupted()
        if record is None:
            return None
        return (f"an earlier apply (pid {record.get('pid')}, spec {record.get('spec_digest') or '?'}) was "
                f"interrupted after {record.get('done', 0)} of {record.get('steps', '?')} steps; "
                "this run plans from the live state and converges")

    def lock(self, timeout: float) -> AbstractContextManager[bool]:
        """Serialise applies on this namespace (yields whether we had to wait)."""
        return exclusive(self.store.lock_path, timeout)

    def applier(self) -> Applier:
        return Applier(self.types, self.read_live, self.finish, self.store, faults.from_environment())

    def apply(self, plan: Plan, checks: Sequence[dict[str, Any]] = (),
              progress: Callable[[int, int], None] | None = None, final: bool = True) -> int:
        """Execute a plan (verified, post-conditions checked, rolled back on failure); the steps executed.
        ``final``: finish it at once (else it waits for a confirmation)."""
        from netplanx.workflow.postconditions import run_checks

        return self.applier().apply(plan, (lambda: run_checks(self, checks)) if checks else None, progress, final)

    def finish(self) -> None:
        """Drop what was kept only to undo an apply (previous program versions), unless an apply is still
        waiting for its confirmation: its revert may need them."""
        from netplanx.workflow import confirm

        if confirm.status(self.store) == confirm.WAITING:
            return
        for rtype in self.types.values():
            rtype.finish()

    def check_fresh(self, plan: Plan) -> None:
        """Refuse a saved plan when any resource it touches changed since it was computed."""
        if plan.netns != self.netns:
            raise StalePlanError(f"the saved plan is for namespace {plan.netns or 'host'}, "
                                 f"not {self.netns or 'host'}")
        interest = [r for c in plan.changes for r in (c.before, c.after) if r is not None]
        live = {r.address: r for r in self.read_live(interest)}
        wording = {"missing": "no longer exists", "present": "now exists", "different": "changed"}
        stale = [f"{m.address} {wording[m.problem]}"
                 for m in mismatches(self.types, [(c.address, c.before) for c in plan.changes], live, exact=True)]
        if stale:
            raise StalePlanError("the saved plan is stale, the live state changed since it was made: "
                                 + "; ".join(stale) + ". Run 'netx plan' again.")


def saved_plan(text: str, source: str) -> Plan | None:
    """The plan in ``text`` when it is a saved plan (JSON starting with '{'; a spec is YAML), else None."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise NetxError(f"{source}: not a readable netx plan ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
        raise NetxError(f"{source}: not a netx plan (expected format {PLAN_FORMAT})")
    return Plan.from_json(data)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

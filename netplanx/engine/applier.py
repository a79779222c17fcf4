"""The applier: execute a plan's steps in order, verify the result, and roll back on any failure."""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from netplanx.engine.compare import mismatches
from netplanx.engine.faults import Failpoint
from netplanx.engine.plan import Change, Plan, Step
from netplanx.engine.planner import make_plan
from netplanx.engine.resource import Resource, ResourceType
from netplanx.errors import ApplyError
from netplanx.system.state import StateStore

ReadLive = Callable[[Sequence[Resource]], list[Resource]]
JOURNAL = "journal"
NO_FAULT = Failpoint()
PROGRESS_EVERY = 0.5  # seconds between journal progress writes (each is an fsync; the count is only a hint)


class InjectedFault(Exception):
    """The failure a failpoint puts in place of a step."""


@dataclass
class StepFailure:
    index: int
    step: Step
    error: Exception

    def describe(self, total: int) -> str:
        return f"step {self.index + 1} of {total} ({self.step.operation} {self.step.change.address}) failed: " \
               f"{self.error}"


class Applier:
    """Carries out plans against the resource types; rolls back to the plan's before-states on failure."""

    def __init__(self, types: Mapping[str, ResourceType], read_live: ReadLive, finish: Callable[[], None],
                 store: StateStore | None = None, failpoint: Failpoint = NO_FAULT):
        """``finish``: what runs once an apply is final or rolled back (the kinds drop what they kept for a
        rollback). ``failpoint``: where to fail or die instead of executing a step (fault-injection tests)."""
        self.types = types
        self.read_live = read_live
        self.finish = finish
        self.store = store
        self.failpoint = failpoint
        self._record: dict[str, object] | None = None
        self._written = 0.0

    def apply(self, plan: Plan, post_check: Callable[[], list[str]] | None = None,
              progress: Callable[[int, int], None] | None = None, final: bool = True) -> int:
        """Execute every step, verify, then check the post-conditions; return the number of steps executed,
        or roll back and raise ApplyError. ``final``: nothing can undo the apply afterwards (else it waits
        for a confirmation, and the caller finishes it)."""
        self._journal({"pid": os.getpid(), "started": time.time(), "spec_digest": plan.spec_digest,
                       "steps": len(plan.steps), "done": 0,
                       "creates": [s.change.address for s in plan.steps if s.operation == "create"]})
        done, failure = self._execute(plan.steps, forward=True, progress=progress)
        if failure is not None:
            raise self._rollback(plan, done, failure.describe(len(plan.steps)))
        problems, lost = self._verify(plan)
        if problems:
            raise self._rollback(plan, done, "verification after apply failed: " + "; ".join(problems), lost)
        failed_checks = post_check() if post_check else []
        if failed_checks:
            raise self._rollback(plan, done, "post-condition failed: " + "; ".join(failed_checks))
        self._journal(None)
        if final:
            self.finish()
        return len(done)

    def _execute(self, steps: Sequence[Step], forward: bool,
                 progress: Callable[[int, int], None] | None = None) -> tuple[list[Step], StepFailure | None]:
        done: list[Step] = []
        position = 0
        cut = self.failpoint.step - 1 if forward and self.failpoint.step else None
        groups = itertools.groupby(enumerate(steps), key=lambda item: (
            item[1].change.kind, item[1].operation, item[0] == cut,
            item[0] // self.types[item[1].change.kind].steps_per_call))  # batches, yet progress to show
        for (kind, operation, _, _), group in groups:
            batch = [step for _, step in group]
            if position == cut:
                if self.failpoint.kill:
                    os.kill(os.getpid(), signal.SIGKILL)
                return done, StepFailure(position, batch[0], InjectedFault(f"injected fault at step {cut + 1}"))
            results = self._run(self.types[kind], operation, [s.change for s in batch])
            failure = None
            for offset, (step, error) in enumerate(zip(batch, results, strict=True)):
                if error is None:
                    done.append(step)
                elif failure is None:
                    failure = StepFailure(position + offset, step, error)
            position += len(batch)
            if forward:
                self._journal_progress(len(done))
            if progress:
                progress(position, len(steps))
            if failure is not None:
                return done, failure
        return done, None

    @staticmethod
    def _run(rtype: ResourceType, operation: str, changes: Sequence[Change]) -> list[Exception | None]:
        if operation == "create":
            return rtype.create([c.after for c in changes if c.after is not None])
        if operation == "update":
            return rtype.update([(c.before, c.after) for c in changes if c.before and c.after])
        return rtype.delete([c.before for c in changes if c.before is not None])

    def _verify(self, plan: Plan) -> tuple[list[str], list[Resource]]:
        """What differs from the plan's after-states, and from every other desired resource (a plan made
        from a spec knows them all: one the kernel took away on its own is caught too). The second list
        holds the desired resources the plan did not change that are missing or different now."""
        changed = {c.address for c in plan.changes}
        kept = [r for r in plan.desired if r.address not in changed]
        live = {r.address: r for r in self.read_live([*_resources_of(plan), *kept])}
        expected = [(c.address, c.after) for c in plan.changes] + [(r.address, r) for r in kept]
        found = mismatches(self.types, expected, live, exact=False)
        wording = {"missing": "is missing", "present": "still exists", "different": "differs in"}
        problems = [f"{m.address} {wording[m.problem]}" + (f" {', '.join(m.attrs)}" if m.attrs else "") for m in found]
        wanted = {r.address: r for r in kept}
        return problems, [wanted[m.address] for m in found if m.address in wanted]

    def restore(self, plan: Plan, lost: Sequence[Resource] = ()) -> tuple[Plan, StepFailure | None, Plan]:
        """Bring every address the plan touches back to its before-state (and ``lost``, resources the
        apply did not change that were there before, back as they were); the undo plan, the first failure
        and what still differs afterwards (empty when the host is back where it was)."""
        undo = self.undo_plan(plan, lost)
        _, failure = self._execute(undo.steps, forward=False)
        residual = self.undo_plan(plan, lost)
        if residual.empty:
            self.finish()
        return undo, failure, residual

    def undo_plan(self, plan: Plan, lost: Sequence[Resource] = ()) -> Plan:
        """The plan that brings every address ``plan`` touches (and ``lost``) back to its before-state."""
        before = [c.before for c in plan.changes if c.before is not None] + list(lost)
        scope = {c.address for c in plan.changes} | {r.address for r in lost}
        return make_plan(self.types, before, self.read_live([*_resources_of(plan), *lost]), scope)

    def _rollback(self, plan: Plan, done: Sequence[Step], cause: str, lost: Sequence[Resource] = ()) -> ApplyError:
        """Restore the before-states and say how that went: only what was verified afterwards."""
        undo, failure, residual = self.restore(plan, lost)
        if residual.empty:
            self._journal(None)
            note = (f" (a rollback step failed: {failure.describe(len(undo.steps))}; the state it was to make "
                    "is there all the same)") if failure else ""
            return ApplyError(f"{cause}\nRolled back {len(undo.steps)} step(s) undoing {len(done)} completed "
                              f"step(s); the host is back where it was (verified){note}.", restored=True)
        leftover = ", ".join(c.address for c in residual.changes)
        detail = f" (rollback {failure.describe(len(undo.steps))})" if failure else ""
        return ApplyError(f"{cause}\nROLLBACK INCOMPLETE{detail}: these resources differ from before the apply: "
                          f"{leftover}. Run 'netx plan' to see them.", restored=False)

    def _journal(self, record: dict[str, object] | None) -> None:
        self._record = record
        if self.store is None:
            return
        if record is None:
            self.store.remove(JOURNAL)
        else:
            self.store.save(JOURNAL, record)
            self._written = time.monotonic()

    def _journal_progress(self, done: int) -> None:
        """Record the steps done, at most every PROGRESS_EVERY seconds: what a rerun needs (the addresses
        it creates) is in the journal from the start; the count only tells a person how far it got."""
        if self._record is not None and time.monotonic() - self._written >= PROGRESS_EVERY:
            self._journal({**self._record, "done": done})


def _resources_of(plan: Plan) -> list[Resource]:
    return [r for c in plan.changes for r in (c.after, c.before) if r is not None]

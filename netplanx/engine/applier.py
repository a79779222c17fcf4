"""The applier: execute a plan's steps in order, verify the result, and roll back on any failure."""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from netplanx.engine.plan import Change, Plan, Step
from netplanx.engine.planner import make_plan
from netplanx.engine.resource import Resource, ResourceType
from netplanx.engine.state import StateStore
from netplanx.errors import ApplyError

ReadLive = Callable[[Sequence[Resource]], list[Resource]]
JOURNAL = "journal"
CHUNK = 1024  # steps per provider call: large enough to batch, small enough to show progress


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

    def __init__(self, types: Mapping[str, ResourceType], read_live: ReadLive, store: StateStore | None = None,
                 failpoint: int | None = None, crash: bool = False):
        """``failpoint``: a 1-based step number at which to fail instead of executing (fault-injection tests);
        with ``crash`` the process kills itself there instead (crash tests)."""
        self.types = types
        self.read_live = read_live
        self.store = store
        self.failpoint = failpoint
        self.crash = crash

    def apply(self, plan: Plan, post_check: Callable[[], list[str]] | None = None,
              progress: Callable[[int, int], None] | None = None) -> int:
        """Execute every step, verify, then check the post-conditions; return the number of steps executed,
        or roll back and raise ApplyError."""
        self._journal({"pid": os.getpid(), "started": time.time(), "spec_digest": plan.spec_digest,
                       "steps": len(plan.steps), "done": 0,
                       "creates": [s.change.address for s in plan.steps if s.operation == "create"]})
        done, failure = self._execute(plan.steps, forward=True, progress=progress)
        if failure is None:
            problems = self._verify(plan)
            if problems:
                message = "verification after apply failed: " + "; ".join(problems)
                raise self._rollback(plan, done, message)
            failed_checks = post_check() if post_check else []
            if failed_checks:
                raise self._rollback(plan, done, "post-condition failed: " + "; ".join(failed_checks))
        else:
            raise self._rollback(plan, done, failure.describe(len(plan.steps)))
        self._journal(None)
        return len(done)

    def _execute(self, steps: Sequence[Step], forward: bool,
                 progress: Callable[[int, int], None] | None = None) -> tuple[list[Step], StepFailure | None]:
        done: list[Step] = []
        position = 0
        cut = self.failpoint - 1 if forward and self.failpoint else None
        groups = itertools.groupby(enumerate(steps), key=lambda item: (
            item[1].change.kind, item[1].operation, item[0] == cut, item[0] // CHUNK))
        for (kind, operation, _, _), group in groups:
            batch = [step for _, step in group]
            if position == cut:
                if self.crash:
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

    def _verify(self, plan: Plan) -> list[str]:
        live = {r.address: r for r in self.read_live(_resources_of(plan))}
        problems = []
        for change in plan.changes:
            now = live.get(change.address)
            if change.after is None:
                if now is not None and now.owned:
                    problems.append(f"{change.address} still exists")
            elif now is None:
                problems.append(f"{change.address} is missing")
            else:
                differing = self.types[change.kind].differs(change.after, now)
                if differing:
                    problems.append(f"{change.address} differs in {', '.join(differing)}")
        return problems

    def restore(self, plan: Plan) -> tuple[Plan, StepFailure | None, Plan]:
        """Bring every address the plan touches back to its before-state; the undo plan, the first failure
        and what still differs afterwards (empty when the host is back where it was)."""
        before = [c.before for c in plan.changes if c.before is not None]
        scope = {c.address for c in plan.changes}
        interest = _resources_of(plan)
        undo = make_plan(self.types, before, self.read_live(interest), scope)
        _, failure = self._execute(undo.steps, forward=False)
        residual = make_plan(self.types, before, self.read_live(interest), scope)
        return undo, failure, residual

    def _rollback(self, plan: Plan, done: Sequence[Step], cause: str) -> ApplyError:
        """Restore the before-states and say how that went."""
        undo, failure, residual = self.restore(plan)
        if failure is None and residual.empty:
            self._journal(None)
            return ApplyError(f"{cause}\nRolled back {len(undo.steps)} step(s) undoing {len(done)} completed "
                              "step(s); the host is back where it was (verified).", restored=True)
        leftover = ", ".join(c.address for c in residual.changes) or "unknown"
        detail = f" (rollback {failure.describe(len(undo.steps))})" if failure else ""
        return ApplyError(f"{cause}\nROLLBACK INCOMPLETE{detail}: these resources differ from before the apply: "
                          f"{leftover}. Run 'netx plan' to see them.", restored=False)

    def _journal(self, record: dict[str, object] | None) -> None:
        if self.store is None:
            return
        if record is None:
            self.store.remove(JOURNAL)
        else:
            self.store.save(JOURNAL, record)

    def _journal_progress(self, done: int) -> None:
        if self.store is not None:
            record = self.store.load(JOURNAL)
            if record:
                record["done"] = done
                self.store.save(JOURNAL, record)


def _resources_of(plan: Plan) -> list[Resource]:
    return [r for c in plan.changes for r in (c.after, c.before) if r is not None]

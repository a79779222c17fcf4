"""``netx apply``, ``confirm`` and ``rollback``: plan under the lock, execute, confirm or revert, record."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from netplanx.cli.common import EXIT_ERROR, EXIT_OK, EXIT_PENDING, open_session, print_json
from netplanx.engine.plan import Plan
from netplanx.errors import ApplyError, NetxError, NotConfirmed
from netplanx.files import display
from netplanx.render.console import Output
from netplanx.render.human import render_plan
from netplanx.system.root import require_root

if TYPE_CHECKING:
    from netplanx.workflow.history import History
    from netplanx.workflow.session import Desired, Session


def cmd_apply(args: argparse.Namespace, out: Output) -> int:
    from netplanx.document.loader import read_text
    from netplanx.files import display
    from netplanx.spec.cache import SpecCache
    from netplanx.workflow.session import desired_from_text, saved_plan

    require_root()
    text = read_text(args.spec)
    saved = saved_plan(text, display(args.spec))
    if saved is not None:
        code, report, plan = apply_desired(args, out, None, saved)
    else:
        desired = desired_from_text(text, display(args.spec), args.node, SpecCache(args.state_dir))
        code, report, plan = apply_desired(args, out, desired)
    if args.json and report:
        print_json({**report, "plan": plan.to_json(display=True)})  # built only here: ~10 ms at 10,000 changes
    return code


def apply_desired(args: argparse.Namespace, out: Output, desired: Desired | None,
                  saved: Plan | None = None) -> tuple[int, dict[str, Any], Plan]:
    """Plan (or take the saved plan) under the lock, then execute it; every outcome goes to the history.
    Returns the exit code, the report ``--json`` prints besides the plan (result, steps, writes; empty when
    nothing was applied) and the plan.

    ``args.unattended`` (netx pull): with ``--confirm-timeout`` nobody confirms; the change is kept once it
    is verified and its post-conditions (if any) hold, and the watchdog reverts it if this process dies
    before that."""
    from netplanx.workflow.history import History

    session = open_session(args)
    history = History(args.state_dir, session.store.scope)
    plan: Plan | None = None
    try:
        with session.lock(args.lock_timeout) as waited:
            if waited and not args.json:
                out.print("Waited for another netx to finish on this namespace.")
            warning = session.interrupted_apply()
            if warning and not args.json:
                out.print(f"{out.paint('Warning:', '33')} {warning}")
            if saved is not None:
                plan = saved
                session.check_fresh(plan)
            else:
                plan = session.plan(desired)
            try:
                code, report = _execute(args, out, session, plan, desired.checks if desired else [])
            except ApplyError as exc:
                _remember(history, args, desired, plan, "rolled-back" if exc.restored else "failed", str(exc))
                raise
        if code == EXIT_PENDING:  # outside the lock: the watchdog needs it to revert
            code = _await_confirmation(args, out, session)  # NotConfirmed: the watchdog recorded the revert
        if code == EXIT_OK:
            _remember(history, args, desired, plan, "no-changes" if plan.empty else "applied")
        return code, report, plan
    finally:
        session.close()


def _remember(history: History, args: argparse.Namespace, desired: Desired | None, plan: Plan, result: str,
              message: str = "") -> None:
    history.record(netns=args.netns, node=args.node, spec_path=display(args.spec),
                   spec_digest=desired.digest if desired else plan.spec_digest,
                   spec_text=desired.text if desired else None, summary=plan.summary(), result=result,
                   message=message.splitlines()[0] if message else "", plan=plan)


def _execute(args: argparse.Namespace, out: Output, session: Session, plan: Plan,
             checks: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """Show the plan, ask, apply; the exit code and the report (empty when nothing was applied)."""
    quiet = getattr(args, "quiet", False)
    if plan.empty:
        session.forget_interrupted()
        session.finish()
        if quiet and not args.json:
            out.print("No changes.")
        elif not args.json:
            render_plan(plan, sys.stdout)
        return EXIT_OK, {"result": "no-changes", "writes": session.writes}
    if not args.json and not quiet:
        render_plan(plan, sys.stdout)
    if not args.auto_approve and not _confirmed(out):
        out.print("Apply cancelled; nothing was changed.")
        return EXIT_ERROR, {}
    timeout = getattr(args, "confirm_timeout", None)
    if timeout:
        code, steps = _try(args, out, session, plan, checks, timeout)
    else:
        code, steps = EXIT_OK, session.apply(plan, checks, _progress(args))
        if not args.json:
            summary = plan.summary()
            out.print(f"\nApply complete! Resources: {summary['add']} added, {summary['change']} changed, "
                      f"{summary['destroy']} destroyed ({steps} steps, verified).")
    return code, {"result": "applied", "steps": steps, "writes": session.writes}


def _progress(args: argparse.Namespace) -> Callable[[int, int], None] | None:
    """A step counter on the terminal for applies long enough to want one."""
    if args.json or getattr(args, "quiet", False) or not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        if total >= 100:
            sys.stderr.write(f"\r  applying: {done}/{total} steps" + ("\n" if done == total else ""))
            sys.stderr.flush()
    return show


def _try(args: argparse.Namespace, out: Output, session: Session, plan: Plan, checks: list[dict[str, Any]],
         timeout: float) -> tuple[int, int]:
    """Apply, then keep the change only if it is confirmed in time (or the post-conditions pass, or, for an
    unattended apply, it is verified); the exit code and the steps executed."""
    from netplanx.workflow import confirm

    confirm.arm(session.store, plan, timeout, args.netns, display(args.spec))
    try:
        steps = session.apply(plan, checks, _progress(args), final=False)
    except ApplyError:
        confirm.settle(session.store, confirm.CANCELLED)
        session.finish()
        raise
    if checks or getattr(args, "unattended", False):
        confirm.settle(session.store, confirm.CONFIRMED)
        session.finish()
        if not args.json:
            out.print("Applied; the post-conditions hold: confirmed." if checks else "Applied and verified: kept.")
        return EXIT_OK, steps
    return EXIT_PENDING, steps


def _await_confirmation(args: argparse.Namespace, out: Output, session: Session) -> int:
    from netplanx.workflow import confirm

    timeout = args.confirm_timeout
    deadline = confirm.start_clock(session.store)
    where = f" --netns {args.netns}" if args.netns else ""
    out.print(f"Applied. Keep it: press Enter, or run 'netx confirm{where}' within {timeout:g}s; otherwise the "
              "previous state is restored.")
    decision = confirm.wait_for_decision(session.store, deadline, sys.stdin.fileno() if sys.stdin.isatty() else None)
    if decision == confirm.CONFIRMED:
        with session.lock(args.lock_timeout):
            session.finish()
        out.print("Confirmed: the change is kept.")
        return EXIT_OK
    record = confirm.pending(session.store)
    if decision == confirm.REVERTED:
        raise NotConfirmed(f"not confirmed within {timeout:g}s: reverted, the host is back where it was "
                           "(verified).", restored=True)
    raise NotConfirmed(f"not confirmed within {timeout:g}s and the revert is INCOMPLETE: "
                     f"{', '.join(record.get('leftover', [])) or decision}", restored=False)


def cmd_confirm(args: argparse.Namespace, out: Output) -> int:
    from netplanx.system.state import StateStore
    from netplanx.workflow import confirm

    require_root()
    out.print(confirm.confirm(StateStore(args.state_dir, args.netns)))
    return EXIT_OK


def cmd_watchdog(args: argparse.Namespace, _out: Output) -> int:
    """The detached process behind --confirm-timeout (not for people)."""
    from netplanx.engine.plan import Plan
    from netplanx.system.state import StateStore
    from netplanx.workflow import confirm
    from netplanx.workflow.history import History

    store = StateStore(args.state_dir, args.netns)
    result = confirm.watchdog(store, lambda: open_session(args))
    if result in (confirm.REVERTED, confirm.REVERT_FAILED):
        plan = Plan.from_json(confirm.pending(store)["plan"])
        History(args.state_dir, store.scope).record(
            netns=args.netns, node=args.node, spec_path=confirm.pending(store).get("spec_path", ""),
            spec_digest=plan.spec_digest,
            spec_text=None, summary=plan.summary(), result="rolled-back" if result == confirm.REVERTED else "failed",
            message=f"not confirmed in time: {result}")
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace, out: Output) -> int:
    """Undo the last apply: every resource it changed goes back to the state it had before it (recorded in
    the history), whether or not that apply's spec set it. Rollbacks stack: each goes one apply back."""
    from netplanx.workflow.history import History

    require_root()
    history = History(args.state_dir, args.netns or "host")
    target = history.last_undoable()
    if target is None:
        raise NetxError("nothing to roll back: no apply recorded on this namespace changed anything that a "
                        "rollback has not undone already")
    recorded = history.plan_of(target)
    session = open_session(args)
    entry = {"netns": args.netns, "node": target.node, "spec_path": f"(rollback of #{target.number})",
             "spec_digest": "", "spec_text": None, "undoes": target.number}
    try:
        with session.lock(args.lock_timeout):
            plan = session.applier().undo_plan(recorded)
            plan.netns = args.netns
            if not args.json:
                out.print(f"Rolling back #{target.number} ({target.spec_path}): every resource it changed goes back "
                          "to its state before it.")
            try:
                code, report = _execute(args, out, session, plan, [])
            except ApplyError as exc:
                history.record(**entry, summary=plan.summary(), result="rolled-back" if exc.restored else "failed",
                               message=str(exc).splitlines()[0])
                raise
        if code == EXIT_OK:
            history.record(**entry, summary=plan.summary(), result="no-changes" if plan.empty else "applied")
        if args.json and report:
            print_json({**report, "plan": plan.to_json(display=True)})
        return code
    finally:
        session.close()


def _confirmed(out: Output) -> bool:
    if not sys.stdin.isatty():
        raise NetxError("refusing to apply without confirmation: stdin is not a terminal (use --auto-approve)")
    out.print("\nDo you want to perform these actions? Only 'yes' will be accepted.")
    return input("  Enter a value: ").strip() == "yes"

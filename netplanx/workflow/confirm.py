"""Confirm or revert, as ``netplan try`` does, across every provider.

Before an ``apply --confirm-timeout N`` changes anything, netx records the plan (with every before-state)
as pending and starts a watchdog in its own session, detached from the terminal. The change is kept
when someone confirms (Enter, or ``netx confirm`` from any shell) or the post-conditions pass; otherwise,
at the deadline, the watchdog restores the before-states, whether or not the shell that started the
apply is still alive.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from netplanx.engine.plan import Plan
from netplanx.errors import NetxError
from netplanx.system.inotify import FolderWatch
from netplanx.system.processes import start_time, watch_exit
from netplanx.system.state import StateStore

PENDING = "pending"
APPLY_BUDGET = 120.0  # seconds the apply itself may take before the confirmation time starts
WAITING, CONFIRMED, CANCELLED, REVERTED, REVERT_FAILED = "waiting", "confirmed", "cancelled", "reverted", \
    "revert-failed"


def pending(store: StateStore) -> dict[str, Any]:
    return store.load(PENDING)


def status(store: StateStore) -> str:
    return pending(store).get("status", "")


def _update(store: StateStore, **values: Any) -> None:
    record = pending(store)
    record.update(values)
    store.save(PENDING, record)


def arm(store: StateStore, plan: Plan, timeout: float, netns: str | None, spec_path: str) -> None:
    """Record the plan as pending and start the watchdog, before the first change."""
    if status(store) == WAITING:
        raise NetxError("an earlier apply is still waiting for confirmation: run 'netx confirm' or wait for it "
                        "to be reverted")
    store.save(PENDING, {"status": WAITING, "deadline": time.time() + APPLY_BUDGET + timeout, "timeout": timeout,
                         "plan": plan.to_json(), "apply": os.getpid(), "apply_started": start_time(os.getpid()),
                         "spec_path": spec_path})
    command = [sys.executable, "-m", "netplanx", "_watchdog", "--state-dir", str(store.root)]
    if netns:
        command += ["--netns", netns]
    watchdog = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    _update(store, watchdog=watchdog.pid)


def start_clock(store: StateStore) -> float:
    """The apply is done: the confirmation time starts now. Returns the deadline."""
    deadline = time.time() + float(pending(store)["timeout"])
    _update(store, deadline=deadline)
    return deadline


def settle(store: StateStore, result: str) -> None:
    """Confirmed or cancelled by the apply itself (post-conditions passed, or the apply failed)."""
    if status(store) == WAITING:
        _update(store, status=result)


def confirm(store: StateStore) -> str:
    """``netx confirm``: keep the pending change."""
    record = pending(store)
    if record.get("status") != WAITING:
        raise NetxError("nothing is waiting for confirmation" + (f" (the last one was {record['status']})"
                                                                 if record.get("status") else ""))
    _update(store, status=CONFIRMED)
    return f"Confirmed: the change is kept (watchdog {record.get('watchdog', '?')} stops)."


def wait_for_decision(store: StateStore, deadline: float, stdin_fd: int | None) -> str:
    """Wait until the change is confirmed or reverted. On a terminal, Enter confirms."""
    with FolderWatch(store.root) as watch:
        while True:
            also = (stdin_fd,) if stdin_fd is not None else ()
            decided = watch.wait(lambda: status(store) not in (WAITING, "reverting"),
                                 max(deadline, time.time()) + APPLY_BUDGET, also=also)
            if decided:
                return status(store)
            if stdin_fd is not None and os.read(stdin_fd, 1024) != b"" and status(store) == WAITING:
                _update(store, status=CONFIRMED)
                return CONFIRMED
            if stdin_fd is None or time.time() > deadline + APPLY_BUDGET:
                return status(store)
            stdin_fd = None  # the terminal closed: only the watchdog decides now


def watchdog(store: StateStore, session_factory: Any, lock_timeout: float = 120.0) -> str:
    """The detached process: wait for a decision until the deadline, then restore the before-states. The
    apply process is followed too: gone without a decision (killed, its terminal closed), the change is
    reverted at once."""
    record = pending(store)
    exited = watch_exit(int(record.get("apply", 0)), record.get("apply_started"))
    if exited is None and status(store) != WAITING:
        return _decided(store, session_factory, lock_timeout)  # decided and ended before this watchdog was up
    try:
        with FolderWatch(store.root) as watch:
            while exited is not None:
                deadline = float(pending(store).get("deadline", 0))

                def moved(seen: float = deadline) -> bool:
                    now = pending(store)
                    return now.get("status") != WAITING or float(now.get("deadline", 0)) != seen

                if watch.wait(moved, deadline, also=(exited,)):
                    if status(store) != WAITING:
                        return _decided(store, session_factory, lock_timeout)
                    continue  # the clock started: wait for the new deadline
                if status(store) != WAITING:
                    return _decided(store, session_factory, lock_timeout)
                break  # the deadline passed, or the apply is gone: revert
    finally:
        if exited is not None:
            os.close(exited)
    _update(store, status="reverting")
    plan = Plan.from_json(pending(store)["plan"])
    session = session_factory()
    try:
        with session.lock(lock_timeout):
            _undo, failure, residual = session.applier().restore(plan)
            if failure is None and residual.empty:
                session.forget_interrupted()  # an apply killed mid-way left its journal: nothing left to tell
    finally:
        session.close()
    result = REVERTED if failure is None and residual.empty else REVERT_FAILED
    _update(store, status=result, reverted_at=time.time(),
            leftover=[c.address for c in residual.changes])
    return result


def _decided(store: StateStore, session_factory: Any, lock_timeout: float) -> str:
    """A decision was made: a kept change drops what was kept to revert it (unless a newer apply waits for
    its own)."""
    if status(store) == CONFIRMED:
        session = session_factory()
        try:
            with session.lock(lock_timeout):
                session.finish()
        finally:
            session.close()
    return status(store)

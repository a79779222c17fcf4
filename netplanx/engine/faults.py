"""Fault injection for tests (never set in production): make a step of an apply fail, or kill the apply.

``NETX_FAILPOINT_STEP=N`` fails step N (1-based) instead of executing it, to exercise rollback; with
``NETX_FAILPOINT_KILL=1`` the process SIGKILLs itself there instead (crash tests).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

STEP_VARIABLE = "NETX_FAILPOINT_STEP"
KILL_VARIABLE = "NETX_FAILPOINT_KILL"


@dataclass(frozen=True)
class Failpoint:
    step: int | None = None  # 1-based step that fails
    kill: bool = False  # SIGKILL the process at that step instead of failing it


def from_environment() -> Failpoint:
    step = os.environ.get(STEP_VARIABLE)
    return Failpoint(int(step) if step else None, os.environ.get(KILL_VARIABLE) == "1")

"""Post-conditions: what must hold after an apply for the change to be kept (else it is undone)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from netplanx.registry import FEATURES


def run_checks(session: Any, checks: Sequence[dict[str, Any]]) -> list[str]:
    """The checks that failed, each in words; run inside the namespace the session manages. Each kind of
    check is run by the feature that declares it."""
    runners = {p.type: p.run for feature in FEATURES for p in feature.postconditions()}
    return [failure for check in checks for failure in runners[check["type"]](session, check)]

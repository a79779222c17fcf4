"""Asking again for what nothing signals: a daemon's socket that listens a moment after its file appears, a
worker that takes over a listener. The question is asked at once, then after pauses that grow."""

from __future__ import annotations

import time
from collections.abc import Iterator


def growing_pauses(within: float, first: float, longest: float) -> Iterator[None]:
    """Yield at once, then after pauses doubling from ``first`` to ``longest`` seconds, while the next yield
    comes within ``within`` seconds of the first (the caller asks once each time and stops when answered)."""
    deadline = time.monotonic() + within
    pause = first
    yield
    while time.monotonic() + pause <= deadline:
        time.sleep(pause)
        pause = min(pause * 2, longest)
        yield

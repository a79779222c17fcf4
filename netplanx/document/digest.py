"""The digest that names a spec's exact bytes in plans, the spec cache and history."""

from __future__ import annotations

import hashlib


def spec_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]

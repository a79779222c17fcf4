"""A cache of compiled specs, keyed by the digest of the spec bytes and the netx version.

Validation and compilation depend only on those two, so a spec planned again (drift checks from a
timer, a plan followed by an apply) skips YAML parsing and validation: at 10,000 routes that is most of
a no-op plan. Entries live under the state directory (0700), one 0600 JSON file each, newest kept.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from netplanx import __version__
from netplanx.engine.resource import Resource

KEEP = 16


class SpecCache:
    def __init__(self, root: Path):
        self.root = root / "spec-cache"

    def _path(self, digest: str) -> Path:
        return self.root / f"{digest}-{__version__}.json"

    def get(self, digest: str) -> list[Resource] | None:
        try:
            data = json.loads(self._path(digest).read_text())
        except (OSError, ValueError):
            return None
        return [Resource(r["kind"], r["address"], r["attrs"], r["owned"], r["meta"]) for r in data]

    def put(self, digest: str, resources: list[Resource]) -> None:
        try:
            os.makedirs(self.root.parent, mode=0o700, exist_ok=True)
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            target = self._path(digest)
            temporary = target.with_suffix(f".{os.getpid()}.tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump([r.to_json() for r in resources], handle, separators=(",", ":"))
            os.replace(temporary, target)
            self._prune()
        except OSError:
            pass  # a cache that cannot be written only costs time

    def _prune(self) -> None:
        entries = sorted(self.root.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in entries[KEEP:]:
            stale.unlink(missing_ok=True)

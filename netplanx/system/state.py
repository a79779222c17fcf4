"""netx's own records under the state directory (default /var/lib/netx): private, written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from netplanx.files import write_atomically

DEFAULT_STATE_DIR = Path("/var/lib/netx")


class StateStore:
    """JSON records keyed by namespace; the directory is 0700 and every file 0600."""

    def __init__(self, root: Path, netns: str | None):
        self.root = root
        self.scope = netns or "host"
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        os.chmod(self.root, 0o700)

    @property
    def lock_path(self) -> Path:
        return self.root / f"{self.scope}.lock"

    def path(self, name: str) -> Path:
        return self.root / f"{self.scope}.{name}.json"

    def load(self, name: str) -> dict[str, Any]:
        try:
            return json.loads(self.path(name).read_text())
        except FileNotFoundError:
            return {}

    def save(self, name: str, data: dict[str, Any]) -> None:
        write_atomically(self.path(name), json.dumps(data, sort_keys=True))  # no indent: the C encoder is fast

    def remove(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

"""Apply history: every apply is recorded (time, user, spec digest and text, plan summary, result) and, when
it changed something, its plan with every before-state, so ``netx history`` can list them and ``netx
rollback`` can undo the last apply exactly (what its spec did not set included)."""

from __future__ import annotations

import getpass
import gzip
import json
import marshal
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from netplanx.engine.feature import Applied
from netplanx.engine.plan import Plan
from netplanx.files import write_atomically

KEEP = 200
MARSHAL_PLAN, JSON_PLAN = ".plan.marshal.gz", ".plan.json.gz"


@dataclass
class Entry:
    number: int
    time: float
    user: str
    netns: str | None
    node: str
    spec_path: str
    spec_digest: str
    summary: dict[str, int]
    result: str  # applied | no-changes | failed | rolled-back
    message: str = ""
    undoes: int | None = None  # the entry a ``netx rollback`` undid

    def line(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time))
        s = self.summary
        plan = f"+{s.get('add', 0)} ~{s.get('change', 0)} -{s.get('destroy', 0)}"
        return f"{self.number:>5}  {when}  {self.user:<10} {self.result:<11} {plan:<12} {self.spec_digest[:12]}  " \
               f"{self.spec_path}"


class History:
    """One folder per namespace under the state directory; each entry and its spec text 0600."""

    def __init__(self, state_dir: Path, scope: str):
        self.folder = state_dir / "history" / scope
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        os.makedirs(self.folder.parent, mode=0o700, exist_ok=True)
        os.makedirs(self.folder, mode=0o700, exist_ok=True)

    def entries(self) -> list[Entry]:
        found = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                found.append(Entry(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue
        return sorted(found, key=lambda e: e.number)

    def record(self, *, netns: str | None, node: str, spec_path: str, spec_digest: str, spec_text: str | None,
               summary: dict[str, int], result: str, message: str = "", plan: Plan | None = None,
               undoes: int | None = None) -> Entry:
        """Record one apply; ``plan`` (kept when the apply changed something) is what a rollback undoes."""
        numbers = self._numbers()
        number = numbers[-1] + 1 if numbers else 1
        entry = Entry(number, time.time(), _user(), netns, node, spec_path, spec_digest, summary, result, message,
                      undoes)
        if spec_text is not None and not (self.folder / f"{spec_digest}.yaml").exists():
            _write(self.folder / f"{spec_digest}.yaml", spec_text)
        if plan is not None and result == "applied" and not plan.empty:
            # the plan's records as marshal data (~10x faster to write than its JSON at 10,000 changes), gzip -1
            write_atomically(self._plan_path(number), gzip.compress(marshal.dumps(plan.to_records()), 1))
        _write(self.folder / f"{number:08d}.json", json.dumps(asdict(entry), indent=1))
        for old in numbers[:-KEEP]:
            (self.folder / f"{old:08d}.json").unlink(missing_ok=True)
            self._plan_path(old).unlink(missing_ok=True)
            self._plan_path(old, JSON_PLAN).unlink(missing_ok=True)
        return entry

    def _numbers(self) -> list[int]:
        """The numbers of the recorded entries, from their file names: reading the entries (up to KEEP of them) to
        number the next one cost more than applying a small spec."""
        return sorted(int(path.stem) for path in self.folder.glob("*.json") if path.stem.isdigit())

    def _plan_path(self, number: int, suffix: str = MARSHAL_PLAN) -> Path:
        return self.folder / f"{number:08d}{suffix}"

    def _has_plan(self, number: int) -> bool:
        return self._plan_path(number).exists() or self._plan_path(number, JSON_PLAN).exists()

    def last_undoable(self) -> Entry | None:
        """The latest apply that changed something and that no rollback has undone yet (rollbacks stack:
        each one goes one apply further back)."""
        undone = {e.undoes for e in self.entries() if e.undoes is not None}
        for entry in reversed(self.entries()):
            if entry.undoes is None and entry.number not in undone and self._has_plan(entry.number):
                return entry
        return None

    def plan_of(self, entry: Entry) -> Plan:
        try:
            data = marshal.loads(gzip.decompress(self._plan_path(entry.number).read_bytes()))
            return Plan.from_json(data) if isinstance(data, dict) else Plan.from_records(data)  # dict: an earlier netx
        except FileNotFoundError:  # recorded by an earlier netx (JSON)
            data = self._plan_path(entry.number, JSON_PLAN).read_bytes()
            return Plan.from_json(json.loads(gzip.decompress(data)))

    def spec_text(self, digest: str) -> str | None:
        try:
            return (self.folder / f"{digest}.yaml").read_text()
        except OSError:
            return None

    def last_applied(self) -> Applied | None:
        """The spec of the last successful apply, with the file and node it was applied as."""
        entry = next((e for e in reversed(self.entries()) if e.result in ("applied", "no-changes")), None)
        text = self.spec_text(entry.spec_digest) if entry else None
        return Applied(entry.spec_path, entry.node, text) if entry and text is not None else None


def _user() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def _write(path: Path, text: str) -> None:
    write_atomically(path, text)


def as_json(entries: list[Entry]) -> list[dict[str, Any]]:
    return [asdict(e) for e in entries]

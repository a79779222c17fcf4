"""A cache of compiled specs, keyed by the digest of the spec bytes and by the code that compiled them.

Validation and compilation depend only on those two, so a spec planned again (drift checks from a
timer, a plan followed by an apply) skips YAML parsing and validation: at 10,000 routes that is most of
a no-op plan. Entries live under the state directory (0700), one 0600 file each, newest kept. They are
marshal data (plain dicts, lists, text and numbers: ~8x faster to load than JSON), written only by netx.
"""

from __future__ import annotations

import functools
import hashlib
import marshal
import os
import sys
from pathlib import Path
from typing import Any

from netplanx import __version__
from netplanx.engine.resource import Resource, plain
from netplanx.files import write_atomically

KEEP = 16


@functools.cache
def _code_fingerprint() -> str:
    """The netx version, the Python version and the size and time of every module of netx and of its eBPF
    sources (their digests are in compiled specs): a compiled spec is reused only by the very code (and
    marshal format) that produced it."""
    from netplanx.system.bpf.sources import BPF_DIR

    package = Path(__file__).resolve().parents[1]
    stats = sorted(_stats(str(package), ".py") + _stats(str(BPF_DIR), ".c", ".h"))
    text = repr((__version__, sys.version_info[:2], stats))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _stats(folder: str, *suffixes: str) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of the files ending in ``suffixes`` under ``folder`` (os.scandir: a stat each)."""
    found = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.name != "__pycache__":
                found += _stats(entry.path, *suffixes)
        elif entry.name.endswith(suffixes):
            info = entry.stat()
            found.append((entry.path, info.st_size, info.st_mtime_ns))
    return found


class SpecCache:
    def __init__(self, root: Path):
        self.root = root / "spec-cache"

    def _path(self, digest: str) -> Path:
        return self.root / f"{digest}-{_code_fingerprint()}.marshal"

    def get(self, digest: str) -> tuple[list[Resource], list[dict[str, Any]], list[str]] | None:
        """The compiled resources, post-conditions and unmanaged patterns of a spec seen before (resources without
        meta share one empty dict: meta is carried, never written to)."""
        try:
            entries, checks, unmanaged = marshal.loads(self._path(digest).read_bytes())
        except (OSError, ValueError, EOFError, TypeError):
            return None
        return list(map(functools.partial(tuple.__new__, Resource), entries)), checks, unmanaged  # at C speed

    def put(self, digest: str, resources: list[Resource], checks: list[dict[str, Any]],
            unmanaged: list[str]) -> None:
        try:
            os.makedirs(self.root.parent, mode=0o700, exist_ok=True)
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            no_meta: dict[str, Any] = {}  # one object: marshal writes it once, and loading builds it once
            write_atomically(self._path(digest), marshal.dumps(
                ([(r.kind, r.address, plain(r.attrs), r.owned, plain(r.meta) if r.meta else no_meta)
                  for r in resources], checks, unmanaged)))
            self._prune()
        except OSError:
            pass  # a cache that cannot be written only costs time

    def _prune(self) -> None:
        entries = sorted(self.root.glob("*.marshal"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in entries[KEEP:]:
            stale.unlink(missing_ok=True)


"""A document without its parts that failed the schema, so that the checks that need the whole file can
still run on the rest (every problem is reported at once, not one batch after another).

A failing value is cut at the deepest list item that holds it (one route, one node's route, one service),
or at its top-level key when no list holds it. Paths in the pruned data map back to the original file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Path_ = tuple[str | int, ...]


def cut_point(path: Path_) -> Path_:
    """Where to cut a failing value at ``path``: its deepest list item, else its top-level key."""
    for end in range(len(path), 0, -1):
        if isinstance(path[end - 1], int):
            return path[:end]
    return path[:1]


@dataclass
class Pruned:
    """``data`` without the parts at ``dropped`` (paths of the original data)."""

    data: Any
    dropped: frozenset[Path_]
    kept: dict[Path_, list[int]]  # list path (original) -> the original index of each remaining item

    def original(self, path: Path_) -> Path_:
        """The original path of ``path`` in the pruned data."""
        found: list[str | int] = []
        for part in path:
            if isinstance(part, int) and tuple(found) in self.kept:
                indexes = self.kept[tuple(found)]
                part = indexes[part] if part < len(indexes) else part
            found.append(part)
        return tuple(found)


def prune(data: Any, dropped: Iterable[Path_]) -> Pruned:
    cuts = frozenset(dropped)
    kept: dict[Path_, list[int]] = {}
    if not cuts:
        return Pruned(data, cuts, kept)  # nothing cut: the data itself (a valid spec is never copied)

    def walk(value: Any, path: Path_) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, (*path, k)) for k, v in value.items() if (*path, k) not in cuts}
        if isinstance(value, list):
            indexes = [i for i in range(len(value)) if (*path, i) not in cuts]
            if len(indexes) != len(value):
                kept[path] = indexes
            return [walk(value[i], (*path, i)) for i in indexes]
        return value

    return Pruned(walk(data, ()), cuts, kept)


def mentions_of(data: Any, paths: Iterable[Path_]) -> set[str]:
    """How a check of the rest would mention what the parts at ``paths`` declared: their names (quoted, as
    messages quote them) and their labels (``key=value``). A problem mentioning one is likely a consequence
    of that part's own error."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("name"), str):
                found.add(f"'{value['name']}'")
            if isinstance(value.get("labels"), dict):
                found.update(f"{k}={v}" for k, v in value["labels"].items())
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    for path in paths:
        value = data
        for part in path:
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                value = None
                break
        walk(value)
    return found

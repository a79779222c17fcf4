"""Load a YAML document into plain Python data, remembering where every value came from.

ruamel.yaml's C composer (libyaml) builds the node tree quickly; we construct the data ourselves so that
duplicate keys, alias bombs, deep nesting and exotic tags become positioned errors instead of surprises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.cyaml import CSafeLoader
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from netplanx.errors import SpecError
from netplanx.files import InputError, display, read_bounded

MAX_BYTES = 16 * 1024 * 1024
MAX_NODES = 2_000_000
MAX_DEPTH = 64
CONVERTERS: dict[str, Callable[[str], Any]] = {  # scalars whose tag the composer resolved
    "tag:yaml.org,2002:str": str,
    "tag:yaml.org,2002:int": lambda text: int(text.replace("_", ""), 0),
    "tag:yaml.org,2002:float": float,
    "tag:yaml.org,2002:bool": lambda text: text.lower() in ("true", "yes", "on"),
    "tag:yaml.org,2002:null": lambda _text: None,
}

Path_ = tuple[str | int, ...]


@dataclass
class Positions:
    """Line and column (1-based) of every value and every mapping key, by data path."""

    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def of(self, path: Path_, key: bool = False) -> tuple[int, int]:
        """Position of the value at ``path`` (of its key with ``key``), else of its deepest known parent."""
        if key and path in self.keys:
            return self.keys[path]
        for end in range(len(path), -1, -1):
            if path[:end] in self.values:
                return self.values[path[:end]]
        return (1, 1)


@dataclass
class LoadedDocument:
    """A parsed spec: its data, the positions of its parts, and where it came from."""

    source: str
    data: Any
    positions: Positions

    def where(self, path: Path_, key: bool = False) -> str:
        line, col = self.positions.of(path, key)
        return f"{self.source}:{line}:{col}"


class _Builder:
    def __init__(self, source: str, loader: CSafeLoader):
        self.source = source
        self.loader = loader
        self.positions = Positions()
        self.problems: list[str] = []
        self.nodes = 0

    def at(self, node: Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def problem(self, node: Node, text: str) -> None:
        line, col = self.at(node)
        self.problems.append(f"{self.source}:{line}:{col}: {text}")

    def build(self, node: Node, path: Path_, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Abort(node, f"document expands to more than {MAX_NODES} values "
                               "(alias expansion too large; write the values out or reduce aliases)")
        if depth > MAX_DEPTH:
            raise _Abort(node, f"nesting deeper than {MAX_DEPTH} levels (allowed: at most {MAX_DEPTH})")
        self.positions.values[path] = self.at(node)
        if isinstance(node, MappingNode):
            return self.mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self.scalar(node)

    def mapping(self, node: MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.problem(key_node, "merge keys (<<) are not supported (allowed: plain keys; "
                                       "anchors and aliases on values are fine)")
                continue
            if not isinstance(key_node, ScalarNode):
                self.problem(key_node, "a mapping key must be a plain scalar (allowed: text keys)")
                continue
            key = str(key_node.value)
            if key in result:
                first = self.positions.keys[(*path, key)]
                self.problem(key_node, f"duplicate key '{key}' (first given at line {first[0]}, "
                                       f"column {first[1]}; allowed: each key once)")
                continue
            self.positions.keys[(*path, key)] = self.at(key_node)
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result

    def scalar(self, node: Node) -> Any:
        convert = CONVERTERS.get(node.tag)
        if convert is not None:
            try:
                return convert(node.value)
            except ValueError:
                return self.loader.construct_object(node, deep=True)  # rare spellings: ruamel knows them
        if node.tag.startswith("tag:yaml.org,2002:") and isinstance(node, ScalarNode):
            return str(node.value)  # timestamps and the like stay text
        self.problem(node, f"unsupported tag {node.tag} (allowed: plain YAML values)")
        return None


class _Abort(Exception):
    def __init__(self, node: Node, text: str):
        super().__init__(text)
        self.node = node
        self.text = text


def _check_expansion(root: Node) -> None:
    """Refuse a document whose aliases expand past MAX_NODES, before expanding anything.

    Aliases share node objects, so sizes are computed once per distinct node (linear in the file).
    The error points at the innermost mapping or list whose own entries add up past the limit.
    """
    sizes: dict[int, int] = {}

    def size(node: Node, depth: int) -> int:
        if id(node) not in sizes:
            if depth > MAX_DEPTH:
                raise _Abort(node, f"nesting deeper than {MAX_DEPTH} levels (allowed: at most {MAX_DEPTH})")
            sizes[id(node)] = 1 + sum(size(child, depth + 1) for child in _children(node))
        return sizes[id(node)]

    if size(root, 0) <= MAX_NODES:
        return
    node = root
    while True:
        bigger = next((child for child in _children(node) if sizes[id(child)] > MAX_NODES), None)
        if bigger is None:
            raise _Abort(node, f"document expands to more than {MAX_NODES} values (alias expansion too large; "
                               "allowed: write the values out or use fewer nested aliases)")
        node = bigger


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def read_text(path: Path) -> str:
    """Read a spec as UTF-8 (``-``: standard input): a regular file of at most MAX_BYTES, bad bytes
    reported with their position."""
    name = display(path)
    try:
        raw = read_bounded(path, MAX_BYTES, stdin=True, what="the spec")
    except InputError as exc:
        raise SpecError([f"{name}:1:1: {exc.strerror}"]) from None
    return decode_text(raw, name)


def decode_text(raw: bytes, name: str) -> str:
    """Spec bytes as UTF-8 text; a bad byte is a SpecError at its position in the file ``name``."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        col = len(raw[line_start:exc.start].decode("utf-8", errors="replace")) + 1  # characters, as YAML counts
        raise SpecError([f"{name}:{line}:{col}: invalid UTF-8 byte 0x{raw[exc.start]:02x} "
                         "(allowed: UTF-8 text)"]) from exc


def load_document(text: str, source: str) -> LoadedDocument:
    """Parse one YAML document; every problem found is raised together as a SpecError."""
    loader = CSafeLoader(text)
    try:
        node = loader.get_single_node()
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        allowed = "one YAML document"
        if "':'" in what:
            allowed = "quote values that contain ':' inside [ ] or { }, such as \"fd00::1/64\""
        raise SpecError([f"{source}:{line}:{col}: YAML syntax error: {what} (allowed: {allowed})"]) from exc
    except YAMLError as exc:
        raise SpecError([f"{source}:1:1: YAML error: {exc} (allowed: one YAML document)"]) from exc
    if node is None:
        return LoadedDocument(source, {}, Positions())
    builder = _Builder(source, loader)
    try:
        _check_expansion(node)
        data = builder.build(node, (), 0)
    except _Abort as exc:
        builder.problem(exc.node, exc.text)
        data = None
    except RecursionError:
        builder.problem(node, f"nesting too deep (allowed: at most {MAX_DEPTH} levels)")
        data = None
    if builder.problems:
        raise SpecError(builder.problems)
    return LoadedDocument(source, data, builder.positions)
